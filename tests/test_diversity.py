"""Dataset diversity (`factory stats`, the dataset card and report): every number checked on
small hand-built datasets whose right answers are known, the sketches against exact counts, and
`--diversify` against the stand-in server."""

import random

import numpy as np
import pytest
from conftest import TEST_KEY, run_cli

from factory import diversity
from factory.diversity import DatasetScan, DistinctCounter, TopCounter, heaps_exponent
from factory.settings import load_config
from factory.stats import compute_stats
from factory.store import RunStore


def scan(texts: list[str], variables: list[dict] | None = None, language: str = "english"):
    s = DatasetScan(language, hinglish=language == "hinglish")
    for i, text in enumerate(texts):
        s.add(text, (variables or [{}] * len(texts))[i])
    return s.result()


def test_opening_and_ending_shares_count_texts():
    texts = ["Once upon a time, a cat slept."] * 6 + [
        "One day a dog ran home.",
        "One day a dog sat down.",
        "The sun was hot today.",
        "Rain fell on the roof.",
    ]
    d = scan(texts)
    assert d.openings[:2] == [("once upon a time", 6), ("one day a dog", 2)]
    assert d.opening_share() == 0.6
    assert d.endings[0] == ("time a cat slept", 6)  # the last four words, casefolded
    assert d.tops_exact


def test_distinct_n_by_hand_and_ngrams_never_cross_texts():
    d = scan(["a b c", "a b d"])
    # 1-grams a b c a b d: 4 of 6; 2-grams ab bc ab bd: 3 of 4; 3-grams abc abd: 2 of 2
    assert d.distinct == {1: 4 / 6, 2: 3 / 4, 3: 1.0}
    assert d.ngrams == {1: 6, 2: 4, 3: 2}
    # "b c" would be a bigram only if texts ran together
    assert scan(["a b", "c d"]).ngrams[2] == 2
    assert d.distinct_exact


def test_indic_words_stay_whole_and_case_does_not_split_words():
    d = scan(["बच्चे खेल रहे थे।", "बच्चे खेल रहे हैं।"])
    assert d.vocabulary == 5  # बच्चे खेल रहे थे हैं: vowel signs and viramas stay inside words
    assert dict(d.openings) == {"बच्चे खेल रहे थे": 1, "बच्चे खेल रहे हैं": 1}
    assert scan(["The Cat", "the cat"]).vocabulary == 2


def test_hashing_in_chunks_gives_the_same_numbers(monkeypatch):
    rng = random.Random(1)
    texts = [
        " ".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 30))) for _ in range(300)
    ]
    whole = scan(texts)
    monkeypatch.setattr(diversity, "CHUNK_WORDS", 7)
    chunked = scan(texts)
    assert chunked.distinct == whole.distinct and chunked.ngrams == whole.ngrams


def test_distinct_counts_are_exact_then_a_close_estimate():
    values = diversity._mix(np.arange(120_000, dtype=np.uint64))  # as n-gram codes are hashed
    exact = DistinctCounter()
    exact.add(values)
    exact.add(values[:5000])  # repeats change nothing
    assert exact.exact and exact.count() == 120_000
    sketched = DistinctCounter(limit=1000)
    for part in np.array_split(np.concatenate([values, values[:40_000]]), 7):
        sketched.add(part)
    assert not sketched.exact
    assert abs(sketched.count() / 120_000 - 1) < 0.03  # 0.4% standard error; 3% is 7 sigma


def test_top_counter_is_exact_below_capacity_and_keeps_heavy_hitters_above():
    top = TopCounter(capacity=10)
    for word in ["a"] * 5 + ["b"] * 3 + ["c"]:
        top.add(word)
    assert top.exact and top.most_common(2) == [("a", 5), ("b", 3)]
    small = TopCounter(capacity=5)
    stream = ["once"] * 300 + [f"rare{i}" for i in range(700)]
    random.Random(0).shuffle(stream)
    for item in stream:
        small.add(item)
    (item, count), *_ = small.most_common(1)
    assert item == "once" and not small.exact
    assert 300 - small.drops <= count <= 300 and small.drops <= 1000 // 6


def test_self_bleu_is_100_for_copies_and_0_for_texts_that_share_nothing():
    assert diversity.dataset_self_bleu(["the cat sat on the mat"] * 3) == pytest.approx(100)
    assert diversity.dataset_self_bleu(["one two three", "four five six"]) == pytest.approx(0)


def test_the_self_bleu_sample_is_a_seeded_reservoir_of_the_right_size():
    texts = [f"story number {i} about a cat" for i in range(1000)]
    one, two = DatasetScan("english"), DatasetScan("english")
    for text in texts:
        one.add(text)
        two.add(text)
    assert len(one.sample) == diversity.SELF_BLEU_SAMPLE and one.sample == two.sample
    assert any(int(t.split()[2]) >= 500 for t in one.sample)  # later texts get in too


def test_vocabulary_growth_and_heaps_exponent():
    def word(k: int) -> str:  # 0 -> "aaa", 1 -> "baa": letters only, all distinct
        return "".join(chr(97 + k // 26**p % 26) for p in range(3))

    fresh = scan([" ".join(word(10 * i + j) for j in range(10)) for i in range(100)])
    assert fresh.growth[:4] == [(1, 10), (2, 20), (5, 50), (10, 100)]
    assert fresh.growth[-1] == (100, 1000)
    assert fresh.heaps == pytest.approx(1.0)
    same = scan(["the same ten words are here in every text ok"] * 100)
    assert same.vocabulary == 10 and same.heaps == pytest.approx(0.0)
    assert heaps_exponent([(1, 5), (2, 9)]) is None  # too few checkpoints


def test_names_come_from_the_text_and_from_the_name_slot():
    english = scan(
        ["There was a girl named Mia.", "A boy called Ravi ran.", "Mia saw a cat named Tom."]
    )
    assert dict(english.names) == {"Mia": 1, "Ravi": 1, "Tom": 1}  # introduced, not mentioned
    hindi = scan(["मीना नाम की एक लड़की थी।", "राजू नाम का लड़का।"], language="hindi")
    assert dict(hindi.names) == {"मीना": 1, "राजू": 1}
    slot = scan(["Have you seen Aarav today?"], [{"name": "Aarav"}])
    assert dict(slot.names) == {"Aarav": 1}


def test_lengths_by_slot_value():
    d = scan(
        ["one two", "one two three four", "a b c d e f"],
        [{"feature": "short"}, {"feature": "short"}, {"feature": "long"}],
    )
    rows = {r.value: r for r in d.length_by["feature"]}
    assert (rows["short"].texts, rows["short"].median, rows["short"].mean) == (2, 3, 3)
    assert (rows["long"].median, rows["long"].low, rows["long"].high) == (6, 6, 6)


def test_hinglish_cmi_distribution_and_dataset_wide_spelling_consistency():
    d = scan(["yaar office", "office school", "yaar nahi nahi"] * 2, language="hinglish")
    c = d.codemix
    # yaar office: 1 hi, 1 en -> CMI 50; office school: 0; yaar nahi nahi: 0
    assert c.texts == 6 and c.mean == pytest.approx(50 / 3)
    assert c.histogram[0] == 4 and c.histogram[-1] == 2
    assert c.consistency == 1.0  # every Hindi word spelled one way
    speakers = scan(["A: arre yaar\nB: haan bhai, office"], language="hinglish")
    assert speakers.openings == [("arre yaar haan bhai", 1)]  # the A:/B: labels are not words
    mixed = scan(["nahi yaar", "nahin yaar"], language="hinglish").codemix
    assert mixed.consistency < 1.0
    assert mixed.inconsistent[0]["variants"] == {"nahi": 1, "nahin": 1}


def test_the_moved_spelling_grouping_equals_the_judge_metric():
    from factory import transliteration
    from factory.spellings import read_gold
    from judge.metrics import codemix as judge_codemix

    words = read_gold().words()
    counts = {w: i % 7 + 1 for i, w in enumerate(words)}
    assert transliteration.group_spellings(counts) == judge_codemix.group_spellings(counts)


def generate(server, *args: str):
    return run_cli(
        *("factory", "generate", "--lang", "english", "--min-words", "20"),
        *("--base-url", server.base_url, "--api-key", TEST_KEY, *args),
    )


def stats_of(run_dir):
    store = RunStore.open(run_dir / "store.sqlite")
    try:
        return compute_stats(store, load_config(run_dir), _no_prices())
    finally:
        store.close()


def _no_prices():
    from factory.paths import PRICES_FILE
    from factory.pricing import load_prices

    return load_prices(PRICES_FILE)


def test_diversify_draws_the_slots_and_the_opening_concentration_drops(llm_server, tmp_path):
    assert generate(llm_server, "--n", "60", "--name", "plain").returncode == 0
    done = generate(llm_server, "--n", "60", "--name", "diverse", "--diversify")
    assert done.returncode == 0, done.stderr
    plain, diverse = stats_of(tmp_path / "runs" / "plain"), stats_of(tmp_path / "runs" / "diverse")
    assert plain.diversity.openings[0] == ("once upon a time", plain.kept)  # the stand-in's habit
    assert diverse.diversity.opening_share() < 0.4
    assert diverse.diversity.distinct[3] > plain.diversity.distinct[3]
    for name in ("names", "settings", "styles", "devices"):
        assert name in diverse.coverage and name not in plain.coverage
    shown = run_cli("factory", "stats", "runs/diverse").stdout
    assert "openings" in shown and "never used" in shown and "lengths   by device" in shown


def test_prompts_without_diversify_are_unchanged_and_with_it_are_new_prompts():
    import json

    plain = run_cli("factory", "prompts", "--lang", "hindi", "--n", "3").stdout.splitlines()
    diverse = run_cli(
        "factory", "prompts", "--lang", "hindi", "--n", "3", "--diversify"
    ).stdout.splitlines()
    p, d = json.loads(plain[0]), json.loads(diverse[0])
    assert set(p["variables"]) == {"noun", "verb", "adjective", "feature"}
    assert "main character" not in p["messages"][-1]["content"]
    assert {k: d["variables"][k] for k in p["variables"]} == p["variables"]  # same words
    assert set(d["variables"]) - set(p["variables"]) == {"name", "setting", "style", "device"}
    assert d["id"] != p["id"] and d["variables"]["name"] in d["messages"][-1]["content"]


def test_a_resume_that_turns_diversify_on_is_refused(llm_server, tmp_path):
    assert generate(llm_server, "--n", "3", "--name", "r").returncode == 0
    again = generate(llm_server, "--n", "3", "--name", "r", "--diversify")
    assert again.returncode == 2 and "diversify" in again.stderr


def test_stats_read_the_kept_rows_in_one_streaming_pass(llm_server, tmp_path, monkeypatch):
    assert generate(llm_server, "--n", "30", "--name", "s").returncode == 0
    store = RunStore.open(tmp_path / "runs" / "s" / "store.sqlite")
    try:
        assert [r.prompt_id for r in store.iter_kept(batch=4)] == [
            r.prompt_id for r in store.kept()
        ]
        monkeypatch.setattr(RunStore, "kept", lambda self: pytest.fail("loaded every row"))
        stats = compute_stats(store, load_config(tmp_path / "runs" / "s"), _no_prices())
    finally:
        store.close()
    assert stats.kept == stats.diversity.texts == sum(stats.lengths.values()) > 0
