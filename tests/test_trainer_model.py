"""The GPT learns, its KV cache is exact, and its export is a plain Llama/Qwen3 folder."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from trainer.export import export, load_hf
from trainer.model import GPT, mean_loss, preset_config
from trainer.sample import generate

pytest_plugins = ["tests.trainer_helpers"]  # fixtures: tok_dir, hindi_data, pretrained_run


def tiny(vocab: int = 300, **overrides) -> GPT:
    torch.manual_seed(0)
    return GPT(preset_config("tiny", vocab, 64, **overrides))


def test_tiny_preset_is_about_one_million_parameters_at_8k_vocabulary():
    assert 0.8e6 < GPT(preset_config("tiny", 8000, 256)).num_params() < 1.3e6


def test_overfitting_one_batch_drives_the_loss_near_zero():
    model = tiny()
    gen = torch.Generator().manual_seed(0)
    batch = torch.randint(0, 300, (4, 33), generator=gen)
    x, y = batch[:, :-1], batch[:, 1:]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = mean_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def test_kv_cache_decoding_matches_full_recomputation():
    model = tiny(qk_norm=True).eval()
    prompt = [1, 5, 9, 42]
    cached = generate(model, prompt, 1, 20, 0.0, None, set(), torch.Generator())[0]
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(20):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    assert cached == ids[len(prompt) :]


@pytest.mark.parametrize(
    ("overrides", "hf_class"),
    [
        ({}, "LlamaForCausalLM"),
        ({"qk_norm": True, "tie_embeddings": False, "activation": "gelu"}, "Qwen3ForCausalLM"),
    ],
)
def test_export_loads_with_auto_classes_matches_logits_and_generates(
    tmp_path,
    tok_dir,
    overrides,
    hf_class,
):
    vocab = AutoTokenizer.from_pretrained(str(tok_dir)).__len__()
    model = tiny(vocab, **overrides).eval()
    with torch.no_grad():  # make the norms non-trivial so a wrong mapping would show
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    out = export(model, tok_dir, tmp_path / "hf")
    hf = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    assert type(hf).__name__ == hf_class
    x = torch.randint(0, vocab, (2, 64))
    with torch.no_grad():
        assert (hf(x).logits - model(x)).abs().max().item() < 1e-4
    hf_tok = AutoTokenizer.from_pretrained(str(out))
    inputs = hf_tok("एक दिन", return_tensors="pt")
    assert inputs["input_ids"][0, 0].item() == hf_tok.bos_token_id
    generated = hf.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] > inputs["input_ids"].shape[1]
    back, _ = load_hf(out)
    with torch.no_grad():
        assert torch.equal(back(x), model(x))
