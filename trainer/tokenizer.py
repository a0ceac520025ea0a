"""Tokenizers that keep Indic letters whole: BPE or characters, with byte fallback.

The pre-tokenizer splits text into words of letters *with* their combining marks
(`[\\p{L}\\p{M}]+`, plus ZWJ/ZWNJ, which Bengali and Marathi conjuncts need), numbers,
punctuation runs and whitespace, each word taking its leading space. GPT-2's split regex
uses `\\p{L}+` alone and cuts every Devanagari word at its vowel signs; this one never does.
Tokens are plain text pieces (no byte-to-unicode mapping); characters the vocabulary lacks
become `<0xNN>` byte tokens, so decoding is exact for any NFC text.
"""

import json
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import regex
from tokenizers import (
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from factory.errors import KahaniError

BOS, EOS, PAD = "<bos>", "<eos>", "<pad>"
ROLES = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
END = "<|end|>"  # closes every chat turn; generation of a reply stops on it
SPECIALS = [PAD, BOS, EOS, *ROLES.values(), END]
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]

SPLIT_PATTERN = r" ?[\p{L}\p{M}\x{200C}\x{200D}]+| ?\p{N}+| ?[^\s\p{L}\p{M}\p{N}]+|\s+(?!\S)|\s+"
WORD = regex.compile(r"[\p{L}\p{M}]+")

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '<|end|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def _pipeline(model: models.Model) -> Tokenizer:
    """NFC in, letter-with-marks words, exact decoding through byte fallback."""
    tok = Tokenizer(model)
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated")
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    return tok


def _with_byte_tokens(tok: Tokenizer) -> Tokenizer:
    """Append the 256 `<0xNN>` tokens to a BPE vocabulary as ordinary (non-special) tokens."""
    spec = json.loads(tok.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    for piece in BYTE_TOKENS:
        vocab.setdefault(piece, len(vocab))
    spec["model"]["byte_fallback"] = True
    return Tokenizer.from_str(json.dumps(spec))


def train_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """A byte-fallback BPE of `vocab_size` tokens in all (specials and 256 byte tokens included)."""
    if vocab_size < len(SPECIALS) + 256 + 64:
        raise KahaniError(f"--vocab {vocab_size} is too small for BPE; use at least 1024")
    tok = _pipeline(models.BPE(byte_fallback=True))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - 256, special_tokens=SPECIALS, show_progress=False
    )
    tok.train_from_iterator(texts, trainer)
    return _with_byte_tokens(tok)


def train_char(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """One token per character (the most frequent `vocab_size` of them), bytes for the rest."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(unicodedata.normalize("NFC", text))
    room = vocab_size - len(SPECIALS) - 256
    chars = [c for c, _ in counts.most_common(max(room, 0))]
    vocab = {piece: i for i, piece in enumerate([*SPECIALS, *BYTE_TOKENS, *chars])}
    tok = _pipeline(models.BPE(vocab=vocab, merges=[], byte_fallback=True))
    tok.add_special_tokens(SPECIALS)
    return tok


def save_tokenizer(tok: Tokenizer, out: Path) -> None:
    """Write tokenizer.json and tokenizer_config.json that `AutoTokenizer` loads."""
    # `tokenizer(text)` then starts with <bos>, as every training document does
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[*ROLES.values(), END],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(out))


@dataclass
class TextTokenizer:
    """A loaded Hugging Face tokenizer plus the ids the trainer needs."""

    hf: PreTrainedTokenizerFast
    bos_id: int
    eos_id: int
    pad_id: int

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids without specials; the Rust tokenizer spreads the batch over all cores.

        Text that happens to spell `<eos>` or `<|user|>` stays text: only the trainer places
        special tokens, so a story cannot end a document or open a chat turn by its content.
        """
        backend = self.hf.backend_tokenizer
        backend.encode_special_tokens = True
        try:
            return [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]
        finally:
            backend.encode_special_tokens = False

    def decode(self, ids: list[int]) -> str:
        return self.hf.decode(ids, skip_special_tokens=True)

    def special_id(self, piece: str) -> int:
        """Id of a chat token such as `<|user|>`; a tokenizer without them cannot do chat."""
        tid = self.hf.convert_tokens_to_ids(piece)
        if (
            tid is None
            or tid == self.hf.unk_token_id
            or self.hf.convert_ids_to_tokens(tid) != piece
        ):
            raise KahaniError(
                f"tokenizer has no {piece} token; train one with `trainer tokenizer` for chat data"
            )
        return tid

    def token_bytes(self) -> np.ndarray:
        """UTF-8 length of every token, 0 for specials: the denominator of bits per byte."""
        special = set(self.hf.all_special_ids)
        sizes = np.zeros(self.vocab_size, dtype=np.int64)
        for tid in range(self.vocab_size):
            if tid in special:
                continue
            piece = self.hf.convert_ids_to_tokens(tid)
            if piece in BYTE_TOKENS:  # one raw byte of a character the vocabulary lacks
                sizes[tid] = 1
            else:
                sizes[tid] = len(self.hf.decode([tid]).encode("utf-8"))
        return sizes


def load_tokenizer(path: Path) -> TextTokenizer:
    """Load any Hugging Face tokenizer directory (ours or another model's) from disk only."""
    if not (path / "tokenizer.json").is_file():
        raise KahaniError(
            f"{path} has no tokenizer.json; make one with `trainer tokenizer DATA --out {path}`"
        )
    hf = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    eos = hf.eos_token_id
    if eos is None:
        raise KahaniError(f"tokenizer in {path} has no eos token; set eos_token in its config")
    bos = hf.bos_token_id if hf.bos_token_id is not None else eos
    pad = hf.pad_token_id if hf.pad_token_id is not None else eos
    return TextTokenizer(hf=hf, bos_id=bos, eos_id=eos, pad_id=pad)


def same_tokenizer(a: TextTokenizer, b: TextTokenizer) -> bool:
    """Whether two tokenizers turn text into the same ids: same vocabulary and merges, same
    special tokens, same normalizer and pre-tokenizer. Weights trained with one are
    meaningless with the other."""

    def essentials(tok: TextTokenizer) -> tuple:
        spec = json.loads(tok.hf.backend_tokenizer.to_str())
        added = sorted((t["id"], t["content"]) for t in spec.get("added_tokens", []))
        return (spec["model"], added, spec.get("normalizer"), spec.get("pre_tokenizer"))

    return essentials(a) == essentials(b)


@dataclass
class TokenizerStats:
    fertility: float  # tokens per word (word = letters with their marks)
    bytes_per_token: float
    words: int


def measure(tok: TextTokenizer, texts: list[str]) -> TokenizerStats:
    """Compare tokenizers on held-out text: fewer tokens per word and more bytes per token win."""
    texts = [unicodedata.normalize("NFC", t) for t in texts]
    tokens = sum(len(ids) for ids in tok.encode_batch(texts))
    words = sum(len(WORD.findall(t)) for t in texts)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    return TokenizerStats(
        fertility=tokens / max(words, 1), bytes_per_token=nbytes / max(tokens, 1), words=words
    )


def compare(folders: list[Path], data: list[Path]) -> list[dict[str, object]]:
    """Each tokenizer on each language's text: tokens per word, bytes per token and the share
    of its vocabulary that the text uses. A row's language is its `language` column, or the
    file's name; all rows of each file count (give held-out text)."""
    from trainer.data import read_rows

    texts: dict[str, list[str]] = {}
    for path in data:
        rows = read_rows(path, 0.0)
        for row in rows["train"] + rows["validation"]:
            if row.get("text"):
                texts.setdefault(str(row.get("language") or path.stem), []).append(row["text"])
    if not texts:
        raise KahaniError(f"{', '.join(map(str, data))} hold no 'text' to compare tokenizers on")
    names = [f.name for f in folders]
    if len(set(names)) < len(names):
        names = [str(f) for f in folders]
    table = []
    for name, folder in zip(names, folders, strict=True):
        tok = load_tokenizer(folder)
        for language, lang_texts in texts.items():
            stats = measure(tok, lang_texts)
            ids = tok.encode_batch([unicodedata.normalize("NFC", t) for t in lang_texts])
            used = len({i for seq in ids for i in seq})
            table.append(
                {
                    "language": language,
                    "tokenizer": name,
                    "vocab_size": tok.vocab_size,
                    "fertility": stats.fertility,
                    "bytes_per_token": stats.bytes_per_token,
                    "vocab_used": used / tok.vocab_size,
                    "words": stats.words,
                }
            )
    return table
