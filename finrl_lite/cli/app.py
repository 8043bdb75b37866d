"""The root `finrl-lite` app, shared options and the user-error handler."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from finrl_lite import __version__
from finrl_lite.errors import FinrlLiteError

app = typer.Typer(
    name="finrl-lite",
    help="Reinforcement-learning trading research: data -> vectorized envs -> agents -> backtest -> paper trading.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file (configs/*.yaml).")]  # noqa: UP045
SetOption = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--set", help="Override a config value: section.key=value (YAML value); repeatable."),
]


def _version(value: bool) -> None:
    if value:
        console.print(f"finrl-lite {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-v info, -vv debug).")] = 0,
) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err_console, show_path=False)], force=True
    )


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a user error into a one-paragraph message and exit code 2 (no traceback)."""
    try:
        yield
    except FinrlLiteError as exc:
        err_console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None


def main() -> None:
    """Console-script entry point."""
    app()
