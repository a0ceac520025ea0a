"""What `judge play MODEL...` puts on the page.

A MODEL is what `judge score` takes (a trainer run, a Hugging Face folder, `provider:model`),
and also a sequence-classification folder (`config.json` whose `architectures` end in
`ForSequenceClassification`, as `trainer classify` writes). Causal LMs continue a story or
chat with their chat template; API models chat; classifiers give each label's probability.
"""

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from factory import llm
from factory.errors import KahaniError
from factory.prompts import Message
from factory.streaming import Streamer
from judge.models import resolve_model
from judge.play.settings import PlaySettings

Mode = Literal["story", "chat", "classify"]
MAX_TEXT_CHARS = 100_000  # per message: a page cannot make the server tokenize a novel


@dataclass(frozen=True)
class Label:
    name: str
    probability: float


class Classifier:
    """A sequence classifier: one text in, every label's probability out, likeliest first."""

    def __init__(self, name: str, folder: Path) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.name = name
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        except Exception as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            raise KahaniError(f"cannot load classifier {folder}: {reason}") from None
        config = self.model.config
        self.labels = [str(config.id2label.get(i, f"LABEL_{i}")) for i in range(config.num_labels)]
        self._busy = threading.Lock()

    def classify(self, text: str) -> list[Label]:
        import torch

        if not text.strip():
            raise KahaniError("the text is empty; type some text first")
        with self._busy, torch.no_grad():
            longest = getattr(self.model.config, "max_position_embeddings", None)
            inputs = self.tokenizer(
                text, return_tensors="pt", truncation=longest is not None, max_length=longest
            )
            logits = self.model(**inputs).logits[0]  # (num_labels,)
            probs = torch.softmax(logits.float(), dim=-1).tolist()
        ranked = sorted(zip(self.labels, probs, strict=True), key=lambda lp: -lp[1])
        return [Label(name, p) for name, p in ranked]


@dataclass
class PlayModel:
    """One model on the page: `streamer` for causal and API models, else `classifier`."""

    name: str
    kind: Literal["causal", "api", "classifier"]
    mode: Mode  # the mode a column starts in
    streamer: Streamer | None = None
    classifier: Classifier | None = None

    def describe(self) -> dict:
        """What the page needs to know: name, kind, starting mode, and the modes it can do."""
        modes = {"causal": ["story", "chat"], "api": ["chat"], "classifier": ["classify"]}
        return {"name": self.name, "kind": self.kind, "mode": self.mode, "modes": modes[self.kind]}


def is_classifier(folder: Path) -> bool:
    """A sequence-classification folder: its config names a *ForSequenceClassification class."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    architectures = config.get("architectures") if isinstance(config, dict) else None
    return any(str(a).endswith("ForSequenceClassification") for a in architectures or [])


def load_models(
    specs: list[str],
    *,
    chat: bool,
    base_url: str | None,
    api_key: str | None,
    timeout: float = 120.0,
    say=print,
) -> list[PlayModel]:
    """Resolve and load every MODEL; a KahaniError names the first that cannot be used."""
    resolved = [resolve_model(spec) for spec in specs]  # every name checked before any load
    names = _unique([spec.name for spec in resolved])
    models = []
    for spec, name in zip(resolved, names, strict=True):
        say(f"loading  {name}")
        if spec.hf_dir is not None and is_classifier(spec.hf_dir):
            classifier = Classifier(name, spec.hf_dir)
            models.append(PlayModel(name, "classifier", "classify", classifier=classifier))
        elif spec.hf_dir is not None:
            endpoint = llm.Endpoint(provider="local", model=str(spec.hf_dir))
            mode = "chat" if chat else "story"
            models.append(PlayModel(name, "causal", mode, llm.streamer(endpoint, name)))
        else:
            endpoint = _api_endpoint(spec.provider or "", spec.model or "", base_url, api_key)
            endpoint = endpoint.model_copy(update={"timeout": timeout})
            models.append(PlayModel(name, "api", "chat", llm.streamer(endpoint, name)))
    return models


def _api_endpoint(
    provider: str, model: str, base_url: str | None, api_key: str | None
) -> llm.Endpoint:
    key = llm.api_key_for(base_url, api_key)  # a key goes only to the server it was given for
    if provider == "openai" and not key and not base_url:
        raise KahaniError(
            f"openai:{model} needs --api-key (or $OPENAI_API_KEY) or --base-url of an "
            "OpenAI-compatible server"
        )
    if provider != "openai":
        raise KahaniError(f"{provider}:{model} cannot stream; the playground takes openai:MODEL")
    return llm.Endpoint(
        provider="openai",
        model=model,
        base_url=base_url,
        api_key=SecretStr(key) if key else None,
    )


def _unique(names: list[str]) -> list[str]:
    """Names as given, with `-2`, `-3`... added to repeats so each column can be told apart."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


class Turn(Message):
    """A message from the page, with a bounded length."""

    content: str = Field(max_length=MAX_TEXT_CHARS)


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: int = Field(ge=0)  # index into the model list
    mode: Literal["story", "chat"]
    messages: list[Turn] = Field(min_length=1, max_length=500)
    settings: PlaySettings


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: int = Field(ge=0)
    text: str = Field(max_length=MAX_TEXT_CHARS)
