"""What defines a run (`run.json`), with every bound declared once.

The command lines, the sweep files and the Python API all check values against these models
(trainer/options.py), so `trainer train --steps 0`, `steps: 0` in a sweep file and
`pretrain(..., {"steps": 0})` fail the same way, with one line naming the setting. No torch
here: the command line checks its options against these models before loading torch.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trainer import freeze


class ModelConfig(BaseModel):
    """The shape of a model; saved in every checkpoint and mapped onto the exported config."""

    model_config = ConfigDict(extra="forbid")

    vocab_size: int = Field(gt=0)
    block_size: int = Field(512, gt=1)  # longest sequence, and the length of the rotary tables
    n_layer: int = Field(gt=0)
    n_head: int = Field(gt=0)
    d_model: int = Field(gt=0)
    d_ff: int = Field(gt=0)
    activation: Literal["silu", "gelu"] = "silu"  # gated either way: SwiGLU or GeGLU
    qk_norm: bool = False
    tie_embeddings: bool = True
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    # Training only: on attention weights (Llama's `attention_dropout`) and, as in GPT-2, on
    # what each attention and MLP branch adds to the residual stream (export keeps the first).
    dropout: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_split_the_width(self) -> "ModelConfig":
        # rotary positions rotate pairs of a head's dimensions, so a head needs an even size
        if self.d_model % self.n_head or self.head_dim % 2:
            raise ValueError(
                f"width {self.d_model} must split into {self.n_head} heads of an even size; "
                "change --width or --heads"
            )
        return self

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head


class TrainConfig(BaseModel):
    """The optimisation settings of a run; `None` where the default depends on the run."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(2000, gt=0)
    batch_size: int = Field(16, gt=0)  # rows per process per micro-step
    grad_accum: int = Field(1, gt=0)
    lr: float = Field(3e-3, gt=0, le=10)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)  # cosine decays to lr * this
    warmup_steps: int | None = Field(None, ge=0)  # None: the first 5% of the steps
    weight_decay: float = Field(0.1, ge=0)  # on 2-D weights only
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    grad_clip: float = Field(1.0, gt=0)
    optimizer: Literal["adamw", "muon"] = "adamw"  # muon: hidden matrices by Muon, rest AdamW
    eval_every: int = Field(100, gt=0)
    eval_examples: int = Field(64, gt=0)
    checkpoint_every: int = Field(200, gt=0)
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(10, gt=0)
    seed: int = Field(1337, ge=0)
    compile: bool = False
    freeze: str | None = None  # parts kept fixed, see trainer/freeze.py

    @field_validator("freeze")
    @classmethod
    def _freeze_syntax(cls, spec: str | None) -> str | None:
        if spec is not None:
            freeze.parse(spec)
        return spec


class ClassifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text_column: str = "text"
    label_column: str = "label"
    labels: list[str]  # class i is labels[i]; sorted, so the order never depends on the rows


class DPOSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    beta: float = Field(0.1, gt=0, le=100)  # how far the policy may move from the reference
    chat: bool = True  # prompt as a user turn and answers as assistant turns, or plain text


class RunSpec(BaseModel):
    """Everything that defines a run; saved as run.json and inside every checkpoint."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["pretrain", "sft", "classify", "dpo"]
    data: str
    init: str | None = None  # the run whose weights this one starts from
    preset: str
    model: ModelConfig
    train: TrainConfig
    classify: ClassifySettings | None = None
    dpo: DPOSettings | None = None


class ModelOptions(BaseModel):
    """The model-shape flags of `trainer train`; mapped onto ModelConfig's fields."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["tiny", "5M", "20M", "53M", "150M"] | None = None
    width: int | None = Field(None, gt=0, le=16384)
    depth: int | None = Field(None, gt=0, le=256)
    heads: int | None = Field(None, gt=0, le=256)
    block_size: int | None = Field(None, gt=1, le=131072)
    qk_norm: bool | None = None
    activation: Literal["silu", "gelu"] | None = None
    tie_embeddings: bool | None = None
    dropout: float | None = Field(None, ge=0, lt=1)


# flag names that differ from the field they set
MODEL_FIELDS = {"width": "d_model", "depth": "n_layer", "heads": "n_head"}
