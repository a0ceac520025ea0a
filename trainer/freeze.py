"""One `--freeze` syntax for every kind of run (train, sft, classify, dpo): which parts stay fixed.

SPEC is a comma-separated list of parts:

    embeddings     the token embeddings; with tied embeddings that matrix is also the output
                   layer, so it stays fixed too
    blocks:I-J     transformer blocks I to J, 0 the lowest (`blocks:0-1`: the lowest two);
                   `blocks:I` for one
    all-but-head   everything but the head: the final norm and the output layer (the language
                   model head, or a classifier's score layer; a tied output layer is the
                   embedding matrix, which then keeps training)

Frozen parameters get no gradient and are left out of the optimizer, so they end a run bit
for bit as they started it.
"""

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from factory.errors import KahaniError

if TYPE_CHECKING:  # torch loads only when a model is frozen; parsing SPEC needs none of it
    from torch import nn

PARTS = "embeddings, blocks:I-J (0 is the lowest block), blocks:I or all-but-head"
_BLOCKS = re.compile(r"blocks:(\d+)(?:-(\d+))?")


@dataclass(frozen=True)
class FreezeSpec:
    embeddings: bool = False
    blocks: tuple[tuple[int, int], ...] = ()  # inclusive ranges
    all_but_head: bool = False


def parse(spec: str) -> FreezeSpec:
    """The parts named in SPEC; ValueError (with what to write instead) for anything else."""
    embeddings, all_but_head, blocks = False, False, []
    for part in (p.strip() for p in spec.split(",")):
        if part == "embeddings":
            embeddings = True
        elif part == "all-but-head":
            all_but_head = True
        elif m := _BLOCKS.fullmatch(part):
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
            if hi < lo:
                raise ValueError(f"{part!r} runs backwards; write blocks:{hi}-{lo}")
            blocks.append((lo, hi))
        else:
            raise ValueError(f"unknown part {part!r}; use {PARTS}, separated by commas")
    return FreezeSpec(embeddings, tuple(blocks), all_but_head)


def _parts(model: "nn.Module") -> tuple["nn.Module", list["nn.Module"]]:
    """The GPT inside `model` and the modules that make up its head."""
    gpt = getattr(model, "gpt", model)  # a Classifier wraps a GPT and adds `score`
    head = [gpt.norm, model.score if hasattr(model, "score") else gpt.lm_head]
    return gpt, head


def apply(spec: str | None, model: "nn.Module") -> str:
    """Freeze the parts named in `spec` and say how many parameters still train."""
    params = list(model.parameters())  # each shared (tied) parameter once
    total = sum(p.numel() for p in params)
    if spec:
        parsed = parse(spec)
        gpt, head = _parts(model)
        frozen: list = []
        if parsed.embeddings:
            frozen += list(gpt.embed.parameters())
        n = len(gpt.blocks)
        for lo, hi in parsed.blocks:
            if hi >= n:
                raise KahaniError(
                    f"--freeze blocks:{lo}-{hi} names block {hi}, but the model has {n} blocks "
                    f"(0-{n - 1})"
                )
            for block in gpt.blocks[lo : hi + 1]:
                frozen += list(block.parameters())
        if parsed.all_but_head:
            keep = {id(p) for module in head for p in module.parameters()}
            frozen += [p for p in params if id(p) not in keep]
        for p in frozen:
            p.requires_grad_(False)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    if trainable == 0:
        raise KahaniError(f"--freeze {spec} leaves nothing to train; freeze fewer parts")
    return f"trainable parameters: {trainable:,} of {total:,} ({trainable / total:.1%})"
