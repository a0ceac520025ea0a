"""Pairwise judging end to end (judge.pairwise_run): evaluation folders written here, the local
OpenAI-compatible server as the judge over real HTTP, the request store as the cache."""

import json

import pytest
from conftest import TEST_KEY

from factory.errors import KahaniError
from factory.llm import Endpoint
from judge.pairwise_run import judge_pairwise, write_result
from judge.results import Completion, SamplingConfig, write_completions

SENTENCES = [
    "एक दिन मीना बाग में गई।",
    "वहाँ उसे एक छोटा पिल्ला मिला।",
    "पिल्ला बहुत भूखा था।",
    "मीना ने उसे दूध पिलाया।",
    "फिर दोनों साथ में खेलने लगे।",
    "शाम को मीना पिल्ले को घर ले आई।",
    "माँ ने पिल्ले का नाम मोती रखा।",
    "उस रात मीना बहुत खुश होकर सोई।",
]
PROMPTS = [f"कहानी {i}: एक छोटे गाँव में" for i in range(12)]


def evaluation(folder, model: str, sentences: int, prompts=PROMPTS, language="hindi", samples=1):
    """An evaluation folder as `judge score` writes it: the stand-in judge prefers longer
    texts, so a model writing more sentences is the better one."""
    folder.mkdir(parents=True)
    settings = SamplingConfig(
        model=model, language=language, kind="story", samples=samples, max_tokens=80,
        temperature=0.8, top_k=None, seed=0, prompts_sha="test",
    )  # fmt: skip
    completions = []
    for i, prompt in enumerate(prompts):
        for k in range(samples):
            count = sentences + (i + k) % 2  # lengths vary a little within a model
            text = " ".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(count))
            completions.append(Completion(f"p{i}-s{k}", f"p{i}", prompt, None, k, text, "stop"))
    write_completions(folder, settings, completions)
    return folder


@pytest.fixture
def three_models(tmp_path):
    return [
        evaluation(tmp_path / "eval-0", "hi-0steps", 1),
        evaluation(tmp_path / "eval-50", "hi-50steps", 3),
        evaluation(tmp_path / "eval-300", "hi-300steps", 6),
    ]


def _endpoint(server) -> Endpoint:
    return Endpoint(provider="openai", model="gpt-4o", base_url=server.base_url, api_key=TEST_KEY)


def test_three_models_are_ranked_with_separate_intervals_and_a_rerun_is_free(
    llm_server, three_models, tmp_path
):
    store = tmp_path / "pairwise.sqlite"
    result = judge_pairwise(three_models, None, [_endpoint(llm_server)], store, n_resamples=500)
    assert [r.system for r in result.ratings] == ["hi-300steps", "hi-50steps", "hi-0steps"]
    for better, worse in zip(result.ratings, result.ratings[1:], strict=False):
        assert better.low > worse.high
    assert result.win_rates["hi-300steps"]["hi-0steps"].rate.mean == 1.0
    assert result.consistency.rate == 0.0 and result.parse_failure_rate == 0.0
    assert len(result.pairs) == 3 * len(PROMPTS)
    # the better model is longer on every prompt: length and quality cannot be told apart
    lc = result.length_controlled["hi-300steps"]["hi-0steps"]
    assert lc.raw_rate == 1.0 and lc.rate is None and "longer" in lc.note

    served = llm_server.stats.chat_requests
    assert served == 2 * 3 * len(PROMPTS)  # every pair in both orders, once
    again = judge_pairwise(three_models, None, [_endpoint(llm_server)], store, n_resamples=500)
    assert llm_server.stats.chat_requests == served  # cached: the second run pays nothing
    assert again.summary() == result.summary()


def test_a_judge_that_always_picks_position_a_is_all_ties(llm_server, three_models, tmp_path):
    llm_server.config.pairwise_preference = "first"
    result = judge_pairwise(
        three_models, None, [_endpoint(llm_server)], tmp_path / "s.sqlite", n_resamples=200
    )
    assert result.consistency.rate == 1.0
    assert all(p.score == 0.5 and p.consistent is False for p in result.pairs)
    assert all(r.rating == pytest.approx(1000.0) for r in result.ratings)


def test_a_judge_answering_garbage_gives_no_ratings_and_says_so(llm_server, three_models, tmp_path):
    llm_server.config.judge_format = "garbage"
    result = judge_pairwise(
        three_models[:2], None, [_endpoint(llm_server)], tmp_path / "s.sqlite", retries=1
    )
    assert result.parse_failure_rate == 1.0 and result.ratings == []
    assert result.win_rates["hi-0steps"]["hi-50steps"].rate.mean is None
    assert llm_server.stats.chat_requests == 2 * 2 * len(PROMPTS)  # asked, then asked again
    assert all(p.forward.problem for p in result.pairs)


def test_controls_show_what_a_length_judge_misses(llm_server, three_models, tmp_path):
    result = judge_pairwise(
        three_models, None, [_endpoint(llm_server)], tmp_path / "s.sqlite",
        controls=4, n_resamples=200,
    )  # fmt: skip
    controls = result.controls
    assert controls["truncated"]["pairs"] == 4 and controls["truncated"]["rate"] == 1.0
    # a passage in the wrong script makes a text longer: this judge prefers the damaged copy
    assert controls["wrong_script"]["rate"] == 0.0
    missed = controls["wrong_script"]["examples"][0]
    assert missed.first == "original" and missed.second == "wrong_script"
    assert missed.score == 0.0 and "একদিন" in missed.second_text  # beside its original
    assert "একদিন" not in missed.first_text
    write_result(result, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "pairwise.json").read_text())
    assert summary["controls"]["truncated"]["original_wins"] == 4
    assert "examples" not in summary["controls"]["truncated"]
    rows = [
        json.loads(line) for line in (tmp_path / "out" / "pairs.jsonl").read_text().splitlines()
    ]
    assert {r["type"] for r in rows} == {"model", "control"}
    assert rows[0]["forward"]["winner"] in ("A", "B", "tie") and rows[0]["first_text"]


def test_bad_evaluation_folders_are_one_sentence_errors(tmp_path):
    endpoint = Endpoint(
        provider="openai", model="gpt-4o", base_url="http://127.0.0.1:9/v1", api_key="x"
    )
    store = tmp_path / "s.sqlite"
    one = evaluation(tmp_path / "one", "a", 2)
    with pytest.raises(KahaniError, match="at least two evaluation folders"):
        judge_pairwise([one], None, [endpoint], store)
    with pytest.raises(KahaniError, match=r"no completions\.jsonl"):
        judge_pairwise([one, tmp_path / "nowhere"], None, [endpoint], store)
    other = evaluation(tmp_path / "other", "b", 2, prompts=PROMPTS[:8])
    with pytest.raises(KahaniError, match=r"different prompts \(4 and 0 not shared\)"):
        judge_pairwise([one, other], None, [endpoint], store)
    bangla = evaluation(tmp_path / "bangla", "c", 2, language="bangla")
    with pytest.raises(KahaniError, match="compare evaluations of one language"):
        judge_pairwise([one, bangla], None, [endpoint], store)
    assert not store.exists()  # nothing was sent or stored


def test_the_same_model_twice_is_told_apart_by_folder(llm_server, tmp_path):
    folders = [evaluation(tmp_path / "seed1", "hi", 1), evaluation(tmp_path / "seed2", "hi", 4)]
    result = judge_pairwise(folders, None, [_endpoint(llm_server)], tmp_path / "s.sqlite")
    assert result.systems == ["hi (seed1)", "hi (seed2)"]
    assert result.ratings[0].system == "hi (seed2)"
