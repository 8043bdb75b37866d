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
FLAG = ""
"""The metavar of an on/off flag: typer would print ``<bool>`` as if the flag took a value."""
NoCacheOption = Annotated[bool, typer.Option("--no-cache", metavar=FLAG, help="Neither read nor write the data cache.")]

NOISY_LIBRARIES = ("yfinance",)
"""Loggers of libraries whose messages finrl_lite reports in its own words (yfinance logs an error with a traceback
per ticker and attempt; the Yahoo source folds them into one message): shown from -vv on."""


def _version(value: bool) -> None:
    if value:
        console.print(f"finrl-lite {__version__}")
        raise typer.Exit()


def configure_logging(verbose: int) -> None:
    """Console logging: warnings by default, INFO with ``-v``, DEBUG with ``-vv``.

    The level is set on the console handler too, so a logger set lower for a log file (``train.log`` takes INFO)
    does not reach the console below the level asked for. Libraries in :data:`NOISY_LIBRARIES` reach it from -vv on.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = RichHandler(console=err_console, show_path=False, level=level)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    for name in NOISY_LIBRARIES:
        library = logging.getLogger(name)
        library.propagate = verbose >= 2
        if not any(isinstance(h, logging.NullHandler) for h in library.handlers):
            library.addHandler(logging.NullHandler())  # else Python's last-resort handler would print its warnings


def raise_log_level_to_info() -> None:
    """Make the ``finrl_lite`` logger's INFO records (a run's log file holds them; the console keeps the level ``-v``
    chose on its own handler)."""
    package = logging.getLogger("finrl_lite")
    package.setLevel(min(package.level or logging.INFO, logging.INFO))


@contextlib.contextmanager
def log_file(path: Path) -> Iterator[None]:
    """While the block runs, the ``finrl_lite`` log from INFO up also goes to ``path`` (the console keeps the level
    ``-v`` chose: :func:`configure_logging` sets it on the console handler)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    package = logging.getLogger("finrl_lite")
    package.addHandler(handler)
    raise_log_level_to_info()
    try:
        yield
    finally:
        package.removeHandler(handler)
        handler.close()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, metavar=FLAG, help="Show the version and exit.")
    ] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            metavar=FLAG,
            show_default=False,
            help="More log output; repeat it: -v info, -vv debug (default: warnings only).",
        ),
    ] = 0,
) -> None:
    configure_logging(verbose)


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
