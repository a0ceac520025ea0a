"""Evaluation prompt sets, read to keep them out of training data (`factory clean
--decontaminate`).

The format is `judge score --prompts FILE`'s: a .txt file holds one prompt per line (`#`
comments), a .jsonl file objects with `prompt` and optionally `id` and `reference`. Ids are the
judge's (`<language>-eval-<12 hex of the text>` unless a line gives one), so a contaminated
text names the prompt as `judge` reports it. The shipped sets are `judge/prompts/<language>.txt`:
they are found on disk, without importing `judge` (factory sits below it). `judge.prompts_io`
reads prompts through `read_eval_prompts` too.
"""

import hashlib
import json
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from factory.errors import KahaniError
from factory.textutil import nfc


def shipped_dir() -> Path | None:
    """The folder of kahani's shipped evaluation prompt sets (None if judge is not there)."""
    spec = find_spec("judge")  # a top-level package: found, not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "prompts"
    return folder if folder.is_dir() else None


@dataclass(frozen=True)
class EvalPrompt:
    id: str
    text: str
    reference: str | None
    where: str  # file:line, for people


def eval_prompt_id(language: str, text: str) -> str:
    return f"{language}-eval-{hashlib.blake2b(text.encode('utf-8'), digest_size=6).hexdigest()}"


def read_eval_prompts(path: Path, language: str) -> list[EvalPrompt]:
    """The prompts of one file; ids are made with `language` where a line gives none."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise KahaniError(f"evaluation prompts {path} do not exist") from None
    except UnicodeDecodeError:
        raise KahaniError(f"evaluation prompts {path} are not UTF-8 text") from None
    except OSError as err:
        raise KahaniError(f"cannot read evaluation prompts {path}: {err.strerror}") from None
    prompts = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path.name}:{number}"
        if path.suffix != ".jsonl":
            text = nfc(line)
            prompts.append(EvalPrompt(eval_prompt_id(language, text), text, None, where))
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise KahaniError(f"{path}:{number}: not a JSON object") from None
        if not isinstance(row, dict) or not str(row.get("prompt", "")).strip():
            raise KahaniError(f"{path}:{number}: no `prompt` field")
        text = nfc(str(row["prompt"]).strip())
        reference = row.get("reference")
        prompts.append(
            EvalPrompt(
                str(row.get("id") or eval_prompt_id(language, text)),
                text,
                nfc(str(reference)) if reference else None,
                where,
            )
        )
    return prompts


def shipped_eval_prompts() -> list[EvalPrompt]:
    """Every shipped evaluation prompt, all languages (a text in one language can quote a
    prompt of another: Hinglish and English share a script)."""
    folder = shipped_dir()
    if folder is None:
        return []
    return [p for path in sorted(folder.glob("*.txt")) for p in read_eval_prompts(path, path.stem)]
