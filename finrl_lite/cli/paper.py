"""`finrl-lite paper RUN_DIR ...` (trade a run on paper) and `finrl-lite paper status JOURNAL`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import click
import typer
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from typer.core import TyperGroup

from finrl_lite.cli.app import SetOption, console, err_console, log_file, user_errors

__all__ = ["paper_app"]


class _RunByDefault(TyperGroup):
    """`paper RUN_DIR ...` runs the loop; `paper status JOURNAL` reads a journal."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


paper_app = typer.Typer(
    cls=_RunByDefault,
    help="Paper trading: `paper RUN_DIR` trades a run (sim or Alpaca), `paper status JOURNAL` shows a journal.",
    no_args_is_help=True,
)

_LOG_NAME = "paper.log"


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


class _Display:
    """The live view of a session: a rich panel on a terminal, one plain line per bar otherwise."""

    def __init__(self, title: str, live: bool) -> None:
        self.title = title
        self.rows: list[Any] = []
        from finrl_lite.trade.loop import SessionSummary

        self.summary = SessionSummary()
        self.filled = 0
        self.live = Live(console=console, refresh_per_second=4, transient=False) if live else None

    def __enter__(self) -> _Display:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def on_bar(self, report: Any) -> None:
        t = self.summary
        t.add(report)
        self.filled += report.filled
        pnl = report.equity - (t.first_equity or 0.0)
        orders = ", ".join(f"{o.side} {o.qty:g} {o.ticker} [{o.status}]" for o in report.orders) or "-"
        if self.live is None:
            console.print(
                f"bar {report.time} {report.kind}: equity {_money(report.equity)} (P&L {pnl:+,.2f}) cash {_money(report.cash)}; "
                f"orders {orders}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            return
        self.rows = [*self.rows[-9:], (report.time, report.kind, _money(report.equity), f"{pnl:+,.2f}", orders)]
        table = Table(expand=True)
        for name in ("bar", "", "equity", "P&L", "orders"):
            table.add_column(name, overflow="fold")
        for row in self.rows:
            table.add_row(*(escape(str(cell)) for cell in row))
        head = (
            f"bars {t.bars}  orders sent {t.sent}  filled {self.filled}  blocked {t.blocked}  "
            f"rejected {t.rejected}  equity {_money(report.equity)}"
        )
        self.live.update(Panel(Group(head, table), title=self.title))


@paper_app.command("run", hidden=True)
def run(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `finrl-lite train`.")],
    config: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--config", "-c", help="Config with a `paper:` section (configs/paper_sim.yaml); default: the run's."),
    ] = None,
    set_: SetOption = None,
    broker: Annotated[Optional[str], typer.Option("--broker", help="sim or alpaca.")] = None,  # noqa: UP045
    feed: Annotated[Optional[str], typer.Option("--feed", help="replay or alpaca.")] = None,  # noqa: UP045
    data: Annotated[
        Optional[Path], typer.Option("--data", help="Replay this long-format csv/parquet file of raw bars.")  # noqa: UP045
    ] = None,
    start: Annotated[Optional[str], typer.Option("--start", help="First replayed bar (default: the trade split).")] = None,  # noqa: UP045
    end: Annotated[Optional[str], typer.Option("--end", help="Last replayed bar.")] = None,  # noqa: UP045
    speed: Annotated[
        Optional[float], typer.Option("--speed", help="Replay X times faster than real time; 0: no waiting.")  # noqa: UP045
    ] = None,
    max_bars: Annotated[Optional[int], typer.Option("--max-bars", help="Stop after N new bars.")] = None,  # noqa: UP045
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide and show orders; send nothing, write no journal.")] = False,
    journal: Annotated[
        Optional[Path], typer.Option("--journal", help="Journal file (default RUN_DIR/paper/journal.sqlite).")  # noqa: UP045
    ] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Which trained seed trades.")] = None,  # noqa: UP045
    live: Annotated[
        Optional[bool], typer.Option("--live/--no-live", help="Live panel (default: on a terminal).")  # noqa: UP045
    ] = None,
) -> None:
    """Trade a trained run on paper: every new bar -> the agent -> orders through the broker, journaled."""
    from finrl_lite.trade.config import load_paper_config
    from finrl_lite.trade.session import open_session

    overrides = list(set_ or [])
    for key, value in (
        ("broker", broker),
        ("feed", feed),
        ("replay.data", data),
        ("replay.start", start),
        ("replay.end", end),
        ("replay.speed", speed),
        ("max_bars", max_bars),
        ("journal", journal),
        ("seed", seed),
    ):
        if value is not None:
            overrides.append(f"{key}={value}")
    if dry_run:
        overrides.append("dry_run=true")
    with user_errors():
        own = run_dir / "config.yaml"  # without --config: the run's own `paper:` section, if it has one
        cfg = load_paper_config(config if config is not None or not own.is_file() else own, overrides)
        trader = open_session(run_dir, cfg)
        log_dir = trader.journal.path.parent if trader.journal.path is not None else run_dir / "paper"
        try:
            with log_file(log_dir / _LOG_NAME):
                report = trader.start()
                console.print(
                    f"run {run_dir} (id {trader.run_.run_id}, seed {trader.run_.seed}) on broker [bold]{cfg.broker}[/bold], "
                    f"feed {trader.feed.origin}; journal {trader.journal.label}\n{report.summary()}",
                    highlight=False,
                )
                clock = getattr(trader.broker, "clock", None)
                if callable(clock):  # the broker's market clock (Alpaca)
                    c = clock()
                    console.print(
                        f"market {'open' if c.is_open else 'closed'}; next open {c.next_open}, next close {c.next_close}"
                    )
                display = _Display(f"paper trading {run_dir} ({cfg.broker})", console.is_terminal if live is None else live)
                try:
                    with display:
                        summary = trader.run(on_bar=display.on_bar)
                except KeyboardInterrupt:
                    err_console.print("stopped; run the same command again to resume from the journal")
                    raise typer.Exit(code=130) from None
        finally:
            trader.broker.close()
            trader.journal.close()
    console.print(
        f"{summary.bars} bar(s) ({summary.traded} traded) up to {summary.last_bar}: equity {_money(summary.last_equity)}; "
        f"orders sent {summary.sent}, blocked {summary.blocked}, rejected {summary.rejected}",
        highlight=False,
    )
    if trader.journal.path is not None:
        console.print(f"status: finrl-lite paper status {trader.journal.path}", highlight=False)


@paper_app.command("status")
def status(
    journal: Annotated[Path, typer.Argument(help="A journal written by `finrl-lite paper` (RUN_DIR/paper/journal.sqlite).")],
    png: Annotated[
        Optional[Path], typer.Option("--png", help="Where to write the equity PNG (default: beside the journal).")  # noqa: UP045
    ] = None,
    recent: Annotated[int, typer.Option("--recent", help="How many recent orders to list.")] = 10,
) -> None:
    """Positions, cash, equity so far, open and recent orders, and P&L against the baselines (table and PNG)."""
    from finrl_lite.trade.status import read_status, write_status_png

    with user_errors():
        st = read_status(journal, recent=recent)
        out = write_status_png(st, png or journal.with_name(journal.stem + "_status.png"))
    console.print(
        f"journal {st.journal} of run {st.run_dir} (id {st.run_id}), broker {st.broker}; last bar {st.last_bar}", highlight=False
    )
    account = Table(title="account")
    for col in ("cash", "equity", *st.positions):
        account.add_column(col, justify="right")
    account.add_row(_money(st.cash), _money(st.equity), *(f"{q:g}" for q in st.positions.values()))
    console.print(account)
    curve = Table(title=f"equity curve ({len(st.curves)} bars; the last {min(recent, len(st.curves))})")
    curve.add_column("bar")
    for name in st.curves.columns:
        curve.add_column(str(name), justify="right", no_wrap=name == "agent")
    for when, row in st.curves.tail(recent).iterrows():
        curve.add_row(str(when.date()) if when == when.normalize() else str(when), *(_money(v) for v in row))
    console.print(curve)
    pnl = Table(title="P&L against the baselines (same bars, same fees)")
    pnl.add_column("strategy", no_wrap=True)
    for col in ("start", "end", "P&L", "return", "max drawdown", "sharpe"):
        pnl.add_column(col, justify="right")
    for name, row in st.pnl.iterrows():
        pnl.add_row(
            f"[bold]{name}[/bold]" if name == "agent" else str(name),
            _money(row["start"]),
            _money(row["end"]),
            f"{row['pnl']:+,.2f}",
            f"{100 * row['return']:+.2f}%",
            f"{100 * row['max_drawdown']:.2f}%",
            f"{row['sharpe']:.3g}",
        )
    console.print(pnl)
    for title, orders in (("open orders", st.open_orders), ("recent orders", st.recent_orders)):
        table = Table(title=title)
        for col in ("bar", "client order id", "side", "qty", "ticker", "status", "filled", "avg price", "reason"):
            table.add_column(col)
        for o in orders:
            avg = "-" if o.filled_avg_price is None else f"{o.filled_avg_price:,.4f}"
            table.add_row(
                o.bar_time, o.client_order_id, o.side, f"{o.qty:g}", o.ticker, o.status, f"{o.filled_qty:g}", avg, o.reason
            )
        console.print(table)
    if st.blocks:
        table = Table(title="risk blocks and reconciliation")
        for col in ("at", "bar", "kind", "detail"):
            table.add_column(col)
        for e in st.blocks:
            table.add_row(str(e["at"]), str(e["bar_time"] or "-"), str(e["kind"]), str(e["detail"]))
        console.print(table)
    if out is not None:
        console.print(f"wrote {out}")
