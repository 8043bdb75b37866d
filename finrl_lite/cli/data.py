"""`finrl-lite data ...`: download, clean and featurise market data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from finrl_lite.cli.app import ConfigOption, NoCacheOption, SetOption, console, user_errors

data_app = typer.Typer(help="Download, clean and featurise market data.", no_args_is_help=True)


SHOWN_TICKERS = 30
"""More tickers than this are listed as the first ones and a count (summary.json lists them all)."""


def _tickers_text(tickers: list[str]) -> str:
    """``3: AAPL, MSFT, VRTX``; a long universe shows its first :data:`SHOWN_TICKERS` and how many more."""
    shown = ", ".join(tickers[:SHOWN_TICKERS])
    more = len(tickers) - SHOWN_TICKERS
    return f"{len(tickers)}: {shown}" + (f" and {more} more (all in summary.json)" if more > 0 else "")


@data_app.command("prepare")
def data_prepare(
    config: ConfigOption = None,
    set_: SetOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("data_out"),
    no_cache: NoCacheOption = False,
) -> None:
    """Prepare the data a config describes and write it to OUT (market_data.parquet, summary.json)."""
    from finrl_lite.config import dump_config, load_config
    from finrl_lite.data_processors.processor import prepare_data
    from finrl_lite.io import atomic_write_json, atomic_write_text

    with user_errors():
        cfg = load_config(config, set_ or [])
        with console.status(f"preparing {cfg.data.source} data"):
            prepared = prepare_data(cfg, use_cache=not no_cache)
        market = prepared.market
        out.mkdir(parents=True, exist_ok=True)
        data_path = market.save(out / "market_data.parquet")
        summary = {
            **market.summary(),
            "cleaning": prepared.report.to_dict(),
            "ticker_symbols": [str(t) for t in market.tickers],
            "cache_hit": prepared.cache_hit,
            "fingerprint": market.fingerprint(),
        }
        atomic_write_json(out / "summary.json", summary)
        atomic_write_text(out / "config.yaml", dump_config(cfg))

    table = Table(title=f"{cfg.data.source} data", show_header=False)
    s = market.summary()
    table.add_row("tickers", _tickers_text([str(t) for t in market.tickers]))
    table.add_row("bars", f"{s['dates']}  ({s['start']} .. {s['end']}, {s['interval']})")
    table.add_row("fields", ", ".join(market.fields))
    table.add_row("market series", ", ".join(market.market_fields) or "-")
    table.add_row("valid cells", f"{100 * s['valid_fraction']:.2f}%")
    counts = prepared.report.counts()
    dropped = ", ".join(f"{n} {why}" for why, n in counts.items()) if counts else "none"
    table.add_row("rows dropped", escape(dropped))  # reasons hold brackets ([low, high]), not markup
    jumps = prepared.report.jumps
    more = f" and {len(jumps) - 5} more" if len(jumps) > 5 else ""
    shown = "; ".join(f"{t} {d[:10]} x{f:.2f}" for t, d, f in jumps[:5]) + more
    table.add_row("price jumps kept", shown or "none")
    table.add_row("exact duplicates", str(prepared.report.exact_duplicates))
    table.add_row("warm-up bars", str(market.warmup))
    for name, rng in (market.splits or {}).items():
        table.add_row(f"split {name}", str(rng))
    table.add_row("cache", "hit" if prepared.cache_hit else ("written" if prepared.cache_path else "off"))
    console.print(table)
    console.print(f"wrote {data_path}")
