"""`factory export`: the kept rows of a cleaned run as a Hugging Face dataset with a card.

`runs/<name>/dataset/` is at once a `save_to_disk` folder (`datasets.load_from_disk`
opens it), a Hub-style repository (README.md card whose `configs` point at
`data/<split>-*.parquet`), plain JSONL (`jsonl/<split>.jsonl`) and, for conversations,
OpenAI fine-tuning files (`openai/<split>.jsonl`, one `{"messages": [...]}` per line).
"""

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from factory.errors import KahaniError
from factory.languages import get_language
from factory.pricing import PriceTable
from factory.settings import RunConfig
from factory.stats import RunStats, compute_stats, format_stats
from factory.store import RunStore

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitFractions:
    validation: float = 0.05
    test: float = 0.05

    def split_of(self, row_id: str) -> str:
        """Deterministic by id: the same row lands in the same split in every export."""
        digest = hashlib.blake2b(row_id.encode("utf-8"), digest_size=8).digest()
        x = int.from_bytes(digest, "big") / 2**64
        if x < self.validation:
            return "validation"
        if x < self.validation + self.test:
            return "test"
        return "train"


def export_run(
    store: RunStore,
    config: RunConfig,
    out: Path,
    prices: PriceTable,
    fractions: SplitFractions,
    license_id: str,
) -> dict[str, int]:
    """Write the dataset folder (atomically: a half-written folder never replaces a good one)."""
    import datasets  # seconds to import; only exports need it

    datasets.disable_progress_bars()  # our own summary line says what was written
    language = get_language(config.lang)
    conversation = language.kind == "conversation"
    rows = store.kept()
    if not rows:
        raise KahaniError("nothing to export: no row was kept; see `factory stats` for why")
    by_split: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for row in rows:
        record = {
            "id": row.prompt_id,
            "language": language.name,
            "kind": language.kind,
            "text": row.text,
            "variables": json.dumps(row.variables, ensure_ascii=False),
            "model": row.model,
        }
        if conversation:
            record["messages"] = row.messages or []
        by_split[fractions.split_of(row.prompt_id)].append(record)

    message = {"role": datasets.Value("string"), "content": datasets.Value("string")}
    features = datasets.Features(
        {
            name: datasets.Value("string")
            for name in ("id", "language", "kind", "text", "variables", "model")
        }
        | ({"messages": datasets.List(message)} if conversation else {})
    )
    # An empty split cannot be saved and loaded back; it is left out (the card shows 0).
    dataset = datasets.DatasetDict(
        {s: datasets.Dataset.from_list(r, features=features) for s, r in by_split.items() if r}
    )
    tmp = out.with_name(out.name + ".tmp")
    stats = compute_stats(store, config, prices)
    counts = {s: len(r) for s, r in by_split.items()}
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        dataset.save_to_disk(str(tmp))
        for split, part in dataset.items():
            part.to_parquet(str(tmp / "data" / f"{split}-00000-of-00001.parquet"))
            _write_jsonl(tmp / "jsonl" / f"{split}.jsonl", by_split[split])
            if conversation:
                _write_jsonl(
                    tmp / "openai" / f"{split}.jsonl",
                    [{"messages": r["messages"]} for r in by_split[split]],
                )
        (tmp / "README.md").write_text(
            dataset_card(config, stats, counts, license_id), encoding="utf-8"
        )
        _replace_dir(tmp, out)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise KahaniError(
            f"cannot write the dataset to {out}: {err.strerror or err}; "
            "the run store is unchanged, fix the folder and run `factory export` again"
        ) from None
    return counts


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _replace_dir(new: Path, target: Path) -> None:
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def size_category(n: int) -> str:
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if n < limit:
            return name
    return "10M<n<100M"


def dataset_card(
    config: RunConfig, stats: RunStats, counts: dict[str, int], license_id: str
) -> str:
    """README.md with the Hugging Face YAML header, then what a reader needs to trust the data."""
    language = get_language(config.lang)
    codes = ["hi", "en"] if language.name == "hinglish" else [language.code]
    what = "children's stories" if language.kind == "story" else "everyday conversations"
    header = {
        "language": codes,
        "license": license_id,
        "size_categories": [size_category(sum(counts.values()))],
        "task_categories": ["text-generation"],
        "pretty_name": f"kahani {language.name} {what} ({config.name})",
        "tags": ["kahani", "synthetic", language.kind],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in SPLITS],
            }
        ],
    }
    source = (
        f"generated by `{', '.join(stats.models)}` through the `{config.provider}` provider"
        if config.provider != "import"
        else f"imported from `{config.template}`"
    )
    lines = [
        "---",
        yaml.safe_dump(header, allow_unicode=True, sort_keys=False).strip(),
        "---",
        "",
        f"# {header['pretty_name']}",
        "",
        f"Synthetic {language.name} {what}, {source}, validated and deduplicated by "
        "kahani. Every answer that is not here is accounted for "
        "under *Rejected*.",
        "",
        "```python",
        "import datasets",
        f'ds = datasets.load_from_disk("runs/{config.name}/dataset")',
        "```",
        "",
        "## Splits",
        "",
        "| split | rows |",
        "| --- | ---: |",
        *[f"| {s} | {counts[s]:,} |" for s in SPLITS],
        f"| **all** | **{sum(counts.values()):,}** |",
        "",
        "Rows go to a split by a hash of their id, so a re-export keeps every row in its split.",
        "",
        "## Rejected",
        "",
        f"{stats.prompts:,} prompts: {stats.kept:,} kept, {sum(stats.rejects.values()):,} "
        f"rejected, {stats.pending:,} still pending.",
        "",
        "| reason | rows |",
        "| --- | ---: |",
        *[f"| {reason} | {n:,} |" for reason, n in stats.rejects.most_common()],
        "",
        "## Statistics",
        "",
        "```",
        format_stats(stats),
        "```",
        "",
        "## Columns",
        "",
        "- `id`: the prompt id (`<language>-<kind>-<hash of template and words>`)",
        f"- `text`: the {language.kind}"
        + (", as `A: ...` / `B: ...` lines" if language.kind == "conversation" else ""),
        "- `variables`: JSON of the words the prompt asked for",
        "- `model`: the model that wrote it",
    ]
    if language.kind == "conversation":
        lines.append(
            "- `messages`: the conversation as chat messages (A is `user`, B is `assistant`); "
            "`openai/<split>.jsonl` holds the same as OpenAI fine-tuning files"
        )
    return "\n".join(lines) + "\n"
