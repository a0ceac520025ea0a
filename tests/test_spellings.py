"""Transliteration consistency knows Hindi grammar: the spelling grouping measured on the
gold list written for kahani (factory/hinglish_spellings.txt), whole and held out."""

import unicodedata
from itertools import combinations

import pytest

from factory.spellings import GOLD_PATH, cannot_link, pair_scores, read_gold
from factory.transliteration import group_spellings
from judge.metrics import compute

GOLD = read_gold()


def gold_counts() -> dict[str, int]:
    """Every gold spelling, the first of each variant line the most frequent (the list puts a
    common spelling first), as a corpus would have them."""
    counts = {}
    for section in GOLD.variants.values():
        for group in section:
            for rank, spelling in enumerate(group):
                counts[spelling] = len(group) - rank
    return {w: counts.get(w, 1) for w in GOLD.words()}


def test_the_gold_list_is_large_consistent_and_plain_lowercase_ascii():
    variants = [g for section in GOLD.variants.values() for g in section]
    distinct = [d for section in GOLD.distinct.values() for d in section]
    assert len(variants) >= 40 and len(distinct) >= 25
    assert len(GOLD.variants["held-out"]) >= 20 and len(GOLD.distinct["held-out"]) >= 15
    spellings = [s for g in variants for s in g]
    assert len(spellings) == len(set(spellings))  # a spelling belongs to one word
    group_of = {s: g for g in variants for s in g}
    for members in distinct:  # no two members of a distinct line are listed as variants
        for first, second in combinations(members, 2):
            groups = [{group_of[s] for s in member if s in group_of} for member in (first, second)]
            assert not groups[0] & groups[1]
    for word in GOLD.words():
        assert word.isascii() and word.isalpha() and word == word.lower()
        assert unicodedata.is_normalized("NFC", word)


def test_grouping_meets_the_precision_and_recall_goal_on_the_gold_list():
    group = group_spellings(gold_counts())  # the shipped constraints
    for section in ("dev", "held-out"):
        scores = pair_scores(group, GOLD, section)
        assert scores.precision >= 0.95 and scores.recall >= 0.9, (section, scores)


def test_the_rules_carry_over_to_the_held_out_words():
    # Constraints from [dev] only: held-out distinct words are kept apart by the grammatical
    # rules, or not at all. Measured: precision 0.974, recall 0.962 (bench/metrics.py prints it).
    group = group_spellings(gold_counts(), cannot_link(GOLD, ["dev"]))
    scores = pair_scores(group, GOLD, "held-out")
    assert scores.precision >= 0.95 and scores.recall >= 0.9, scores
    # what no spelling rule can know: the plural nasal of ho/hon, the vowel length of pita/peeta
    assert set(scores.merged_distinct) <= {("ho", "hon"), ("pita", "peeta")}


def test_distinct_lines_keep_apart_what_the_rules_would_merge():
    # kam/kaam differ only in vowel length, which chat spelling ignores everywhere else
    assert len(set(group_spellings({"kam": 2, "kaam": 1}, constraints={}).values())) == 1
    assert len(set(group_spellings({"kam": 2, "kaam": 1}).values())) == 2


def test_correct_hindi_grammar_is_not_counted_as_inconsistent_spelling():
    text = "Wo mera bhai hai aur ye meri behen hai. Mere dost kal aaye the, wo khush hain."
    samples = [{"prompt": "", "completion": text, "language": "hinglish"}]
    result = compute(["transliteration_consistency"], samples)["transliteration_consistency"]
    assert result.corpus == 1.0 and result.details["top_inconsistent_groups"] == []
    mixed = [
        {"prompt": "", "completion": "nahi yaar, nahin pata, bahut bohot", "language": "hinglish"}
    ]
    result = compute(["transliteration_consistency"], mixed)["transliteration_consistency"]
    groups = {g["group"] for g in result.details["top_inconsistent_groups"]}
    assert groups == {"nahi", "bahut"} and result.corpus < 1.0


@pytest.mark.parametrize(
    "line", ["variant: a b", "distinct a | b", "[test]"], ids=["typo", "no colon", "section"]
)
def test_a_malformed_gold_line_is_an_error_naming_the_line(tmp_path, line):
    path = tmp_path / "gold.txt"
    path.write_text(f"# header\nvariants: nahi nhi\n{line}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path}:3"):
        read_gold(path)
    assert GOLD_PATH.exists()
