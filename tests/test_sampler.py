"""The prompt sampler: a seeded bijection, unique combinations, O(1) access, resumable."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factory.sampler import ComboSampler, SeededPermutation, Slot


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3000), seed=st.integers(0, 2**63))
def test_permutation_is_a_bijection_of_the_range(n, seed):
    perm = SeededPermutation(n, seed)
    assert sorted(perm(i) for i in range(n)) == list(range(n))


@given(n=st.integers(2, 10**15), seed=st.integers(0, 2**32), i=st.integers(0, 10**15))
def test_permutation_is_deterministic_for_a_seed(n, seed, i):
    i %= n
    assert SeededPermutation(n, seed)(i) == SeededPermutation(n, seed)(i)


def test_different_seeds_give_different_orders():
    orders = {tuple(SeededPermutation(1000, seed)(i) for i in range(20)) for seed in range(10)}
    assert len(orders) == 10


def test_order_is_not_the_identity_or_a_stride():
    perm = SeededPermutation(10_000, 7)
    firsts = [perm(i) for i in range(50)]
    steps = {b - a for a, b in itertools.pairwise(firsts)}
    assert firsts != list(range(50)) and len(steps) > 40


def test_any_index_of_a_huge_space_is_computed_directly():
    # 10**15 combinations: materialising them is impossible, so this only passes in O(1).
    sampler = ComboSampler([Slot("a", 10**5, True), Slot("b", 10**5, True), Slot("c", 10**5, True)])
    last = sampler.capacity - 1
    assert sampler.draw(last) == ComboSampler(sampler.slots).draw(last)
    assert all(0 <= d < 10**5 for d in sampler.draw(last))


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    free=st.integers(3, 6),
    seed=st.integers(0, 2**31),
)
def test_unique_slots_never_repeat_a_combination(sizes, free, seed):
    slots = [Slot(f"list{k}", size, True) for k, size in enumerate(sizes)]
    slots.append(Slot("features", free, False))
    sampler = ComboSampler(slots, seed)
    keys = [sampler.draw(i)[:-1] for i in range(sampler.capacity)]
    assert len(set(keys)) == sampler.capacity


def test_only_the_unique_key_is_unique():
    # noun x verb x adjective is the key; the feature may repeat across prompts.
    slots = [Slot("nouns", 4, True), Slot("verbs", 3, True), Slot("features", 2, False)]
    sampler = ComboSampler(slots, seed=1)
    draws = [sampler.draw(i) for i in range(sampler.capacity)]
    assert sampler.capacity == 12
    assert len({d[:2] for d in draws}) == 12
    assert {d[2] for d in draws} == {0, 1}


def test_slots_on_the_same_list_get_different_entries():
    slots = [Slot("topics", 50, True), Slot("personas", 2, False), Slot("personas", 2, False)]
    sampler = ComboSampler(slots, seed=3)
    assert all(sampler.draw(i)[1] != sampler.draw(i)[2] for i in range(50))


def test_resume_at_any_index_continues_the_same_sequence():
    slots = [Slot("n", 30, True), Slot("v", 20, True), Slot("f", 5, False)]
    whole = [ComboSampler(slots, 11).draw(i) for i in range(200)]
    resumed = ComboSampler(slots, 11)
    assert [resumed.draw(i) for i in range(137, 200)] == whole[137:]


def test_two_unique_slots_on_one_list_are_refused():
    with pytest.raises(ValueError, match="same list"):
        ComboSampler([Slot("personas", 5, True), Slot("personas", 5, True)])


def test_a_list_shorter_than_its_slots_is_refused():
    with pytest.raises(ValueError, match="fewer entries"):
        ComboSampler([Slot("t", 3, True), Slot("p", 1, False), Slot("p", 1, False)])
