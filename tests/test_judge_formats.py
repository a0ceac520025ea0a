"""Judges answer in many formats; the rubric and pairwise parsers read all reasonable ones.

The stand-in judge (tests/openai_server.py, `judge_format`) answers over real HTTP the way
real judges do: keys as asked, the published TinyStories-Regional format (spaced keys,
scores as strings, a "reason"), fenced JSON with "7/10", nested objects inside prose, and
"Name: 7/10" lines. Every one must parse with no failures and give the same scores.
"""

import json

import pytest
from conftest import TEST_KEY
from openai_server import JUDGE_FORMATS

from factory.llm import Endpoint, ask
from factory.providers.base import GenerationParams
from judge.pairwise import PairwiseRubric, parse_verdict
from judge.rubric import Rubric

STORY_OPENING = "एक दिन एक छोटी लड़की बाग में गई।"
STORIES = ["वह खेलने लगी। " * n + "फिर वह घर लौट आई और सो गई।" for n in (1, 4, 9, 15, 22, 30)]
CHAT_OPENING = "Yaar aaj office mein bahut kaam tha, tu bata kya scene hai?"
REPLIES = ["Haan bhai, sab badhiya.", "Arre yaar, mera bhi same haal hai, " * 6 + "chal chai."]
USABLE_FORMATS = [f for f in JUDGE_FORMATS if f != "garbage"]


def _endpoint(server) -> Endpoint:
    return Endpoint(provider="openai", model="gpt-4o", base_url=server.base_url, api_key=TEST_KEY)


def _judge_all(server, store, judge_format: str) -> list:
    """Each story and reply judged once over HTTP, parsed by its rubric."""
    server.config.judge_format = judge_format
    story, chat = Rubric("story", "hindi"), Rubric("conversation", "hinglish")
    items = [(f"s{i}", story.messages(STORY_OPENING, t)) for i, t in enumerate(STORIES)]
    items += [(f"c{i}", chat.messages(CHAT_OPENING, t)) for i, t in enumerate(REPLIES)]
    params = GenerationParams(model="gpt-4o", temperature=0, json_mode=True)
    replies = ask(_endpoint(server), store, items, params)
    return [
        (story if item_id.startswith("s") else chat).parse(replies[item_id].text)
        for item_id, _ in items
    ]


@pytest.mark.parametrize("judge_format", USABLE_FORMATS)
def test_every_judge_answer_format_parses_without_failures(llm_server, tmp_path, judge_format):
    asked = _judge_all(llm_server, tmp_path / "asked.sqlite", "asked")
    other = _judge_all(llm_server, tmp_path / f"{judge_format}.sqlite", judge_format)
    assert [j.problem for j in other] == [""] * len(other)  # parse-failure rate 0
    assert [j.scores for j in other] == [j.scores for j in asked]  # the same grades
    assert all(j.reasoning for j in other)  # the reason is found under its synonyms
    assert len({j.scores["overall"] for j in asked}) > 1  # the grades do vary by text


def test_a_judge_that_answers_garbage_gives_failures_with_a_problem(llm_server, tmp_path):
    judgements = _judge_all(llm_server, tmp_path / "garbage.sqlite", "garbage")
    assert all(j.scores is None and j.problem for j in judgements)


def test_a_second_identical_judging_sends_no_request(llm_server, tmp_path):
    _judge_all(llm_server, tmp_path / "judge.sqlite", "spaced_strings")
    served = llm_server.stats.chat_requests
    again = _judge_all(llm_server, tmp_path / "judge.sqlite", "spaced_strings")
    assert llm_server.stats.chat_requests == served
    assert all(j.scores for j in again)


PUBLISHED = {
    "context awareness": "7",
    "completeness": "6",
    "grammar": "8",
    "fluency": "7",
    "creativity": "5",
    "overall": "7",
    "age group": "A: 3 or under",  # extra keys the protocol asks for are ignored
    "reason": "The story follows the opening but ends abruptly.",
}


@pytest.mark.parametrize(
    "wrap",
    [
        lambda j: j,
        lambda j: f"```json\n{j}\n```",
        lambda j: f"Sure! Here is my evaluation:\n```\n{j}\n```\nLet me know if you need more.",
        lambda j: f"After reading the story carefully, my assessment is {j} overall.",
    ],
)
def test_the_published_protocol_format_parses_fenced_and_in_prose(wrap):
    judgement = Rubric("story", "hindi").parse(wrap(json.dumps(PUBLISHED, ensure_ascii=False)))
    assert judgement.scores == {
        "context_awareness": 7,
        "completeness": 6,
        "grammar": 8,
        "fluency": 7,
        "creativity": 5,
        "overall": 7,
    }
    assert judgement.reasoning == PUBLISHED["reason"]


STORY_KEYS = ["context_awareness", "completeness", "grammar", "fluency", "creativity", "overall"]


@pytest.mark.parametrize(
    ("answer", "reasoning"),
    [
        ({"Context-Awareness": "7/10", "COMPLETENESS": "7.0", "Grammar": "7 out of 10",
          "fluency": 7.0, "creativity": " 7 ", "Overall Score": 7, "Justification": "j"}, "j"),
        ({"scores": {k: 7 for k in STORY_KEYS}, "explanation": "e"}, "e"),
        ({"evaluation": {"scores": {k.replace("_", " "): "7" for k in STORY_KEYS}},
          "rationale": "r"}, "r"),
        ({k: {"score": 7, "reason": f"about {k}"} for k in STORY_KEYS[:2]}
         | {k: {"rating": "7/10"} for k in STORY_KEYS[2:]},
         "context_awareness: about context_awareness; completeness: about completeness"),
    ],
)  # fmt: skip
def test_keys_spelled_any_way_nested_and_fractional_scores_parse(answer, reasoning):
    judgement = Rubric("story", "hindi").parse(json.dumps(answer))
    assert judgement.scores == dict.fromkeys(STORY_KEYS, 7)
    assert judgement.reasoning == reasoning


def test_score_lines_without_json_parse():
    answer = (
        "Here are my grades:\n1. **Context Awareness**: 7/10\n2. Completeness: 6\n"
        "- Grammar: 8/10 (a few spelling slips)\n- Fluency = 7\n* creativity: 5\n"
        "- Overall: 7\nReasoning: decent but short."
    )
    judgement = Rubric("story", "hindi").parse(answer)
    assert judgement.scores == {
        "context_awareness": 7, "completeness": 6, "grammar": 8, "fluency": 7,
        "creativity": 5, "overall": 7,
    }  # fmt: skip
    assert judgement.reasoning == "decent but short."


@pytest.mark.parametrize(
    ("scores", "problem"),
    [
        ({"grammar": "4/5"}, "grammar: '4/5' is not on a 1-10 scale"),
        ({"grammar": "7.5"}, "grammar: 7.5 is not an integer"),
        ({"grammar": "eight"}, "grammar: 'eight' is not a number"),
        ({"grammar": True}, "grammar: True is not a score"),
        ({"grammar": 0}, "grammar: 0 is not an integer from 1 to 10"),
        ({"grammar": None}, "no score for grammar"),
    ],
)
def test_values_that_are_not_scores_from_1_to_10_are_failures(scores, problem):
    answer = dict.fromkeys(STORY_KEYS, 7) | scores
    judgement = Rubric("story", "hindi").parse(json.dumps(answer))
    assert judgement.scores is None and judgement.problem == problem


# --- pairwise verdicts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "winner", "reason"),
    [
        ('{"winner": "A", "reason": "more complete"}', "A", "more complete"),
        ('```json\n{"Winner": "Assistant B", "Explanation": "x"}\n```', "B", "x"),
        ('{"verdict": "tie", "justification": "both fine"}', "tie", "both fine"),
        ('{"better_continuation": "Continuation B is better"}', "B", ""),
        ("A keeps the characters; B drifts. [[A]]", "A", "A keeps the characters; B drifts."),
        ("Neither is better. [[C]]", "tie", "Neither is better."),
        ("Reasoning first.\nFinal verdict: Reply B", "B", "Reasoning first."),
        ("**Winner**: Story A", "A", ""),
        ("B", "B", ""),
        ("Tie.", "tie", ""),
    ],
)
def test_pairwise_verdicts_parse_however_the_judge_writes_them(answer, winner, reason):
    verdict = parse_verdict(answer)
    assert (verdict.winner, verdict.reason, verdict.problem) == (winner, reason, "")


@pytest.mark.parametrize(
    "answer",
    [
        '{"winner": "both are lovely"}',
        "I prefer [[A]]. On reflection, [[B]].",
        "They are both stories about a girl.",
        '{"scores": {"A": 7, "B": 5}}',
    ],
)
def test_pairwise_answers_without_one_verdict_are_failures(answer):
    verdict = parse_verdict(answer)
    assert verdict.winner is None and verdict.problem


@pytest.mark.parametrize("judge_format", USABLE_FORMATS)
@pytest.mark.parametrize("kind", ["story", "conversation"])
def test_pairwise_verdicts_of_every_format_parse_over_http(
    llm_server, tmp_path, judge_format, kind
):
    llm_server.config.judge_format = judge_format
    rubric = PairwiseRubric(kind, "hindi" if kind == "story" else "hinglish")
    short, long = (STORIES[0], STORIES[3]) if kind == "story" else REPLIES
    opening = STORY_OPENING if kind == "story" else CHAT_OPENING
    items = [
        ("long-first", rubric.messages(opening, long, short)),
        ("short-first", rubric.messages(opening, short, long)),
        ("same", rubric.messages(opening, short, short)),
    ]
    params = GenerationParams(model="gpt-4o", temperature=0, json_mode=True)
    replies = ask(_endpoint(llm_server), tmp_path / "pairs.sqlite", items, params)
    verdicts = {item_id: rubric.parse(replies[item_id].text) for item_id, _ in items}
    assert {k: v.winner for k, v in verdicts.items()} == {
        "long-first": "A", "short-first": "B", "same": "tie",
    }  # fmt: skip
    assert all(v.problem == "" and v.reason for v in verdicts.values())


def test_pairwise_prompt_shows_both_texts_and_never_the_models():
    messages = PairwiseRubric("story", "hindi").messages("opening", "first text", "second text")
    text = " ".join(m.content for m in messages)
    assert "first text" in text and "second text" in text
    assert text.index("first text") < text.index("second text")
    assert "model" not in text.lower() and "Hindi (Devanagari script)" in text
    retry = PairwiseRubric("story", "hindi").messages("opening", "a", "b", attempt=2)
    assert len(retry) == len(messages) + 1 and "attempt 2" in retry[-1].content


def test_the_stand_in_judge_can_prefer_real_words_over_length(llm_server, tmp_path):
    llm_server.config.pairwise_preference = "known_words"
    llm_server.config.known_words = frozenset(" ".join(STORIES).replace("।", "").split())
    real, noise = STORIES[1], "कखग घङच छजझ ञटठ डढण तथद धनप फबभ मयर लवश षसह"
    rubric = PairwiseRubric("story", "hindi")
    items = [
        ("real-first", rubric.messages(STORY_OPENING, real, noise)),
        ("noise-first", rubric.messages(STORY_OPENING, noise, real)),
    ]
    params = GenerationParams(model="gpt-4o", temperature=0, json_mode=True)
    replies = ask(_endpoint(llm_server), tmp_path / "pairs.sqlite", items, params)
    assert [rubric.parse(replies[k].text).winner for k, _ in items] == ["A", "B"]
