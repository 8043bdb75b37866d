"""`finrl-lite`: the command line (typer + rich). The CLI owns progress, console output and paths."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from finrl_lite import __version__
from finrl_lite.errors import FinrlLiteError

app = typer.Typer(
    name="finrl-lite",
    help="Reinforcement-learning trading research: data -> vectorized envs -> agents -> backtest -> paper trading.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Download, clean and featurise market data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

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
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-v info, -vv debug).")] = 0,
) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=err_console, show_path=False)], force=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a user error into a one-paragraph message and exit code 2 (no traceback)."""
    try:
        yield
    except FinrlLiteError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(code=2) from None


@data_app.command("prepare")
def data_prepare(
    config: ConfigOption = None,
    set_: SetOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("data_out"),
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the data cache.")] = False,
) -> None:
    """Prepare the data a config describes and write it to OUT (market_data.parquet, summary.json)."""
    from finrl_lite.config import dump_config, load_config
    from finrl_lite.data_processors.processor import prepare_data
    from finrl_lite.io import atomic_write_text

    with user_errors():
        cfg = load_config(config, set_ or [])
        with console.status(f"preparing {cfg.data.source} data"):
            prepared = prepare_data(cfg, use_cache=not no_cache)
        market = prepared.market
        out.mkdir(parents=True, exist_ok=True)
        data_path = market.save(out / "market_data.parquet")
        summary = {**market.summary(), "cleaning": prepared.report.to_dict(), "cache_hit": prepared.cache_hit, "fingerprint": market.fingerprint()}
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=1, default=str))
        atomic_write_text(out / "config.yaml", dump_config(cfg))

    table = Table(title=f"{cfg.data.source} data", show_header=False)
    s = market.summary()
    table.add_row("tickers", f"{s['tickers']}")
    table.add_row("bars", f"{s['dates']}  ({s['start']} .. {s['end']}, {s['interval']})")
    table.add_row("fields", ", ".join(market.fields))
    table.add_row("market series", ", ".join(market.market_fields) or "-")
    table.add_row("valid cells", f"{100 * s['valid_fraction']:.2f}%")
    counts = prepared.report.counts()
    dropped = ", ".join(f"{n} {why}" for why, n in counts.items()) if counts else "none"
    table.add_row("rows dropped", dropped)
    table.add_row("exact duplicates", str(prepared.report.exact_duplicates))
    table.add_row("warm-up bars", str(market.warmup))
    for name, rng in (market.splits or {}).items():
        table.add_row(f"split {name}", str(rng))
    table.add_row("cache", "hit" if prepared.cache_hit else ("written" if prepared.cache_path else "off"))
    console.print(table)
    console.print(f"wrote {data_path}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
