"""`judge report`: an evaluation folder's report.html, or a pairwise folder's
leaderboard.html, from their files alone."""

from pathlib import Path

from factory.errors import KahaniError
from factory.languages import get_language
from judge.pairwise_run import read_result
from judge.results import read_controls, read_sampling, read_scores, read_summary
from reports.evaluation import render_evaluation
from reports.leaderboard import render_leaderboard
from reports.render import ReportError


def evaluation_report(folder: Path, out: Path | None = None) -> Path:
    summary = read_summary(folder)
    try:
        return render_evaluation(
            summary.model_dump(mode="json"),
            read_scores(folder),
            read_sampling(folder),
            get_language(summary.language).html_lang,
            out or folder / "report.html",
            controls=read_controls(folder),
        )
    except ReportError as err:
        raise KahaniError(str(err)) from None


def leaderboard_report(folder: Path, out: Path | None = None) -> Path:
    summary, pairs = read_result(folder)
    try:
        return render_leaderboard(
            summary,
            pairs,
            get_language(summary.get("language", "english")).html_lang,
            out or folder / "leaderboard.html",
        )
    except ReportError as err:
        raise KahaniError(str(err)) from None
