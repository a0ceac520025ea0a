"""Offline metrics (judge.metrics) and bootstrap intervals (judge.aggregate), checked against
hand arithmetic, against sacrebleu's public functions, and on tiny models built here."""

import math

import numpy as np
import pytest
import sacrebleu
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    BertConfig,
    BertModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from factory.transliteration import (
    group_spellings,
    normalized_entropy,
    spelling_distance,
    spelling_form,
)
from judge.aggregate import mean_interval, paired_bootstrap
from judge.metrics import REGISTRY, compute
from judge.metrics.codemix import cmi, i_index, m_index
from judge.metrics.diversity import distinct_n, self_bleu
from judge.metrics.embedding import similarity_metrics
from judge.metrics.lm import lm_scores
from judge.metrics.reference import chrf_scores, word_string

torch.set_num_threads(1)


def hinglish(*texts: str) -> list[dict]:
    return [{"prompt": "", "completion": t, "language": "hinglish"} for t in texts]


# --- code-mixing -------------------------------------------------------------------------


def test_indices_on_tagged_tokens():
    tags = ["hi", "hi", "en", "hi"]
    assert cmi(tags) == pytest.approx(25.0)  # 100 * (1 - 3/4)
    # p = 3/4, 1/4: sum p^2 = 9/16 + 1/16 = 10/16; M = (6/16) / (10/16) = 0.6
    assert m_index(tags) == pytest.approx(0.6)
    assert m_index(["hi", "en"]) == pytest.approx(1.0)  # even split: (1 - 1/2) / (1/2)
    assert m_index(["en", "en"]) == 0.0
    # hi|en, en|en, en|hi, hi|hi: 2 switches over 4 switch points
    assert i_index(["hi", "en", "en", "hi", "hi"]) == pytest.approx(0.5)
    assert cmi([]) is None and m_index([]) is None and i_index(["hi"]) is None


def test_indices_from_text_skip_ambiguous_words():
    # Main(amb) office(en) ja raha hoon(hi) meeting(en) bahut(hi) boring(en) hai(hi):
    # without "Main": en hi hi hi en hi en hi -> 5 hi, 3 en, 8 tokens
    text = "Main office ja raha hoon, meeting bahut boring hai"
    results = compute(["cmi", "m_index", "i_index"], hinglish(text))
    assert results["cmi"].corpus == pytest.approx(37.5)  # 100 * (1 - 5/8)
    # sum p^2 = 25/64 + 9/64 = 34/64; M = (30/64) / (34/64) = 15/17
    assert results["m_index"].corpus == pytest.approx(15 / 17)
    # switches en>hi, hi>en, en>hi, hi>en, en>hi = 5 over 7 adjacent pairs
    assert results["i_index"].corpus == pytest.approx(5 / 7)


def test_codemix_metrics_apply_to_hinglish_only():
    samples = [*hinglish("meeting bahut boring hai"), {"completion": "राम", "language": "hindi"}]
    result = compute(["cmi"], samples)["cmi"]
    assert result.per_sample[1] is None and result.per_sample[0] is not None
    skipped = compute(["cmi"], samples[1:])["cmi"]
    assert skipped.corpus is None and "hinglish" in skipped.skipped_reason


# --- transliteration consistency -----------------------------------------------------------


@pytest.mark.parametrize(
    "variants",
    [
        ["nahi", "nahin", "nai"],
        ["kya", "kia"],
        ["accha", "acha", "achha"],
        ["kyun", "kyu", "kyon"],
        ["bahut", "bohot"],
    ],
)
def test_spelling_variants_share_a_group(variants):
    groups = group_spellings({v: 10 - i for i, v in enumerate(variants)})
    assert set(groups.values()) == {variants[0]}  # named after the most frequent spelling


@pytest.mark.parametrize(
    "pair",
    [
        ("meri", "mere"), ("pal", "pul"), ("ki", "ke"), ("baje", "bheje"),
        ("hai", "hain"),  # singular and plural: different words, not spellings
        ("karega", "karoge"), ("chalti", "chalaati"), ("rakhna", "rakha"), ("bhai", "bhi"),
    ],
)  # fmt: skip
def test_different_words_stay_apart(pair):
    groups = group_spellings(dict.fromkeys(pair, 1), constraints={})  # the rules alone
    assert groups[pair[0]] != groups[pair[1]]


def test_spelling_distance_prices_what_chat_spelling_drops():
    def distance(a, b):
        return spelling_distance(spelling_form(a), spelling_form(b))

    assert distance("nahi", "nhi") == 0.375  # one vowel dropped between consonants
    assert distance("samajh", "smjh") == 0.75  # two
    assert distance("kya", "kia") == 0.25  # a glide written as a vowel
    assert distance("abhi", "abi") == 0.5  # an aspiration not written
    assert distance("accha", "achha") == distance("zaroor", "jarur") == 0.0  # same form
    assert distance("khula", "khola") == 1.5  # a vowel written as another: another word
    assert distance("saath", "saat") == 1.0  # th is written reliably


def test_consistency_is_one_on_consistent_text():
    samples = hinglish("mujhe nahi pata yaar", "nahi yaar, accha hai", "accha nahi")
    result = compute(["transliteration_consistency"], samples)["transliteration_consistency"]
    assert result.corpus == 1.0 and result.per_sample == [1.0, 1.0, 1.0]
    assert result.details == {"top_inconsistent_groups": []}


def test_consistency_is_lower_on_mixed_spellings():
    samples = hinglish("mujhe nahi pata", "nahi yaar", "nahin yaar", "accha acha")
    result = compute(["transliteration_consistency"], samples)["transliteration_consistency"]
    # Hindi words: mujhe, pata (1 each), yaar (2), nahi x2 + nahin (3), accha + acha (2): 9.
    # nahi group: entropy of (2/3, 1/3) over ln 2 = 0.9183; accha group: (1/2, 1/2) -> 1.0
    nahi_entropy = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)) / math.log(2)
    assert normalized_entropy([2, 1]) == pytest.approx(nahi_entropy)
    assert result.corpus == pytest.approx(1 - (3 * nahi_entropy + 2 * 1.0) / 9)
    top = result.details["top_inconsistent_groups"]
    assert top[0]["group"] == "nahi" and top[0]["variants"] == {"nahi": 2, "nahin": 1}
    assert top[1]["group"] == "accha"
    # within one text, "accha acha" is an even split: 0; the others spell each word once
    assert result.per_sample == [1.0, 1.0, 1.0, 0.0]


# --- reference metrics ---------------------------------------------------------------------


def test_rouge_l_on_devanagari_is_the_lcs_f_measure():
    sample = {
        "prompt": "",
        "completion": "राम ने मीठा आम खाया",  # 5 words
        "reference": "राम ने आम खाया",  # 4 words, all in order in the completion: LCS = 4
        "language": "hindi",
    }
    # P = 4/5, R = 4/4, F = 2PR / (P + R) = 1.6 / 1.8 = 8/9
    assert compute(["rouge_l"], [sample])["rouge_l"].corpus == pytest.approx(8 / 9)


def test_chrf_and_bleu_are_100_on_identical_text_with_signatures():
    text = "छोटी बच्ची ने बग़ीचे में एक तितली देखी। वह बहुत ख़ुश हुई।"
    sample = {"prompt": "", "completion": text, "reference": text, "language": "hindi"}
    results = compute(["chrf", "bleu"], [sample, sample])
    for name in ("chrf", "bleu"):
        assert results[name].corpus == pytest.approx(100.0)
        assert results[name].per_sample == [pytest.approx(100.0)] * 2
    assert "nc:6" in results["chrf"].signature and "version:" in results["chrf"].signature
    assert "tok:none" in results["bleu"].signature and "flores" not in results["bleu"].signature
    assert word_string("बग़ीचे में, एक!") == "बग़ीचे में एक"


def test_chrf_matches_sacrebleu_public_api():
    hyps = ["राम ने आम खाया", "the cat sat on a mat", "সে বাড়ি গেল"]
    refs = ["राम ने केला खाया", "a cat sat on the mat", "সে স্কুলে গেল"]
    sentences, corpus = chrf_scores(hyps, refs)
    for hyp, ref, score in zip(hyps, refs, sentences, strict=True):
        assert score == pytest.approx(sacrebleu.sentence_chrf(hyp, [ref]).score)
    assert corpus == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)


def test_reference_metrics_leave_samples_without_reference_out():
    samples = [
        {"prompt": "", "completion": "a b c", "reference": "a b c", "language": "english"},
        {"prompt": "", "completion": "a b c", "language": "english"},
    ]
    result = compute(["chrf"], samples)["chrf"]
    assert result.per_sample[1] is None and result.corpus == pytest.approx(100.0)
    assert "reference" in compute(["bleu"], samples[1:])["bleu"].skipped_reason


# --- diversity, text -----------------------------------------------------------------------


def test_distinct_n_by_hand():
    texts = ["a b a b", "a b c"]
    # unigrams: a b a b a b c -> 3 unique of 7; per text 2/4 and 3/3
    assert distinct_n(texts, 1) == ([0.5, 1.0], pytest.approx(3 / 7))
    # bigrams: ab ba ab | ab bc -> {ab, ba, bc} 3 unique of 5; per text 2/3 and 2/2
    assert distinct_n(texts, 2) == ([pytest.approx(2 / 3), 1.0], pytest.approx(3 / 5))
    assert distinct_n(["एक"], 2) == ([None], None)


def test_self_bleu_matches_sacrebleu_sentence_bleu():
    texts = [
        "राजा ने एक बड़ा महल बनाया और उसमें रहने लगा",
        "राजा ने एक छोटा महल बनाया और वहाँ रहने लगा",
        "एक लड़की स्कूल गई और उसने गाना गाया",
        "राजा ने महल बनाया",
    ]
    words = [word_string(t) for t in texts]
    expected = [
        sacrebleu.sentence_bleu(w, words[:i] + words[i + 1 :], tokenize="none").score
        for i, w in enumerate(words)
    ]
    assert self_bleu(texts) == pytest.approx(expected)
    samples = [{"prompt": "", "completion": t, "language": "hindi"} for t in texts]
    assert compute(["self_bleu"], samples)["self_bleu"].corpus == pytest.approx(np.mean(expected))


def test_script_purity_and_length():
    samples = [
        {"prompt": "", "completion": "राम ने आम खाया", "language": "hindi"},
        # letters are \p{L}: र म, a t e, आ म (the vowel sign ा is a mark): 4 of 7 Devanagari
        {"prompt": "", "completion": "राम ate आम", "language": "hindi"},
    ]
    results = compute(["script_purity", "length_words"], samples)
    assert results["script_purity"].per_sample == [1.0, pytest.approx(4 / 7)]
    assert results["length_words"].per_sample == [4.0, 3.0]


def test_unknown_metric_names_the_known_ones():
    with pytest.raises(KeyError, match="chrf"):
        compute(["bleurt"], [])
    assert {"chrf", "bleu", "rouge_l", "cmi", "transliteration_consistency"} <= set(REGISTRY)


# --- embedding -----------------------------------------------------------------------------


def test_embedding_is_skipped_with_a_reason_when_not_loadable(tmp_path):
    metric, _ = similarity_metrics(str(tmp_path / "no-such-model"))
    result = compute([metric], [{"prompt": "a", "completion": "b", "language": "english"}])
    result = result[metric.name]
    assert result.corpus is None and result.per_sample == [None]
    assert "cannot be loaded offline" in result.skipped_reason


def _word_tokenizer(texts: list[str], specials: list[str]) -> PreTrainedTokenizerFast:
    vocab = {t: i for i, t in enumerate(specials)}
    for word in sorted({w for t in texts for w in t.split()}):
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")


def test_embedding_similarity_on_a_tiny_local_model(tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    texts = ["राम ने आम खाया", "सीता घर गई", "the cat sat"]
    torch.manual_seed(0)
    bert = tmp_path / "bert"
    config = BertConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32,
    )  # fmt: skip
    BertModel(config).save_pretrained(bert)
    _word_tokenizer(texts, ["[PAD]", "[UNK]"]).save_pretrained(bert)
    modules = [Transformer(str(bert)), Pooling(16)]
    SentenceTransformer(modules=modules).save(str(tmp_path / "st"))

    metric, reference_metric = similarity_metrics(str(tmp_path / "st"))
    samples = [
        {"prompt": texts[0], "completion": texts[0], "reference": texts[1], "language": "hindi"},
        {"prompt": texts[0], "completion": texts[2], "language": "hindi"},
    ]
    results = compute([metric, reference_metric], samples)
    same, different = results[metric.name].per_sample
    assert same == pytest.approx(1.0, abs=1e-5) and -1 <= different < 1 - 1e-4
    assert results[reference_metric.name].per_sample[1] is None
    assert results[metric.name].skipped_reason is None
    assert str(tmp_path / "st") in results[metric.name].signature


# --- perplexity, bits per byte ------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_lm():
    texts = ["राम ने आम खाया", "सीता घर गई और सो गई", "the cat sat on the mat"]
    tokenizer = _word_tokenizer(texts, ["[PAD]", "[UNK]", "<bos>"])
    tokenizer.bos_token = "<bos>"
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval(), tokenizer, texts


def test_perplexity_and_bits_per_byte_equal_a_manual_computation(tiny_lm):
    model, tokenizer, texts = tiny_lm
    scores = lm_scores(model, tokenizer, texts, batch_size=2)  # padded batches
    total_nats, total_tokens = 0.0, 0
    for text, per_token in zip(texts, scores.nats_per_token, strict=True):
        ids = torch.tensor([[tokenizer.bos_token_id, *tokenizer(text)["input_ids"]]])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1]
        nats = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum").item()
        assert per_token == pytest.approx(nats / (ids.shape[1] - 1), rel=1e-5)
        total_nats, total_tokens = total_nats + nats, total_tokens + ids.shape[1] - 1
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    assert scores.tokens == total_tokens and scores.bytes == n_bytes
    assert scores.bits_per_byte == pytest.approx(total_nats / math.log(2) / n_bytes, rel=1e-5)
    assert scores.perplexity == pytest.approx(math.exp(total_nats / total_tokens), rel=1e-5)


def test_long_texts_are_scored_in_windows_predicting_each_token_once(tiny_lm):
    model, tokenizer, texts = tiny_lm
    long_text = " ".join(texts * 3)  # 45 words + <bos>: more than a window of 8
    scores = lm_scores(model, tokenizer, [long_text], window=8)
    assert scores.tokens == len(long_text.split())
    assert math.isfinite(scores.bits_per_byte) and scores.bits_per_byte > 0


# --- bootstrap -----------------------------------------------------------------------------


def test_bootstrap_interval_contains_the_mean_and_is_seeded():
    rng = np.random.default_rng(1)
    values = rng.normal(5.0, 2.0, 200).tolist()
    interval = mean_interval([*values, None, None])
    assert interval.n == 200 and interval.missing == 2
    assert interval.low < interval.mean < interval.high
    assert interval.mean == pytest.approx(np.mean(values))
    assert mean_interval(values) == mean_interval(values)  # same seed, same interval
    assert mean_interval(values, seed=1) != mean_interval(values)


def test_bootstrap_interval_narrows_with_n():
    rng = np.random.default_rng(2)
    values = rng.normal(0.0, 1.0, 4000)
    small, large = mean_interval(values[:100].tolist()), mean_interval(values.tolist())
    assert (large.high - large.low) < (small.high - small.low) / 4  # ~ 1/sqrt(40)


def test_bootstrap_edge_cases():
    assert mean_interval([None]).mean is None
    one = mean_interval([3.0])
    assert (one.mean, one.low, one.high, one.n) == (3.0, 3.0, 3.0, 1)


def test_paired_bootstrap():
    rng = np.random.default_rng(3)
    base = rng.normal(5.0, 1.0, 300)
    better = base + 0.5 + rng.normal(0.0, 0.2, 300)
    result = paired_bootstrap(better.tolist(), base.tolist())
    assert result.low < result.mean_difference < result.high and result.low > 0.4
    assert result.p_value < 0.01 and result.n == 300
    assert paired_bootstrap(base.tolist(), base.tolist()).p_value == 1.0
    assert paired_bootstrap([1.0, None], [None, 2.0]).n == 0
