"""Reports: equity-curve and drawdown plots (PNG), CSV of curves, and metric tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finrl_lite.io import atomic_path
from finrl_lite.train.backtest import EquityCurve

__all__ = ["curves_frame", "plot_curves", "write_curves_csv", "write_png"]


def curves_frame(curves: Sequence[EquityCurve]) -> pd.DataFrame:
    """One column of values per curve, indexed by date."""
    return pd.concat([pd.Series(c.values, index=pd.DatetimeIndex(c.dates), name=c.name) for c in curves], axis=1, sort=True)


def write_curves_csv(curves: Sequence[EquityCurve], path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        curves_frame(curves).rename_axis("date").to_csv(tmp)
    return Path(path)


def plot_curves(curves: Sequence[EquityCurve], path: str | Path, title: str) -> Path:
    """Two panels: equity curves (normalised to 1 at the start) and drawdowns, the agent drawn on top.

    Drawn on a bare ``Figure`` (no pyplot): the process's matplotlib backend is left alone, so a notebook keeps
    showing its own plots inline after a training run.
    """
    from matplotlib.figure import Figure

    frame = curves_frame(curves)
    fig = Figure(figsize=(10, 7))
    ax_eq, ax_dd = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for name in frame.columns:
        series = frame[name].dropna()
        norm = series / series.iloc[0]
        width, z = (2.2, 3) if name == "agent" else (1.0, 2)
        ax_eq.plot(norm.index, norm.to_numpy(), label=name, linewidth=width, zorder=z)
        drawdown = series / np.maximum.accumulate(series.to_numpy()) - 1.0
        ax_dd.plot(drawdown.index, 100 * drawdown.to_numpy(), linewidth=width, zorder=z)
    ax_eq.set_ylabel("value (start = 1)")
    ax_eq.set_title(title)
    ax_eq.legend(loc="best", fontsize=8)
    ax_eq.grid(alpha=0.3)
    ax_dd.set_ylabel("drawdown (%)")
    ax_dd.grid(alpha=0.3)
    fig.autofmt_xdate()
    return write_png(fig, path)


def write_png(fig: Any, path: str | Path) -> Path:
    """Lay out ``fig`` (a bare ``matplotlib.figure.Figure``: no pyplot, so the process's backend is left alone and a
    notebook keeps showing its own plots inline) and write it to ``path`` as a PNG, atomically."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return Path(path)
