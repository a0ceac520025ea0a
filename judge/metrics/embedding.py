"""Embedding similarity: cosine of sentence-transformers embeddings, prompt to completion
(does the completion stay on the prompt?) and completion to reference.

The model is given by name or path and loaded strictly offline (local_files_only): a name that
is not in the local Hugging Face cache, or a path that is not a model, skips the metric with
the loader's reason. It never downloads and never scores 0 in place of a missing model.
"""

from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import version
from typing import Any

import numpy as np

from judge.metrics.core import Metric, MetricSkipped, Sample, Scores, register

DEFAULT_MODEL = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
BATCH_SIZE = 32


@lru_cache(maxsize=2)
def load_model(name_or_path: str) -> Any:
    """The model, offline, or MetricSkipped saying why not (memoized: both metrics share it)."""
    try:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(name_or_path, device="cpu", local_files_only=True)
    except Exception as err:  # any loader failure means "not available here": skip, say why
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise MetricSkipped(
            f"embedding model {name_or_path!r} cannot be loaded offline: "
            f"{type(err).__name__}: {reason}"
        ) from None


def cosine_similarities(model: Any, left: Sequence[str], right: Sequence[str]) -> list[float]:
    """Cosine similarity of each pair (left[i], right[i])."""

    def embed(texts: Sequence[str]) -> np.ndarray:
        return model.encode(
            list(texts), batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True
        )

    return (embed(left) * embed(right)).sum(axis=1).astype(float).tolist()


def similarity_metrics(model: str = DEFAULT_MODEL) -> tuple[Metric, Metric]:
    """The two embedding metrics for one model (the registered ones use DEFAULT_MODEL)."""

    def between(left: str, right: str) -> Metric:
        def fn(samples: Sequence[Sample]) -> Scores:
            encoder = load_model(model)
            return Scores(
                cosine_similarities(
                    encoder, [s[left] for s in samples], [s[right] for s in samples]
                )
            )

        return Metric(
            f"embedding_{left}_{right}",
            True,
            frozenset({left, right}),
            "sample",
            f"cosine -1..1|model:{model}|normalized|sentence-transformers:"
            f"{version('sentence-transformers')}",
            fn,
        )

    return between("prompt", "completion"), between("completion", "reference")


EMBEDDING_PROMPT_COMPLETION, EMBEDDING_COMPLETION_REFERENCE = map(register, similarity_metrics())
