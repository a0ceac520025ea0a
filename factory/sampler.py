"""Unique combinations of word-list entries, drawn without replacement in O(1) per draw.

A run of n prompts takes positions 0..n-1 of a seeded permutation of the product space
[0, N) and decodes each position into one entry per list (mixed radix). Nothing is held
in memory, position i never depends on positions before it, so a run resumes at any
index, and two positions never decode to the same combination.
"""

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

_MASK64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """SplitMix64's finalizer: a cheap 64-bit mixer with full avalanche."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK64
    return x ^ (x >> 31)


class SeededPermutation:
    """A bijection of [0, n) picked by `seed`: a Feistel network with cycle-walking.

    The Feistel network permutes [0, 4**k) for the smallest 4**k >= n; values that land
    at or beyond n are encrypted again until they fall inside, which keeps the map a
    bijection of [0, n) and needs fewer than 4 walks on average.
    """

    ROUNDS = 6

    def __init__(self, n: int, seed: int) -> None:
        if n < 1:
            raise ValueError("a permutation needs at least one element")
        self.n = n
        self._half = max(1, math.ceil((n - 1).bit_length() / 2))
        self._mask = (1 << self._half) - 1
        self._keys = [_mix64((seed & _MASK64) * self.ROUNDS + r + 1) for r in range(self.ROUNDS)]

    def _encrypt(self, x: int) -> int:
        left, right = x >> self._half, x & self._mask
        for key in self._keys:
            left, right = right, left ^ (_mix64(right ^ key) & self._mask)
        return (left << self._half) | right

    def __call__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} outside [0, {self.n})")
        x = self._encrypt(i)
        while x >= self.n:
            x = self._encrypt(x)
        return x


@dataclass(frozen=True)
class Slot:
    """One variable of a prompt: which list it draws from, and whether it is part of the
    unique key (each combination of unique slots appears at most once in a run)."""

    list_name: str
    size: int
    unique: bool


class ComboSampler:
    """Draw i gives one entry index per slot; unique slots never repeat a combination.

    Free slots (a story feature, a persona) need not be unique: each is drawn from a
    generator seeded by (seed, i), so draw i stays O(1) and reproducible. Slots that
    read the same list never get the same entry in one draw (two distinct personas).
    """

    def __init__(self, slots: Sequence[Slot], seed: int = 0) -> None:
        self.slots = list(slots)
        self.seed = seed
        unique_lists = [s.list_name for s in self.slots if s.unique]
        if len(set(unique_lists)) != len(unique_lists):
            raise ValueError("two unique slots read the same list; make one of them free")
        for name in set(s.list_name for s in self.slots):
            sharing = [s for s in self.slots if s.list_name == name]
            if len(sharing) > sharing[0].size:
                raise ValueError(f"list {name!r} has fewer entries than slots that need one")
        self._unique_sizes = [s.size for s in self.slots if s.unique]
        self.capacity = math.prod(self._unique_sizes)
        self._perm = SeededPermutation(self.capacity, seed)

    def __len__(self) -> int:
        return self.capacity

    def draw(self, i: int) -> tuple[int, ...]:
        """Entry index for every slot, in slot order, of draw i."""
        code = self._perm(i)
        unique_digits = []
        for size in reversed(self._unique_sizes):
            code, digit = divmod(code, size)
            unique_digits.append(digit)
        unique_digits.reverse()

        choices = [0] * len(self.slots)
        used: dict[str, set[int]] = {}
        digits = iter(unique_digits)
        for k, slot in enumerate(self.slots):
            if slot.unique:
                choices[k] = next(digits)
                used.setdefault(slot.list_name, set()).add(choices[k])
        rng = random.Random(f"{self.seed}:{i}")
        for k, slot in enumerate(self.slots):
            if not slot.unique:
                taken = used.setdefault(slot.list_name, set())
                choices[k] = rng.randrange(slot.size)
                while choices[k] in taken:
                    choices[k] = rng.randrange(slot.size)
                taken.add(choices[k])
        return tuple(choices)
