"""`judge report`: an evaluation folder's report.html, from its files alone."""

from pathlib import Path

from factory.errors import KahaniError
from factory.languages import get_language
from judge.results import read_sampling, read_scores, read_summary
from reports.evaluation import render_evaluation
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
        )
    except ReportError as err:
        raise KahaniError(str(err)) from None
