"""`paper status`: what a journal says so far: account, equity curve, orders, P&L against the baselines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from finrl_lite.errors import DataError
from finrl_lite.trade.journal import OPEN_STATUSES, Journal, JournalOrder
from finrl_lite.train.backtest import EquityCurve
from finrl_lite.train.metrics import compute_metrics
from finrl_lite.train.report import plot_curves

__all__ = ["PaperStatus", "read_status", "write_status_png"]


@dataclass
class PaperStatus:
    """A journal's state.

    Attributes:
        journal: The journal file.
        run_dir: The run that trades.
        run_id: Its identity.
        broker: ``sim`` or ``alpaca``.
        last_bar: The last finished bar (None before the first).
        cash: Cash after the last bar.
        equity: Equity after the last bar.
        positions: Shares per ticker after the last bar.
        curves: Equity per bar of the agent and of each baseline (columns), indexed by bar time.
        open_orders: Orders not final yet.
        recent_orders: The latest orders, newest first.
        blocks: Risk-limit blocks and reconciliation events, newest first.
        pnl: Per curve: start, end, P&L, return, max drawdown, Sharpe (rows: agent, then the baselines).
    """

    journal: Path
    run_dir: str
    run_id: str
    broker: str
    last_bar: str | None
    cash: float | None
    equity: float | None
    positions: dict[str, float]
    curves: pd.DataFrame
    open_orders: list[JournalOrder]
    recent_orders: list[JournalOrder]
    blocks: list[dict[str, object]]
    pnl: pd.DataFrame


def read_status(path: str | Path, recent: int = 10) -> PaperStatus:
    """Read a journal (read-only) into a :class:`PaperStatus`.

    Raises:
        DataError: no such file, a corrupt file, or not a finrl-lite journal.
    """
    journal = Journal(path, read_only=True)
    try:
        if not journal.initialised:
            raise DataError(f"{path}: the journal has no session yet")
        bars = journal.bars("done")
        curves = pd.DataFrame(
            {
                "agent": [b.equity for b in bars],
                **{k: [b.baselines.get(k) for b in bars] for k in (bars[-1].baselines if bars else {})},
            },
            index=pd.DatetimeIndex([pd.Timestamp(b.time) for b in bars], name="time"),
        )
        orders = journal.orders()
        interval = journal.meta("interval") or "1d"
        calendar = journal.meta("calendar") or "XNYS"
        rows = {}
        for name in curves.columns:
            values = curves[name].to_numpy(np.float64)
            if len(values) == 0 or not np.isfinite(values).all():
                continue
            metrics = compute_metrics(values, interval, calendar) if len(values) > 1 else {}
            rows[name] = {
                "start": values[0],
                "end": values[-1],
                "pnl": values[-1] - values[0],
                "return": values[-1] / values[0] - 1.0,
                "max_drawdown": metrics.get("max_drawdown", 0.0),
                "sharpe": metrics.get("sharpe", 0.0),
            }
        last = bars[-1] if bars else None
        return PaperStatus(
            journal=Path(path),
            run_dir=journal.meta("run_dir") or "",
            run_id=journal.meta("run_id") or "",
            broker=journal.meta("broker") or "",
            last_bar=last.time if last else None,
            cash=last.cash if last else None,
            equity=last.equity if last else None,
            positions=last.positions if last else {},
            curves=curves,
            open_orders=[o for o in orders if o.status in OPEN_STATUSES],
            recent_orders=sorted(orders, key=lambda o: (o.bar_time, o.updated_at), reverse=True)[:recent],
            blocks=[e for e in reversed(journal.events()) if e["kind"] in ("risk_block", "reconcile", "resend", "uncertain")][
                :recent
            ],
            pnl=pd.DataFrame.from_dict(rows, orient="index"),
        )
    finally:
        journal.close()


def write_status_png(status: PaperStatus, path: str | Path) -> Path | None:
    """Equity curves (agent and baselines, normalised) and drawdowns; None before two finished bars."""
    frame = status.curves.dropna(axis=1)
    if len(frame) < 2:
        return None
    zeros = np.zeros(len(frame))
    curves = [EquityCurve(name, frame.index.to_numpy(), frame[name].to_numpy(np.float64), zeros, zeros) for name in frame.columns]
    title = f"paper trading {status.run_dir} ({status.broker}): {frame.index[0].date()}..{frame.index[-1].date()}"
    return plot_curves(curves, path, title)
