"""Examples for training, addressed by a global sample number so resume needs only the step.

Sample k of a run is example `perm_e[k mod N]` of epoch `e = k // N`, where `perm_e` is a
permutation seeded by (seed, e). Step s, micro-batch m, rank r, row b reads sample
`s*G + (m*world + r)*B + b` (G = B * accum * world), so a run split over 2 processes reads
the same examples per step as one process with twice the accumulation.
"""

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from factory.errors import KahaniError
from trainer.data import read_shard


class Examples(Protocol):
    def __len__(self) -> int: ...

    def collate(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, T) and targets (B, T), targets -100 where no loss is taken."""
        ...


class TokenWindows:
    """Non-overlapping windows of block_size+1 tokens over the shards of one split."""

    def __init__(self, shard_paths: list[Path], block_size: int) -> None:
        self.block_size = block_size
        self.shards = [read_shard(p) for p in shard_paths]
        # (shard, start) of every window; window i's last token is window i+1's first
        self.starts = [
            (s, start)
            for s, tokens in enumerate(self.shards)
            for start in range(0, len(tokens) - block_size, block_size)
        ]
        if not self.starts:
            total = sum(len(t) for t in self.shards)
            raise KahaniError(
                f"split has {total} tokens, fewer than block size {block_size} + 1; "
                "use a smaller --block-size or more data"
            )

    def __len__(self) -> int:
        return len(self.starts)

    def collate(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = []
        for i in indices:
            s, start = self.starts[i]
            rows.append(
                np.asarray(self.shards[s][start : start + self.block_size + 1], dtype=np.int64)
            )
        chunk = torch.from_numpy(np.stack(rows))  # (B, T+1)
        return chunk[:, :-1], chunk[:, 1:]


class Conversations:
    """Tokenized conversations, padded per batch; padding and non-assistant tokens give no loss."""

    def __init__(self, examples: list[tuple[list[int], list[int]]], pad_id: int) -> None:
        self.examples = examples  # (ids, labels) with labels -100 where no loss is taken
        self.pad_id = pad_id

    def __len__(self) -> int:
        return len(self.examples)

    def collate(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = [self.examples[i] for i in indices]
        T = max(len(ids) for ids, _ in batch) - 1
        x = torch.full((len(batch), T), self.pad_id, dtype=torch.long)
        y = torch.full((len(batch), T), -100, dtype=torch.long)
        for row, (ids, labels) in enumerate(batch):
            n = len(ids) - 1
            x[row, :n] = torch.tensor(ids[:-1])
            y[row, :n] = torch.tensor(labels[1:])  # predict token t+1 from tokens <= t
        return x, y


class Sampler:
    """Maps global sample numbers to example indices through per-epoch permutations."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed = size, seed
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def index(self, k: int) -> int:
        epoch = k // self.size
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.size, generator=gen)
        return int(self._perm[k % self.size])

    def micro_batch(
        self, step: int, micro: int, accum: int, batch: int, rank: int, world: int
    ) -> list[int]:
        base = step * batch * accum * world + (micro * world + rank) * batch
        return [self.index(base + b) for b in range(batch)]
