"""The gold list of romanized Hindi spellings (`hinglish_spellings.txt` beside this module):
its reader, the cannot-link constraints it gives the spelling grouping, and the precision and
recall of a grouping on it. Used by factory's dataset statistics and the judge's metric alike.

Format (one entry a line, `#` comments, sections `[dev]` and `[held-out]`):

    variants: nahi nahin nai nhi        spellings of one word
    distinct: mera | meri | mere        look-alike but different words

A distinct member that is listed under variants stands for its whole variant group.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import combinations
from pathlib import Path

GOLD_PATH = Path(__file__).with_name("hinglish_spellings.txt")
SECTIONS = ("dev", "held-out")


@dataclass(frozen=True)
class GoldList:
    variants: dict[str, list[tuple[str, ...]]]  # section -> variant groups
    distinct: dict[str, list[tuple[tuple[str, ...], ...]]]  # section -> sets of members

    def words(self) -> list[str]:
        """Every spelling the list names, each once, in file order."""
        seen: dict[str, None] = {}
        for section in SECTIONS:
            for group in self.variants[section]:
                seen.update(dict.fromkeys(group))
            for members in self.distinct[section]:
                for member in members:
                    seen.update(dict.fromkeys(member))
        return list(seen)


def read_gold(path: Path = GOLD_PATH) -> GoldList:
    """The gold list; a line that is not `variants:` or `distinct:` raises ValueError."""
    variants: dict[str, list] = {s: [] for s in SECTIONS}
    distinct: dict[str, list] = {s: [] for s in SECTIONS}
    section = "dev"
    groups_of: dict[str, tuple[str, ...]] = {}
    pending: list[tuple[str, list[list[str]]]] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            if section not in SECTIONS:
                raise ValueError(f"{path}:{number}: unknown section {line}")
            continue
        kind, _, rest = line.partition(":")
        if kind == "variants":
            group = tuple(rest.casefold().split())
            variants[section].append(group)
            groups_of.update(dict.fromkeys(group, group))
        elif kind == "distinct":
            pending.append((section, [m.casefold().split() for m in rest.split("|")]))
        else:
            raise ValueError(f"{path}:{number}: expected 'variants:' or 'distinct:'")
    for section, members in pending:  # a member named in a variant group stands for it
        distinct[section].append(
            tuple(
                tuple(dict.fromkeys(s for w in m for s in groups_of.get(w, (w,)))) for m in members
            )
        )
    return GoldList(variants, distinct)


Labels = frozenset[tuple[int, int]]  # (distinct line, member) pairs a spelling belongs to


def cannot_link(gold: GoldList, sections: Iterable[str] = SECTIONS) -> dict[str, Labels]:
    """Spelling -> the (distinct line, member) labels it carries: two spellings must not share
    a group when they carry labels of one line with different members."""
    labels: dict[str, set[tuple[int, int]]] = {}
    lines = [members for section in sections for members in gold.distinct[section]]
    for line, members in enumerate(lines):
        for index, member in enumerate(members):
            for spelling in member:
                labels.setdefault(spelling, set()).add((line, index))
    return {spelling: frozenset(s) for spelling, s in labels.items()}


def gold_hash(path: Path = GOLD_PATH) -> str:
    """The first 8 hex digits of the list's SHA-256, for the metric's signature."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


@cache
def shipped_constraints() -> dict[str, Labels]:
    """The cannot-link constraints of the shipped gold list, both sections."""
    return cannot_link(read_gold())


def conflict(a: Iterable[tuple[int, int]], b: Iterable[tuple[int, int]]) -> bool:
    """Whether two spellings' labels put them in different members of one distinct line."""
    return any(line == other and member != theirs for line, member in a for other, theirs in b)


@dataclass(frozen=True)
class PairScores:
    precision: float  # of labelled pairs grouped together, the share that are variants
    recall: float  # of variant pairs, the share grouped together
    variant_pairs: int
    distinct_pairs: int
    merged_distinct: list[tuple[str, str]]  # distinct pairs the grouping put together
    split_variants: list[tuple[str, str]]  # variant pairs it kept apart


def pair_scores(group: Mapping[str, str], gold: GoldList, section: str) -> PairScores:
    """Pairwise precision and recall of a grouping (spelling -> group name) on one section."""
    positives = [p for g in gold.variants[section] for p in combinations(g, 2)]
    negatives = [
        (a, b)
        for members in gold.distinct[section]
        for first, second in combinations(members, 2)
        for a in first
        for b in second
    ]
    together = [p for p in positives if group[p[0]] == group[p[1]]]
    merged = [p for p in negatives if group[p[0]] == group[p[1]]]
    grouped = len(together) + len(merged)
    return PairScores(
        precision=len(together) / grouped if grouped else 1.0,
        recall=len(together) / len(positives) if positives else 1.0,
        variant_pairs=len(positives),
        distinct_pairs=len(negatives),
        merged_distinct=merged,
        split_variants=[p for p in positives if group[p[0]] != group[p[1]]],
    )
