"""Our GPT <-> a Hugging Face folder that `AutoModelForCausalLM` loads without remote code.

The block is Llama's (Qwen3's with qk_norm), so export is renaming plus splitting the fused
qkv and gate_up matrices; import is the reverse, so any exported folder loads back into our
model (for `trainer sample` and `trainer sft`).
"""

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import GenerationConfig, LlamaConfig, Qwen3Config

from factory.errors import KahaniError
from trainer.model import GPT, ModelConfig
from trainer.tokenizer import END, TextTokenizer, load_tokenizer

HF_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
)


def hf_config(cfg: ModelConfig, tok: TextTokenizer) -> LlamaConfig | Qwen3Config:
    common = dict(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.d_ff,
        num_hidden_layers=cfg.n_layer,
        num_attention_heads=cfg.n_head,
        num_key_value_heads=cfg.n_head,
        head_dim=cfg.head_dim,
        hidden_act=cfg.activation,
        max_position_embeddings=cfg.block_size,
        rms_norm_eps=cfg.norm_eps,
        rope_theta=cfg.rope_theta,
        attention_bias=False,
        attention_dropout=cfg.dropout,
        tie_word_embeddings=cfg.tie_embeddings,
        bos_token_id=tok.bos_id,
        eos_token_id=tok.eos_id,
        pad_token_id=tok.pad_id,
        torch_dtype="float32",
    )
    if cfg.qk_norm:
        return Qwen3Config(**common, use_sliding_window=False)
    return LlamaConfig(**common, mlp_bias=False)


def to_hf_tensors(model: GPT) -> dict[str, torch.Tensor]:
    cfg, out = model.cfg, {}
    C, F = cfg.d_model, cfg.d_ff
    out["model.embed_tokens.weight"] = model.embed.weight
    for i, block in enumerate(model.blocks):
        p = f"model.layers.{i}."
        q, k, v = block.attn.qkv.weight.split(C, dim=0)  # (3C, C) -> three (C, C)
        out[p + "self_attn.q_proj.weight"] = q
        out[p + "self_attn.k_proj.weight"] = k
        out[p + "self_attn.v_proj.weight"] = v
        out[p + "self_attn.o_proj.weight"] = block.attn.proj.weight
        if cfg.qk_norm:
            out[p + "self_attn.q_norm.weight"] = block.attn.q_norm.weight
            out[p + "self_attn.k_norm.weight"] = block.attn.k_norm.weight
        gate, up = block.mlp.gate_up.weight.split(F, dim=0)  # (2F, C) -> two (F, C)
        out[p + "mlp.gate_proj.weight"] = gate
        out[p + "mlp.up_proj.weight"] = up
        out[p + "mlp.down_proj.weight"] = block.mlp.down.weight
        out[p + "input_layernorm.weight"] = block.attn_norm.weight
        out[p + "post_attention_layernorm.weight"] = block.mlp_norm.weight
    out["model.norm.weight"] = model.norm.weight
    if not cfg.tie_embeddings and model.lm_head is not None:  # a classifier's GPT has no lm_head
        out["lm_head.weight"] = model.lm_head.weight
    return {k: v.detach().float().contiguous().cpu() for k, v in out.items()}


def export(model: GPT, tokenizer_dir: Path, out: Path) -> Path:
    """Write the five files of the `hf/` contract (and the chat template) into `out`."""
    tok = load_tokenizer(tokenizer_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf_config(model.cfg, tok).save_pretrained(str(out))
    save_file(to_hf_tensors(model), out / "model.safetensors", metadata={"format": "pt"})
    tok.hf.save_pretrained(str(out))
    stop = [tok.eos_id]
    if END in tok.hf.get_vocab():
        stop.append(tok.special_id(END))
    GenerationConfig(
        bos_token_id=tok.bos_id,
        eos_token_id=stop,
        pad_token_id=tok.pad_id,
        do_sample=True,
        temperature=0.8,
        top_k=50,
        max_new_tokens=300,
    ).save_pretrained(str(out))
    return out


def export_classifier(model: nn.Module, labels: list[str], tokenizer_dir: Path, out: Path) -> Path:
    """A folder `AutoModelForSequenceClassification` loads: the GPT's weights under `model.`,
    the head as `score.weight`, labels in id2label; the tokenizer pads with `<pad>`, which
    transformers uses to find each row's last token."""
    tok = load_tokenizer(tokenizer_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = hf_config(model.cfg.model_copy(update={"tie_embeddings": False}), tok)
    config.architectures = [
        "Qwen3ForSequenceClassification" if model.cfg.qk_norm else "LlamaForSequenceClassification"
    ]
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    config.save_pretrained(str(out))
    tensors = to_hf_tensors(model.gpt)
    tensors["score.weight"] = model.score.weight.detach().float().contiguous().cpu()
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    tok.hf.save_pretrained(str(out))
    return out


def _refuse_classifier(hf: dict) -> None:
    if any("ForSequenceClassification" in a for a in hf.get("architectures") or []):
        raise KahaniError(
            "this folder holds a classifier (from `trainer classify`), not a language model; "
            "give a run made by `trainer train`, `sft` or `dpo`"
        )


def _model_config(hf: dict) -> ModelConfig:
    kind = hf.get("model_type")
    if kind not in ("llama", "qwen3"):
        raise KahaniError(
            f"model_type {kind!r} is not a kahani export; give a folder made by `trainer train`"
        )
    heads = hf["num_attention_heads"]
    if (
        hf.get("num_key_value_heads", heads) != heads
        or hf.get("attention_bias")
        or hf.get("mlp_bias")
    ):
        raise KahaniError(
            "this Llama/Qwen3 variant (grouped kv heads or biases) is not supported; "
            "use a kahani export"
        )
    return ModelConfig(
        vocab_size=hf["vocab_size"],
        block_size=hf["max_position_embeddings"],
        n_layer=hf["num_hidden_layers"],
        n_head=heads,
        d_model=hf["hidden_size"],
        d_ff=hf["intermediate_size"],
        activation=hf["hidden_act"],
        qk_norm=kind == "qwen3",
        tie_embeddings=hf.get("tie_word_embeddings", True),
        rope_theta=_rope_theta(hf),
        norm_eps=hf["rms_norm_eps"],
        dropout=hf.get("attention_dropout", 0.0),
    )


def _rope_theta(hf: dict) -> float:
    params = hf.get("rope_parameters") or {}
    return float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))


def hf_dir(path: Path) -> Path:
    """A run directory's exported folder, or `path` itself when it is one."""
    return path / "hf" if (path / "hf").is_dir() else path


def load_hf(path: Path) -> tuple[GPT, TextTokenizer]:
    """Our model and the tokenizer from an exported folder (or a run directory holding hf/)."""
    path = hf_dir(path)
    if (path / "config.json").is_file():  # a classifier's folder: say so, not what it lacks
        _refuse_classifier(json.loads((path / "config.json").read_text()))
    missing = [f for f in HF_FILES if not (path / f).is_file()]
    if missing:
        raise KahaniError(
            f"{path} lacks {', '.join(missing)}; give a finished run or its hf/ folder"
        )
    cfg = _model_config(json.loads((path / "config.json").read_text()))
    try:
        hf = load_file(path / "model.safetensors")
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise KahaniError(
            f"{path / 'model.safetensors'} cannot be read ({err}); export the run again"
        ) from err
    model = GPT(cfg)
    state: dict[str, torch.Tensor] = {
        "embed.weight": hf["model.embed_tokens.weight"],
        "norm.weight": hf["model.norm.weight"],
    }
    state["lm_head.weight"] = hf.get("lm_head.weight", hf["model.embed_tokens.weight"])
    for i in range(cfg.n_layer):
        p, b = f"model.layers.{i}.", f"blocks.{i}."
        state[b + "attn.qkv.weight"] = torch.cat(
            [hf[p + f"self_attn.{n}_proj.weight"] for n in ("q", "k", "v")], dim=0
        )
        state[b + "attn.proj.weight"] = hf[p + "self_attn.o_proj.weight"]
        if cfg.qk_norm:
            state[b + "attn.q_norm.weight"] = hf[p + "self_attn.q_norm.weight"]
            state[b + "attn.k_norm.weight"] = hf[p + "self_attn.k_norm.weight"]
        state[b + "mlp.gate_up.weight"] = torch.cat(
            [hf[p + "mlp.gate_proj.weight"], hf[p + "mlp.up_proj.weight"]], dim=0
        )
        state[b + "mlp.down.weight"] = hf[p + "mlp.down_proj.weight"]
        state[b + "attn_norm.weight"] = hf[p + "input_layernorm.weight"]
        state[b + "mlp_norm.weight"] = hf[p + "post_attention_layernorm.weight"]
    model.load_state_dict(state)
    return model, load_tokenizer(path)


def copy_tokenizer(src: Path, dst: Path) -> None:
    """Keep a run's own copy of its tokenizer, so the run does not depend on where it came from."""
    if dst.exists():
        shutil.rmtree(dst)
    load_tokenizer(src).hf.save_pretrained(str(dst))
