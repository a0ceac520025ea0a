"""`factory report`: the numbers of a run's dataset report, read from its store, handed to
`reports.dataset` to draw."""

from pathlib import Path

from factory.errors import KahaniError
from factory.languages import get_language
from factory.pricing import PriceTable
from factory.settings import load_config
from factory.stats import compute_stats
from factory.store import GradeRow, RunStore
from factory.textutil import words
from reports.dataset import DatasetPage, render_dataset
from reports.render import ReportError

EXAMPLES_PER_REASON = 3
CLUSTERS = 10  # largest duplicate clusters shown
NEAR_THRESHOLD = 4  # graded texts shown on each side of --min-score


def dataset_report(run_dir: Path, out: Path, prices: PriceTable) -> Path:
    """Write `out` from the run's config.json and store.sqlite (opened read-only)."""
    config = load_config(run_dir)
    store = RunStore.open(run_dir / "store.sqlite")
    try:
        stats = compute_stats(store, config, prices)
        grades = store.grades()
        score_of = {g.prompt_id: g.score for g, _, _ in grades}
        price = prices.get(config.model)
        answers = store.answers()
        start = min((a.answer.started_at for a in answers), default=0.0)
        over_time, cost, spent = [], [], 0.0
        for i, record in enumerate(answers, 1):
            a = record.answer
            minute = (a.finished_at - start) / 60
            over_time.append((minute, float(i)))
            if price:
                spent += price.cost(a.prompt_tokens, a.completion_tokens, batch=a.batch)
                cost.append((minute, spent))
        page = DatasetPage(
            title=f"Dataset {config.name}",
            lang=get_language(config.lang).html_lang,
            settings={
                "language": config.lang,
                "provider": config.provider,
                "model": config.model,
                "prompts asked": config.n,
                "seed": config.seed,
                "template": str(config.template or "shipped"),
                "word lists": str(config.vocab_dir or "shipped"),
                "temperature": config.temperature,
                "max tokens": config.max_tokens,
            },
            stats=stats,
            examples={
                reason: [
                    {"id": pid, "detail": detail, "text": text}
                    for pid, detail, text in store.reject_examples(reason, EXAMPLES_PER_REASON)
                ]
                for reason, _ in stats.rejects.most_common()
            },
            clusters=[
                {
                    "id": head,
                    "size": size,
                    "text": text,
                    "copies": [{"id": i, "similarity": s, "text": t} for i, s, t in copies],
                }
                for head, size, text, copies in store.duplicate_clusters(CLUSTERS)
            ],
            answers_over_time=over_time,
            cost_over_time=cost if price else None,
            rows=[
                {
                    "id": row.prompt_id,
                    "verdict": row.reason or ("kept" if row.text is not None else row.status),
                    "words": len(words(shown)) if (shown := row.text or row.raw or "") else None,
                    "tokens": row.completion_tokens,
                    "text": shown,
                    "detail": row.detail,
                    "duplicate_of": row.duplicate_of,
                    "variables": row.variables,
                    "raw": row.raw,
                    **({"score": score_of.get(row.prompt_id)} if grades else {}),
                }
                for row in store.table()
            ],
            scores=[g.score for g, _, _ in grades if g.score is not None],
            near_threshold=_near_threshold(
                grades, stats.grades.min_score if stats.grades else None
            ),
        )
    finally:
        store.close()
    try:
        return render_dataset(page, out)
    except ReportError as err:
        raise KahaniError(str(err)) from None


def _near_threshold(
    grades: list[tuple[GradeRow, str | None, str]], threshold: float | None
) -> list:
    """The graded texts closest to the threshold on each side, lowest score first."""
    if threshold is None:
        return []
    scored = [(g, reason, text) for g, reason, text in grades if g.score is not None]
    below = sorted((x for x in scored if x[0].score < threshold), key=lambda x: -x[0].score)
    above = sorted((x for x in scored if x[0].score >= threshold), key=lambda x: x[0].score)
    chosen = below[:NEAR_THRESHOLD][::-1] + above[:NEAR_THRESHOLD]
    return [
        {
            "id": g.prompt_id,
            "score": g.score,
            "verdict": reason or "kept",
            "reasoning": g.reasoning,
            "text": text,
        }
        for g, reason, text in chosen
    ]
