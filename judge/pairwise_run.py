"""Pairwise judging of evaluated models: every pair of models' completions of the same prompt,
in both orders, through factory's engine (cached: a second run sends nothing), then win rates,
length-controlled win rates, Bradley-Terry ratings and the judge's position consistency.

Inputs are evaluation folders written by `judge score` (completions.jsonl and sampling.json);
sample k of one model is paired with sample k of another on the same prompt. Sanity controls
run here too: a completion against its own damaged copy (shuffled, truncated, wrong script),
in both orders, with the examples kept so a report can show what the judge missed.

A panel works here too: every judge judges every pair in both orders; the statistics pool
their outcomes (each judge's verdict on a pair is one more comparison on its prompt), and the
summary adds each judge's own ratings, position consistency and parse failures, and the
judges' agreement on the outcomes.

Outputs (`write_result`, read back by `read_result`): `pairwise.json`, the summary, and
`pairs.jsonl`, one line per judged pair with both texts and both verdicts, for the drill-down.
"""

import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import combinations
from pathlib import Path

from factory.errors import KahaniError
from factory.languages import get_language
from factory.llm import Endpoint, ask
from factory.providers.base import GenerationParams
from judge.agreement import PanelAgreement, panel_agreement
from judge.controls import KINDS, damaged
from judge.judging import judge_name
from judge.pairwise import PairwiseRubric, Verdict
from judge.pairwise_stats import (
    Comparison,
    Consistency,
    LengthControlled,
    Rating,
    WinRate,
    bradley_terry,
    combine_orders,
    length_controlled_win_rate,
    position_consistency,
    win_rate,
)
from judge.results import Completion, SamplingConfig, read_sampled

ORIGINAL = "original"  # the system name of an undamaged text in a control pair


@dataclass(frozen=True)
class System:
    """One evaluated model: its name and its completions by (prompt id, sample)."""

    name: str
    folder: Path
    settings: SamplingConfig
    completions: dict[tuple[str, int], Completion]


@dataclass(frozen=True)
class Candidate:
    """Two texts for one prompt, from systems `first` and `second`."""

    prompt_id: str
    sample: int
    prompt: str
    first: str
    second: str
    first_text: str
    second_text: str


@dataclass(frozen=True)
class JudgedPair(Candidate):
    """A candidate judged in both orders by `judge`: `forward` showed `first` as A."""

    judge: str
    forward: Verdict
    backward: Verdict
    score: float | None  # for `first`: 1 win, 0.5 tie or inconsistent, 0 loss; None missing
    consistent: bool | None

    def comparison(self) -> Comparison:
        difference = len(self.first_text.split()) - len(self.second_text.split())
        return Comparison(
            self.prompt_id, self.first, self.second, self.score, self.consistent, difference
        )


@dataclass(frozen=True)
class JudgeFigures:
    """One judge of a panel on its own."""

    parse_failure_rate: float
    consistency: Consistency
    ratings: list[Rating]


@dataclass
class PairwiseResult:
    language: str
    systems: list[str]
    judges: list[str]  # provider:model
    pairs: list[JudgedPair]  # every judge's
    consistency: Consistency
    parse_failure_rate: float  # verdicts unusable after every retry, over all verdicts
    win_rates: dict[str, dict[str, WinRate]]
    length_controlled: dict[str, dict[str, LengthControlled]]
    ratings: list[Rating]  # Bradley-Terry, best first
    controls: dict[str, dict] = field(default_factory=dict)  # kind -> counts and examples
    by_judge: dict[str, JudgeFigures] = field(default_factory=dict)  # with two or more judges
    agreement: PanelAgreement | None = None  # of the judges' outcomes (0, 0.5, 1) per pair

    def summary(self) -> dict:
        """The JSON summary (`pairwise.json`): everything but the texts."""
        return {
            "language": self.language,
            "systems": self.systems,
            "judges": self.judges,
            "pairs": len(self.pairs),
            "parse_failure_rate": self.parse_failure_rate,
            "position_consistency": asdict(self.consistency),
            "ratings": [asdict(r) for r in self.ratings],
            "win_rates": {
                a: {b: asdict(w) for b, w in row.items()} for a, row in self.win_rates.items()
            },
            "length_controlled": {
                a: {b: asdict(lc) for b, lc in row.items()}
                for a, row in self.length_controlled.items()
            },
            "controls": {
                kind: {k: v for k, v in c.items() if k != "examples"}
                for kind, c in self.controls.items()
            },
            "by_judge": {name: asdict(f) for name, f in self.by_judge.items()},
            "agreement": asdict(self.agreement) if self.agreement else None,
        }


def load_systems(eval_dirs: list[Path]) -> list[System]:
    """The evaluated models, checked to be comparable: two or more, one language and kind,
    the same prompts."""
    if len(eval_dirs) < 2:
        raise KahaniError("pairwise judging needs at least two evaluation folders")
    systems = []
    for folder in eval_dirs:
        settings, completions = read_sampled(folder)
        by_key = {(c.prompt_id, c.sample): c for c in completions}
        systems.append(System(settings.model, folder, settings, by_key))
    names = [s.name for s in systems]
    if len(set(names)) < len(names):  # one model twice (two seeds): name them by folder
        systems = [replace(s, name=f"{s.name} ({s.folder.name})") for s in systems]
    first = systems[0]
    for other in systems[1:]:
        if (other.settings.language, other.settings.kind) != (
            first.settings.language,
            first.settings.kind,
        ):
            raise KahaniError(
                f"{other.folder} is {other.settings.language} {other.settings.kind}s and "
                f"{first.folder} is {first.settings.language} {first.settings.kind}s: "
                "compare evaluations of one language"
            )
        mine, theirs = _prompts(first), _prompts(other)
        if mine != theirs:
            raise KahaniError(
                f"{first.folder} and {other.folder} were evaluated on different prompts "
                f"({len(mine - theirs)} and {len(theirs - mine)} not shared): score them "
                "with the same --prompts and --n"
            )
    return systems


def _prompts(system: System) -> set[str]:
    return {prompt_id for prompt_id, _ in system.completions}


def _item_id(endpoint: Endpoint, messages: list, attempt: int) -> str:
    """An id from the judge and the request's content, so another judge or a changed text
    is a new request, never an old answer (the store keeps the first request under an id)."""
    asked = [judge_name(endpoint), [m.model_dump() for m in messages]]
    digest = hashlib.sha256(json.dumps(asked, ensure_ascii=False).encode()).hexdigest()
    return f"pw-{digest[:20]}#a{attempt}"


def _judge_verdicts(
    rubric: PairwiseRubric,
    requests: dict[tuple, tuple[str, str, str]],
    endpoint: Endpoint,
    store_path: Path,
    retries: int,
) -> dict[tuple, Verdict]:
    """A verdict per key from (prompt, text A, text B), asking again (a different request)
    when an answer names no winner; still unusable after the retries: Verdict(None, ...)."""
    params = GenerationParams(model=endpoint.model, temperature=0, json_mode=True)
    verdicts: dict[tuple, Verdict] = {}
    todo = dict(requests)
    for attempt in range(1, retries + 2):
        ids, messages = {}, {}
        for key, texts in todo.items():
            request = rubric.messages(*texts, attempt)
            ids[key] = _item_id(endpoint, request, attempt)
            messages[ids[key]] = request  # the same two texts twice are asked once
        label = f"pairwise judging with {judge_name(endpoint)}" + (
            f", asking again ({attempt})" if attempt > 1 else ""
        )
        replies = ask(endpoint, store_path, list(messages.items()), params, label)
        still_bad = {}
        for key, texts in todo.items():
            reply = replies[ids[key]]
            if reply.text is None:
                verdicts[key] = Verdict(None, "", f"request failed: {reply.error}")
                continue
            verdicts[key] = rubric.parse(reply.text)
            if verdicts[key].winner is None:
                still_bad[key] = texts
        todo = still_bad
        if not todo:
            break
    return verdicts


def _judge_pairs(
    rubric: PairwiseRubric,
    candidates: list[Candidate],
    endpoint: Endpoint,
    store_path: Path,
    retries: int,
) -> list[JudgedPair]:
    """Each candidate judged in both orders."""
    requests = {}
    for index, c in enumerate(candidates):
        requests[(index, "forward")] = (c.prompt, c.first_text, c.second_text)
        requests[(index, "backward")] = (c.prompt, c.second_text, c.first_text)
    verdicts = _judge_verdicts(rubric, requests, endpoint, store_path, retries)
    judged = []
    for index, candidate in enumerate(candidates):
        forward, backward = verdicts[(index, "forward")], verdicts[(index, "backward")]
        score, consistent = combine_orders(forward.winner, backward.winner)
        judged.append(
            JudgedPair(
                **asdict(candidate),
                judge=judge_name(endpoint),
                forward=forward,
                backward=backward,
                score=score,
                consistent=consistent,
            )
        )
    return judged


def _control_summary(pairs: list[JudgedPair]) -> dict:
    """How often the original beat its damaged copy in both orders; the examples (every pair,
    the ones the judge missed first) are for showing beside their originals."""
    scores = [p.score for p in pairs if p.score is not None]
    wins = scores.count(1.0)
    return {
        "pairs": len(scores),
        "original_wins": wins,
        "ties": scores.count(0.5),  # order-inconsistent verdicts included
        "original_losses": scores.count(0.0),
        "missing": len(pairs) - len(scores),
        "rate": wins / len(scores) if scores else None,
        "examples": sorted(pairs, key=lambda p: p.score == 1.0),
    }


def judge_pairwise(
    eval_dirs: list[Path],
    rubric: PairwiseRubric | None,
    endpoints: Sequence[Endpoint],
    store_path: Path,
    *,
    retries: int = 2,
    controls: int = 0,
    n_resamples: int = 2000,
) -> PairwiseResult:
    """Every judge judges every pair of the evaluated models on their shared prompts in both
    orders, and `controls` completions per kind of damage against their damaged copies.
    `rubric` None picks the shipped pairwise rubric for the evaluations' kind and language."""
    systems = load_systems(eval_dirs)
    settings = systems[0].settings
    rubric = rubric or PairwiseRubric(settings.kind, settings.language)
    candidates = []
    for a, b in combinations(systems, 2):
        for key in sorted(set(a.completions) & set(b.completions)):
            x, y = a.completions[key], b.completions[key]
            candidates.append(
                Candidate(key[0], key[1], x.prompt, a.name, b.name, x.completion, y.completion)
            )
    control_candidates = _control_candidates(systems, controls)
    everything = candidates + [c for _, c in control_candidates]
    try:
        store_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise KahaniError(f"cannot write {store_path.parent}: {err.strerror or err}") from None
    names = [s.name for s in systems]
    judges = [judge_name(e) for e in endpoints]
    model_pairs: dict[str, list[JudgedPair]] = {}
    by_kind: dict[str, list[JudgedPair]] = {}
    for endpoint, judge in zip(endpoints, judges, strict=True):
        judged = _judge_pairs(rubric, everything, endpoint, store_path, retries)
        model_pairs[judge] = judged[: len(candidates)]
        for (kind, _), pair in zip(control_candidates, judged[len(candidates) :], strict=True):
            by_kind.setdefault(kind, []).append(pair)
    pooled = [p for pairs in model_pairs.values() for p in pairs]
    every = pooled + [p for pairs in by_kind.values() for p in pairs]
    comparisons = [p.comparison() for p in pooled]
    result = PairwiseResult(
        language=settings.language,
        systems=names,
        judges=judges,
        pairs=pooled,
        consistency=position_consistency(comparisons),
        parse_failure_rate=_parse_failure_rate(every),
        win_rates={
            a: {b: win_rate(comparisons, a, b, n_resamples=n_resamples) for b in names if b != a}
            for a in names
        },
        length_controlled={
            a: {
                b: length_controlled_win_rate(comparisons, a, b, n_resamples=n_resamples)
                for b in names
                if b != a
            }
            for a in names
        },
        ratings=bradley_terry(comparisons, n_resamples=n_resamples),
        controls={kind: _control_summary(by_kind.get(kind, [])) for kind in KINDS}
        if controls
        else {},
    )
    if len(judges) > 1:
        for judge, pairs in model_pairs.items():
            own = [p.comparison() for p in pairs]
            result.by_judge[judge] = JudgeFigures(
                parse_failure_rate=_parse_failure_rate(
                    pairs + [p for ps in by_kind.values() for p in ps if p.judge == judge]
                ),
                consistency=position_consistency(own),
                ratings=bradley_terry(own, n_resamples=n_resamples),
            )
        result.agreement = panel_agreement(
            {judge: [p.score for p in pairs] for judge, pairs in model_pairs.items()}
        )
    return result


def _parse_failure_rate(pairs: list[JudgedPair]) -> float:
    """The share of verdicts (two per pair) with no usable winner after every retry."""
    verdicts = [v for p in pairs for v in (p.forward, p.backward)]
    return sum(v.winner is None for v in verdicts) / len(verdicts) if verdicts else 0.0


def _control_candidates(systems: list[System], n: int) -> list[tuple[str, Candidate]]:
    """(kind, candidate) for up to n completions per kind of damage, taken from the models in
    turn, each against its damaged copy."""
    if not n:
        return []
    script = get_language(systems[0].settings.language).script
    lists = [list(s.completions.values()) for s in systems]
    pool = [cs[rank] for rank in range(max(map(len, lists))) for cs in lists if rank < len(cs)]
    out = []
    for kind in KINDS:
        made = 0
        for c in pool:
            if made >= n:
                break
            copy = damaged(c.completion, kind, script, seed=zlib.crc32(c.id.encode()))
            if copy is not None:
                candidate = Candidate(
                    c.prompt_id, c.sample, c.prompt, ORIGINAL, kind, c.completion, copy
                )
                out.append((kind, candidate))
                made += 1
    return out


def write_result(result: PairwiseResult, out: Path) -> None:
    """`pairwise.json` (the summary) and `pairs.jsonl` (every judged pair, controls marked),
    each written under a temporary name and renamed."""
    rows = [("model", p) for p in result.pairs] + [
        ("control", p) for c in result.controls.values() for p in c["examples"]
    ]
    lines = "".join(
        json.dumps({"type": kind, **asdict(pair)}, ensure_ascii=False) + "\n" for kind, pair in rows
    )
    summary = json.dumps(result.summary(), ensure_ascii=False, indent=2)
    for name, text in (("pairs.jsonl", lines), ("pairwise.json", summary)):
        path = out / name
        try:
            out.mkdir(parents=True, exist_ok=True)
            path.with_name(name + ".tmp").write_text(text, encoding="utf-8")
            path.with_name(name + ".tmp").replace(path)
        except OSError as err:
            raise KahaniError(f"cannot write {path}: {err.strerror or err}") from None


def read_result(folder: Path) -> tuple[dict, list[dict]]:
    """A pairwise folder's summary (`pairwise.json`) and judged pairs (`pairs.jsonl`)."""
    summary_path, pairs_path = folder / "pairwise.json", folder / "pairs.jsonl"
    if not summary_path.is_file() or not pairs_path.is_file():
        raise KahaniError(
            f"{folder} is not a pairwise folder: it has no pairwise.json and pairs.jsonl "
            "(run `judge compare-pairwise` first)"
        )
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        pairs = [
            json.loads(line)
            for line in pairs_path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise KahaniError(f"cannot read the pairwise results in {folder}: {err}") from None
    if not isinstance(summary, dict) or "ratings" not in summary or "judges" not in summary:
        raise KahaniError(f"{summary_path} is not a kahani pairwise summary")
    return summary, pairs
