"""What `judge score MODEL` can score: a trainer run, a Hugging Face folder, or provider:model."""

import json
from dataclasses import dataclass
from pathlib import Path

from factory.errors import KahaniError

API_PROVIDERS = ("openai", "g4f", "local")


@dataclass(frozen=True)
class ModelSpec:
    name: str  # for folder names and the report; never shown to the judge
    hf_dir: Path | None = None  # a causal LM folder loaded with transformers
    provider: str | None = None  # or a model behind one of factory's providers
    model: str | None = None


def resolve_model(spec: str) -> ModelSpec:
    """A trainer run (its `hf/` folder), a Hugging Face causal-LM folder, or `provider:model`.
    `local:FOLDER` is the folder itself: one model, one name, the same completions."""
    provider, sep, model = spec.partition(":")
    path = Path(model if provider == "local" and sep else spec)
    for candidate in (path / "hf", path):
        config = candidate / "config.json"
        if config.is_file() and "model_type" in _json(config):
            folder = candidate.resolve()
            name = folder.parent.name if folder.name == "hf" else folder.name
            return ModelSpec(name=name or "model", hf_dir=folder)
    if sep and provider in API_PROVIDERS and model:
        return ModelSpec(
            name=model.replace("/", "_").replace(":", "_"), provider=provider, model=model
        )
    raise KahaniError(
        f"{spec!r} is neither a trainer run, a Hugging Face model folder (config.json with a "
        f"model_type), nor provider:model with a provider among {', '.join(API_PROVIDERS)}"
    )


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
