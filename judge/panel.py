"""A panel of judges: several judges (each its own endpoint) score every item, each K times
with `--repeat K`; an item's score is the mean over judges of each judge's mean over its
repeats. Beside the mean: each judge's own scores, the judges' agreement (Spearman and
quadratic-weighted kappa for each pair, Krippendorff's alpha for the panel) on their first
judgement of each completion, and each judge's self-consistency (alpha over its repeats).

Repeat k is sent with seed k; the first repeat is sent without one, so it is the same request
as a single judgement and a panel or `--repeat` added to an evaluation pays only for what is
new. Every judge's answers live in one store, under ids keyed by judge, seed and text
(`judging.request_id`), so judges never share an answer.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import fmean

from factory.llm import Endpoint
from judge.aggregate import mean_interval
from judge.agreement import Agreement, panel_agreement, self_consistency
from judge.judging import JudgeResult, control_id, control_summary, judge_items, judge_name
from judge.results import (
    ControlSummary,
    DimensionAgreement,
    Figure,
    Interval,
    JudgePairAgreement,
    JudgeSummary,
    PanelJudge,
    PanelSummary,
)
from judge.rubric import Rubric

Scores = dict[str, float]


def seed_of(repeat: int) -> int | None:
    """The seed sent with repeat `repeat` (0-based): none for the first."""
    return repeat or None


@dataclass
class Panel:
    """Every judgement: per judge (provider:model), one JudgeResult per repeat."""

    endpoints: dict[str, Endpoint]
    runs: dict[str, list[JudgeResult]]

    @property
    def repeats(self) -> int:
        return len(next(iter(self.runs.values())))

    def judge_scores(self, judge: str, item_id: str) -> Scores | None:
        """One judge's mean score per dimension over its usable repeats of an item."""
        usable = [s for run in self.runs[judge] if (s := run.judgements[item_id].scores)]
        return _mean(usable)

    def scores(self, item_id: str) -> Scores | None:
        """The panel's score per dimension: the mean of the judges that scored the item."""
        return _mean([s for judge in self.runs if (s := self.judge_scores(judge, item_id))])

    def first(self, judge: str, item_id: str, dimension: str) -> int | None:
        """A judge's first judgement of an item on one dimension."""
        scores = self.runs[judge][0].judgements[item_id].scores
        return scores[dimension] if scores else None


def _mean(judgements: Sequence[dict[str, float]]) -> Scores | None:
    if not judgements:
        return None
    if len(judgements) == 1:
        return dict(judgements[0])
    return {d: fmean(s[d] for s in judgements) for d in judgements[0]}


def judge_panel(
    rubric: Rubric,
    items: dict[str, tuple[str, str]],
    endpoints: Sequence[Endpoint],
    store: Path,
    retries: int,
    repeats: int,
) -> Panel:
    """Every judge scores every (prompt, completion) item `repeats` times, one judge after
    another (each under its own endpoint's limits)."""
    return Panel(
        endpoints={judge_name(e): e for e in endpoints},
        runs={
            judge_name(e): [
                judge_items(rubric, items, e, store, retries, seed_of(k)) for k in range(repeats)
            ]
            for e in endpoints
        },
    )


def summarize(
    panel: Panel, ids: list[str], dimensions: list[str], controls: dict[tuple[str, str], tuple]
) -> tuple[JudgeSummary, PanelSummary | None]:
    """The headline judge summary (the panel mean; one judge's own scores when it is alone
    and asked once) over the completions `ids`, and the panel section when there is one."""
    names = list(panel.runs)
    every = [*ids, *(control_id(original, kind) for original, kind in controls)]
    mean = {i: panel.scores(i) for i in every}
    single = len(names) == 1 and panel.repeats == 1
    endpoint = panel.endpoints[names[0]]
    headline = JudgeSummary(
        provider="panel" if len(names) > 1 else endpoint.provider,
        model=", ".join(names) if len(names) > 1 else endpoint.model,
        parse_failure_rate=sum(mean[i] is None for i in ids) / len(ids) if ids else 0.0,
        dimensions=_intervals(mean, ids, dimensions),
        controls=_controls(mean, controls),
        judges=[] if single else names,
    )
    if single:
        return headline, None
    judges = []
    for name in names:
        own = {i: panel.judge_scores(name, i) for i in every}
        runs = panel.runs[name]
        failures = sum(run.judgements[i].scores is None for run in runs for i in ids)
        consistency = {}
        if len(runs) > 1:
            for d in dimensions:
                repeats = [[(run.judgements[i].scores or {}).get(d) for i in ids] for run in runs]
                consistency[d] = _figure(self_consistency(repeats))
        provider, _, model = name.partition(":")
        judges.append(
            PanelJudge(
                provider=provider,
                model=model,
                parse_failure_rate=failures / (len(ids) * len(runs)) if ids else 0.0,
                dimensions=_intervals(own, ids, dimensions),
                controls=_controls(own, controls),
                self_consistency=consistency,
            )
        )
    agreement = {}
    if len(names) > 1:
        for d in dimensions:
            found = panel_agreement({n: [panel.first(n, i, d) for i in ids] for n in names})
            agreement[d] = DimensionAgreement(
                krippendorff_alpha=_figure(found.krippendorff_alpha),
                pairs=[
                    JudgePairAgreement(
                        a=p.a,
                        b=p.b,
                        spearman=_figure(p.spearman),
                        quadratic_kappa=_figure(p.quadratic_kappa),
                    )
                    for p in found.pairs
                ],
            )
    return headline, PanelSummary(judges=judges, repeats=panel.repeats, agreement=agreement)


def _intervals(
    scores: dict[str, Scores | None], ids: list[str], dimensions: list[str]
) -> dict[str, Interval]:
    return {
        d: Interval(**asdict(mean_interval([(scores[i] or {}).get(d) for i in ids])))
        for d in dimensions
    }


def _controls(
    scores: dict[str, Scores | None], controls: dict[tuple[str, str], tuple]
) -> dict[str, ControlSummary]:
    overall = {i: s["overall"] if s else None for i, s in scores.items()}
    return {k: ControlSummary(**v) for k, v in control_summary(overall, controls).items()}


def _figure(agreement: Agreement) -> Figure:
    return Figure(**asdict(agreement))


def judgement_rows(panel: Panel, item_id: str) -> list[dict]:
    """Each judgement of an item, for scores.jsonl: judge, repeat, scores, reasoning, and the
    raw answer where it gave no scores."""
    rows = []
    for name, runs in panel.runs.items():
        for k, run in enumerate(runs):
            j = run.judgements[item_id]
            rows.append(
                {
                    "judge": name,
                    "repeat": k,
                    "scores": j.scores,
                    "reasoning": j.reasoning,
                    "problem": j.problem,
                    "attempts": run.attempts[item_id],
                    "raw": run.raw[item_id] if j.scores is None else None,
                }
            )
    return rows
