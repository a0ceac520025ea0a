"""Evaluation prompts: the shipped sets in `judge/prompts/<language>.txt`, or a user's file."""

import hashlib
import json
from pathlib import Path

from factory.errors import KahaniError
from factory.evalsets import read_eval_prompts

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"


def load_prompts(language: str, path: Path | None, limit: int | None) -> list[dict]:
    """[{id, prompt, reference}]: a .txt file has one prompt per line (# comments), a .jsonl
    file objects with `prompt` and optionally `id` and `reference` (the format and ids are
    `factory.evalsets`', which also keeps these prompts out of training data)."""
    path = path or PROMPTS_DIR / f"{language}.txt"
    if not path.is_file():
        raise KahaniError(f"prompts file {path} does not exist")
    prompts = [
        {"id": p.id, "prompt": p.text, "reference": p.reference}
        for p in read_eval_prompts(path, language)
    ]
    if not prompts:
        raise KahaniError(f"{path} has no usable prompts (blank lines and # comments only)")
    return prompts[:limit] if limit else prompts


def prompts_fingerprint(prompts: list[dict]) -> str:
    return hashlib.sha256(json.dumps(prompts, ensure_ascii=False).encode()).hexdigest()[:16]
