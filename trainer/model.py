"""A small decoder-only GPT, readable top to bottom.

The block is the Llama block (RMSNorm before attention and MLP, rotary positions, a gated
MLP, no biases), so export maps weight for weight onto `LlamaForCausalLM`; with `qk_norm`
it is the Qwen3 block and maps onto `Qwen3ForCausalLM`. Two differences are only in how
weights are stored, for speed: q, k and v share one matrix, and so do the MLP's gate and up.

Shapes in comments: B batch, T time, C model width, H heads, D head size (C = H * D),
F MLP width, V vocabulary, L layers.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainer.spec import ModelConfig

# name -> (layers, heads, width). Parameter counts assume an 8k-16k vocabulary.
PRESETS: dict[str, tuple[int, int, int]] = {
    "tiny": (3, 4, 96),  # about 1M: for tests
    "5M": (6, 6, 192),
    "20M": (8, 6, 384),
    "53M": (6, 8, 512),  # the published Hindi reference shape, 512 wide and 6 deep
    "150M": (14, 14, 896),
}


def preset_config(name: str, vocab_size: int, block_size: int, **overrides: object) -> ModelConfig:
    """A config for a preset, with any field overridden (a `d_model` of its own too); the gated
    MLP is 8/3 as wide as the model, so it costs what a 4x GELU MLP costs."""
    n_layer, n_head, d_model = PRESETS[name]
    fields: dict[str, object] = dict(
        vocab_size=vocab_size,
        block_size=block_size,
        n_layer=n_layer,
        n_head=n_head,
        d_model=d_model,
    )
    fields.update(overrides)
    fields.setdefault("d_ff", 32 * math.ceil(8 * int(fields["d_model"]) / 3 / 32))
    return ModelConfig.model_validate(fields)


def rotary_tables(cfg: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin, each (block_size, D), computed exactly as transformers' Llama does."""
    d = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    freqs = torch.outer(torch.arange(cfg.block_size).float(), inv_freq)  # (T, D/2)
    angles = torch.cat((freqs, freqs), dim=-1)  # (T, D): the "rotate half" layout
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, H, T, D) by position: pairs are (i, i + D/2), the layout Llama checkpoints use."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class KVCache:
    """Keys and values of the tokens seen so far, so each new token costs one step, not T."""

    def __init__(
        self, cfg: ModelConfig, batch: int, max_len: int, device: torch.device, dtype: torch.dtype
    ) -> None:
        shape = (cfg.n_layer, batch, cfg.n_head, max_len, cfg.head_dim)  # (L, B, H, T, D)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.pos = 0  # tokens already stored

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Store (B, H, T, D) new keys/values; return all keys/values so far, (B, H, pos+T, D)."""
        end = self.pos + k.size(2)
        self.k[layer, :, :, self.pos : end] = k
        self.v[layer, :, :, self.pos : end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        self.cfg, self.layer = cfg, layer
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)  # q, k, v rows stacked
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        if cfg.qk_norm:  # normalise each head's q and k: keeps attention logits tame
            self.q_norm = nn.RMSNorm(cfg.head_dim, eps=cfg.norm_eps)
            self.k_norm = nn.RMSNorm(cfg.head_dim, eps=cfg.norm_eps)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None
    ) -> torch.Tensor:
        B, T, C = x.shape
        H, D = self.cfg.n_head, self.cfg.head_dim
        q, k, v = self.qkv(x).view(B, T, 3, H, D).unbind(dim=2)  # each (B, T, H, D)
        if self.cfg.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H, T, D)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # (B, H, pos+T, D)
        # Causal within the new tokens. With a cache, new tokens are either the whole prompt
        # (cache empty, so the mask is the usual one) or a single token that may see everything.
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=T > 1, dropout_p=self.cfg.dropout if self.training else 0.0
        )  # (B, H, T, D)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.gate_up = nn.Linear(cfg.d_model, 2 * cfg.d_ff, bias=False)  # gate rows, then up
        self.down = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)
        self.act = F.silu if cfg.activation == "silu" else F.gelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)  # each (B, T, F)
        return self.down(self.act(gate) * up)  # (B, T, C)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        self.attn_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = Attention(cfg, layer)
        self.mlp_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None
    ) -> torch.Tensor:
        x = x + self.drop(self.attn(self.attn_norm(x), cos, sin, cache))  # pre-norm residual
        return x + self.drop(self.mlp(self.mlp_norm(x)))


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:  # one (V, C) matrix reads tokens in and scores them out
            self.lm_head.weight = self.embed.weight
        cos, sin = rotary_tables(cfg)
        self.register_buffer("cos", cos, persistent=False)  # (block_size, D)
        self.register_buffer("sin", sin, persistent=False)
        self.apply(self._init_weights)
        # GPT-2's trick: shrink the layers that write into the residual stream, so its
        # variance does not grow with depth.
        for block in self.blocks:
            for w in (block.attn.proj.weight, block.mlp.down.weight):
                nn.init.normal_(w, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Token ids (B, T) -> logits (B, T, V). With a cache, idx continues what it holds."""
        return self.lm_head(self.hidden(idx, cache))

    def hidden(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Token ids (B, T) -> the final normalised hidden states (B, T, C) the heads read."""
        start = cache.pos if cache is not None else 0
        T = idx.size(1)
        if start + T > self.cfg.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds block_size")
        cos, sin = self.cos[start : start + T], self.sin[start : start + T]  # (T, D)
        x = self.embed(idx)  # (B, T, C)
        for block in self.blocks:
            x = block(x, cos, sin, cache)
        if cache is not None:
            cache.pos += T
        return self.norm(x)


def token_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-token cross entropy in nats, (B, T); targets of -100 (padding, prompts) give 0."""
    B, T, V = logits.shape
    losses = F.cross_entropy(
        logits.float().view(B * T, V), targets.reshape(B * T), ignore_index=-100, reduction="none"
    )
    return losses.view(B, T)


def mean_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy over the tokens that count (targets != -100)."""
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100)
