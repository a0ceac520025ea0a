"""Evaluation prompts: the shipped sets in `judge/prompts/<language>.txt`, or a user's file."""

import hashlib
import json
from pathlib import Path

from factory.errors import KahaniError
from factory.textutil import nfc

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"


def load_prompts(language: str, path: Path | None, limit: int | None) -> list[dict]:
    """[{id, prompt, reference?}]: a .txt file has one prompt per line (# comments), a .jsonl
    file objects with `prompt` and optionally `id` and `reference`."""
    path = path or PROMPTS_DIR / f"{language}.txt"
    if not path.is_file():
        raise KahaniError(f"prompts file {path} does not exist")
    prompts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if path.suffix == ".jsonl":
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise KahaniError(f"{path}:{number}: not a JSON object") from None
            if not isinstance(row, dict) or not str(row.get("prompt", "")).strip():
                raise KahaniError(f"{path}:{number}: no `prompt` field")
            text = nfc(str(row["prompt"]).strip())
            prompts.append(
                {
                    "id": str(row.get("id") or _prompt_id(language, text)),
                    "prompt": text,
                    "reference": row.get("reference"),
                }
            )
        else:
            text = nfc(line)
            prompts.append({"id": _prompt_id(language, text), "prompt": text, "reference": None})
    if not prompts:
        raise KahaniError(f"{path} has no usable prompts (blank lines and # comments only)")
    return prompts[:limit] if limit else prompts


def prompts_fingerprint(prompts: list[dict]) -> str:
    return hashlib.sha256(json.dumps(prompts, ensure_ascii=False).encode()).hexdigest()[:16]


def _prompt_id(language: str, text: str) -> str:
    return f"{language}-eval-{hashlib.blake2b(text.encode('utf-8'), digest_size=6).hexdigest()}"
