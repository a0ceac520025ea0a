"""kahani installed like any other package: built into a wheel, installed outside the source
tree, run from another folder. The templates, word lists, rubrics and prices travel inside."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ["pyproject.toml", "README.md", "factory", "judge", "trainer", "reports"]
SHIPPED += ["templates", "vocab_lists"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from a copy of the tree (a build leaves files behind) and installed
    into a folder of its own."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in SHIPPED:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name,
                source / name,
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
            )
        else:
            shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", str(source), "-w", str(work)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = work.glob("kahani-*.whl")
    target = work / "site"
    done = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    shutil.rmtree(source)  # nothing may come from the tree it was built from
    return target


def run(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_installed_package_is_used_not_the_source_tree(installed, tmp_path):
    found = run(
        installed,
        tmp_path,
        "-c",
        "import json, factory, judge, factory.paths as p; print(json.dumps("
        "[factory.__file__, judge.__file__, str(p.TEMPLATES_DIR), str(p.VOCAB_DIR)]))",
    )
    assert found.returncode == 0, found.stderr
    for path in json.loads(found.stdout):
        assert Path(path).is_relative_to(installed), path
        assert not Path(path).is_relative_to(ROOT), path


def test_prompts_dry_run_and_judge_work_from_the_wheel(installed, tmp_path):
    factory = [str(installed / "bin" / "factory")]
    prompts = run(installed, tmp_path, *factory, "prompts", "--lang", "bangla", "--n", "3")
    assert prompts.returncode == 0, prompts.stderr
    rows = [json.loads(line) for line in prompts.stdout.splitlines()]
    assert len(rows) == 3 and all(r["variables"]["noun"] for r in rows)

    dry = run(
        installed, tmp_path, *factory, "generate", "--lang", "hindi", "--n", "50", "--dry-run"
    )
    assert dry.returncode == 0, dry.stderr
    assert "templates/story/hindi.j2" in dry.stdout and "cost" in dry.stdout

    judge = run(installed, tmp_path, str(installed / "bin" / "judge"), "--help")
    assert judge.returncode == 0 and "score" in judge.stdout, judge.stderr


def test_the_wheel_carries_every_shipped_file(installed):
    for folder, pattern in (
        ("factory/prompt_templates", "*/*.j2"),
        ("factory/word_lists", "*/*.txt"),
        ("judge/prompts", "*.txt"),
        ("reports/templates", "*.html.j2"),
    ):
        shipped = {p.relative_to(ROOT) for p in ROOT.glob(f"{_source(folder)}/{pattern}")}
        inside = {
            Path(_source(folder)) / p.relative_to(installed / folder)
            for p in (installed / folder).glob(pattern)
        }
        assert shipped and shipped == inside, folder
    assert (installed / "factory" / "prices.toml").is_file()
    assert (installed / "factory" / "hinglish_spellings.txt").is_file()


def _source(folder: str) -> str:
    """Where a packaged folder comes from in the repository."""
    return {"factory/prompt_templates": "templates", "factory/word_lists": "vocab_lists"}.get(
        folder, folder
    )
