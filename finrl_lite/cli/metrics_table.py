"""The metrics table `train` and `backtest` print: one row per strategy, sized to fit an 80-column terminal.

Every cell is at most 8 characters (percentages, 2-decimal ratios, money as 1.34k / 2.05M); headers are short
and explained by :func:`metrics_legend`, printed once under the tables. With several seeds a cell holds the mean
and, below it, the half-width of its 95% confidence interval (``±``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from rich import box
from rich.table import Table

__all__ = ["SHOWN", "WIDTH", "format_metric", "metrics_legend", "metrics_table"]


WIDTH = 8
"""The most characters a number takes in the table."""


def _fit(text: str, x: float, suffix: str = "") -> str:
    """``text``, or ``x`` in scientific notation when ``text`` is wider than :data:`WIDTH` (absurd magnitudes)."""
    if len(text) <= WIDTH:
        return text
    wide = f"{x:.1e}{suffix}"
    return wide if len(wide) <= WIDTH else f"{x:.0e}{suffix}"


def _percent(x: float) -> str:
    return _fit(f"{100 * x:.1f}%", 100 * x, "%")


def _ratio(x: float) -> str:
    return _fit(f"{x:.2f}", x)


def _general(x: float) -> str:
    return _fit(f"{x:.3g}", x)


def _money(x: float) -> str:
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return _fit(f"{x / scale:.3g}{suffix}", x)
    return f"{x:.0f}"


SHOWN: dict[str, tuple[str, Callable[[float], str], str]] = {
    "cumulative_return": ("return", _percent, "cumulative return"),
    "sharpe": ("sharpe", _ratio, "annualised Sharpe ratio"),
    "max_drawdown": ("max DD", _percent, "maximum drawdown"),
    "annual_volatility": ("ann. vol", _percent, "annualised volatility"),
    "turnover": ("turnover", _general, "annualised traded value / mean portfolio value"),
    "costs_paid": ("costs", _money, "fees and slippage paid (k = thousand, M = million)"),
}
"""Metric -> (header, formatter, legend text), in column order."""


def format_metric(metric: str, value: float) -> str:
    """``value`` of ``metric`` as its column shows it (``n/a`` when not finite)."""
    return SHOWN[metric][1](value) if math.isfinite(value) else "n/a"


def _cell(metric: str, stat: Mapping[str, Any]) -> str:
    text = format_metric(metric, stat["mean"])
    if stat.get("n", 1) > 1 and math.isfinite(stat["low"]) and math.isfinite(stat["high"]):
        text += "\n±" + format_metric(metric, (stat["high"] - stat["low"]) / 2).lstrip("-")
    return text


def metrics_legend(several_seeds: bool) -> str:
    """What the short headers of :func:`metrics_table` mean (printed once under the tables)."""
    legend = "; ".join(f"{header}: {text}" for header, _, text in SHOWN.values() if header != text)
    return legend + ("; ± half-width of the 95% confidence interval over seeds" if several_seeds else "")


def metrics_table(title: str, split_metrics: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Table:
    """A rich table of one split's metrics, one row per strategy (the agent in bold); see :func:`metrics_legend`.

    Args:
        title: The table's title (split and seeds).
        split_metrics: Strategy -> metric -> ``{"mean", "low", "high", "n"}`` (``aggregate_metrics`` output).
    """
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("strategy", overflow="fold")
    for header, _, _ in SHOWN.values():
        table.add_column(header, justify="right", no_wrap=True)
    for curve, metrics in split_metrics.items():
        cells = [_cell(m, metrics[m]) for m in SHOWN]
        table.add_row(f"[bold]{curve}[/bold]" if curve == "agent" else curve, *cells)
    return table
