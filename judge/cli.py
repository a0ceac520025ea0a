"""`judge`: how good is a model? (Scoring arrives with the judge issue; see ARCHITECTURE.md.)"""

import typer

from factory.errors import run_cli

app = typer.Typer(
    help="Score small language models: samples, an LLM judge, offline metrics, reports. "
    "No commands are available yet: `judge score` arrives with the judge stage.",
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback(invoke_without_command=True)
def overview(ctx: typer.Context) -> None:
    """Show this help."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def main() -> None:
    run_cli(app)
