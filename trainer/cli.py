"""`trainer`: tokenizers and small GPT models from factory datasets."""

import typer

from factory.errors import run_cli

app = typer.Typer(
    help="Train tokenizers and small GPT models on factory datasets. "
    "No commands are available yet: the trainer stage adds them.",
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
