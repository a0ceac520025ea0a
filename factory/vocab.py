"""Word lists: `vocab_lists/<language>/<list>.txt`, one entry per line, `#` starts a comment."""

import unicodedata
from pathlib import Path

from factory.errors import KahaniError


def read_word_list(path: Path) -> list[str]:
    """Entries of one list, NFC-normalized, in file order, duplicates dropped.

    Duplicates are dropped because each entry is a coordinate of the prompt space:
    a repeated word would make two prompt indices render the same prompt.
    """
    if not path.is_file():
        raise KahaniError(f"word list {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise KahaniError(f"word list {path} is not UTF-8 (byte {err.start})") from None
    entries: dict[str, None] = {}
    for line in text.splitlines():
        entry = unicodedata.normalize("NFC", line.strip())
        if entry and not entry.startswith("#"):
            entries[entry] = None
    if not entries:
        raise KahaniError(f"word list {path} is empty (only blank lines and # comments)")
    return list(entries)


def load_lists(vocab_dir: Path, names: set[str]) -> dict[str, list[str]]:
    """Read the named lists (`<name>.txt`) from one language's folder."""
    return {name: read_word_list(vocab_dir / f"{name}.txt") for name in sorted(names)}
