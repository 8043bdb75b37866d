"""Calibration of the M-ELO reference-midpoint process from LOBSTER level-1 data.

The simulator's defaults (:data:`DEFAULT_CALIBRATION`) are the numbers :func:`calibrate_lobster` fits on
the public LOBSTER sample of 2012-06-21 (AAPL, AMZN, GOOG, 09:30-16:00), so the package works without
the data. What is fitted, per 30-second period (780 periods a day):

* **Midpoint-move rate** (moves per period, per symbol): every change of the NBBO midpoint counts as one
  move. Fitted: AAPL 82.5, AMZN 35.3, GOOG 30.9 moves per 30 s on average.
* **Move size** (bps): mean absolute midpoint change over the median midpoint. Fitted: AAPL 0.31, AMZN
  0.67, GOOG 0.64 bps. The simulator moves the midpoint by plus or minus one such "tick".
* **Intraday U-shape**: the move count of each period, divided by the symbol's daily mean, is fitted by
  least squares to ``u(x) = c0 + c1 * (2x - 1)^2`` with ``x`` the fraction of the day elapsed,
  normalised to mean 1 over the day. Fitted: ``c0 = 0.613``, ``c1 = 1.162`` (1.77x the daily mean at
  the open and close, 0.61x at midday, so about 2.9x the midday rate). The same shape scales the M-ELO order arrivals.
* **Regimes** (calm, normal, volatile): the ratio of each period's move count to ``mean * u(x)`` is
  smoothed with a centred 5-period rolling median and labelled calm below 0.75, volatile above 1.33,
  normal otherwise. Fitted: rate multipliers 0.68 / 1.09 / 1.93 (mean raw ratio in each class),
  stationary shares 0.47 / 0.39 / 0.14, and a redraw probability of 0.32 per period (the label
  changes in 19% of consecutive periods: a regime lasts about 2.5 minutes on average). This is a
  transparent heuristic labelling, not a hidden-Markov fit.
* **Spreads** (bps): median quoted spread over the median midpoint per symbol (AAPL 2.6, AMZN 5.8,
  GOOG 5.1), and per regime as a multiplier of it (0.93 / 1.00 / 1.08).
* **Hidden executions** (reference only): hidden (non-displayed) executions per period and symbol from
  the trades file, the closest public proxy of midpoint liquidity: AAPL 14.5, AMZN 3.1, GOOG 5.0.

The M-ELO order flow itself (uninformed and informed M-ELO orders, lifetimes, lead times) is not
observable in public data; those parameters live in :class:`~finrl_lite.envs.melo.config.MeloSimConfig`
as documented assumptions.

Run ``python -m finrl_lite.envs.melo.calibration ../shared/data`` to refit and print the numbers.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from finrl_lite.errors import DataError

__all__ = ["MeloCalibration", "SymbolCalibration", "DEFAULT_CALIBRATION", "calibrate_lobster"]

logger = logging.getLogger(__name__)

PERIOD_SECONDS = 30.0
PERIODS_PER_DAY = 780
REGIMES = ("calm", "normal", "volatile")


@dataclass(frozen=True)
class SymbolCalibration:
    """Fitted midpoint statistics of one symbol.

    Attributes:
        symbol: Ticker.
        moves_per_period: Mean number of midpoint moves per 30-second period.
        move_bps: Mean absolute midpoint move, in bps of the midpoint.
        spread_bps: Median quoted spread, in bps of the midpoint.
        hidden_executions_per_period: Hidden executions per period (reference, not used by the simulator).
    """

    symbol: str
    moves_per_period: float
    move_bps: float
    spread_bps: float
    hidden_executions_per_period: float = 0.0


@dataclass(frozen=True)
class MeloCalibration:
    """Everything the simulator takes from data.

    Attributes:
        symbols: Per-symbol fits; simulated symbols cycle through them.
        u_shape: ``(c0, c1)`` of ``u(x) = c0 + c1 (2x - 1)^2`` (mean 1 over the day).
        regime_rate: Midpoint-move rate multiplier per regime (calm, normal, volatile).
        regime_share: Stationary probability of each regime.
        regime_switch_prob: Probability per period that the regime is redrawn from ``regime_share``.
        regime_spread: Spread multiplier per regime.
    """

    symbols: tuple[SymbolCalibration, ...]
    u_shape: tuple[float, float]
    regime_rate: tuple[float, float, float]
    regime_share: tuple[float, float, float]
    regime_switch_prob: float
    regime_spread: tuple[float, float, float] = field(default=(1.0, 1.0, 1.0))

    def to_dict(self) -> dict[str, object]:
        """Plain-dict form (JSON-ready)."""
        return asdict(self)

    def markdown(self) -> str:
        """The fitted numbers as a markdown table (for reports and the tutorial)."""
        lines = ["| symbol | moves / 30 s | move (bps) | spread (bps) | hidden exec / 30 s |", "|---|---|---|---|---|"]
        for s in self.symbols:
            lines.append(
                f"| {s.symbol} | {s.moves_per_period:.1f} | {s.move_bps:.2f} | {s.spread_bps:.2f} "
                f"| {s.hidden_executions_per_period:.1f} |"
            )
        c0, c1 = self.u_shape
        lines.append("")
        lines.append(f"U-shape u(x) = {c0:.3f} + {c1:.3f} (2x-1)^2 (open/close {c0 + c1:.2f}x, midday {c0:.2f}x)")
        rr = ", ".join(f"{n} {r:.2f}" for n, r in zip(REGIMES, self.regime_rate, strict=False))
        rs = ", ".join(f"{n} {r:.2f}" for n, r in zip(REGIMES, self.regime_share, strict=False))
        sp = ", ".join(f"{n} {r:.2f}" for n, r in zip(REGIMES, self.regime_spread, strict=False))
        lines.append(f"regime rate multipliers: {rr}; shares: {rs}; spread multipliers: {sp}")
        lines.append(f"regime switch probability per period: {self.regime_switch_prob:.3f}")
        return "\n".join(lines)


DEFAULT_CALIBRATION = MeloCalibration(
    symbols=(
        SymbolCalibration("AAPL", 82.50, 0.3082, 2.571, 14.53),
        SymbolCalibration("AMZN", 35.33, 0.6695, 5.839, 3.13),
        SymbolCalibration("GOOG", 30.88, 0.6390, 5.090, 5.02),
    ),
    u_shape=(0.6128, 1.1617),
    regime_rate=(0.680, 1.090, 1.931),
    regime_share=(0.470, 0.394, 0.136),
    regime_switch_prob=0.324,
    regime_spread=(0.933, 1.000, 1.077),
)
"""Fitted on lobster_l1_events_2012-06-21 / lobster_trades_2012-06-21 (see the module docstring)."""

CALM_BELOW = 0.75
VOLATILE_ABOVE = 1.33


def _period_index(ts: object) -> np.ndarray:
    import pandas as pd

    t = pd.to_datetime(ts)
    seconds = (t - t.dt.normalize()).dt.total_seconds().to_numpy() - 9.5 * 3600.0
    return np.floor(seconds / PERIOD_SECONDS).astype(np.int64)


def calibrate_lobster(events_path: str | Path, trades_path: str | Path | None = None) -> MeloCalibration:
    """Fit the midpoint process (rates, move size, U-shape, regimes, spreads) to LOBSTER level-1 events.

    Args:
        events_path: ``lobster_l1_events_*.csv.gz`` (columns timestamp, tic, ask_price_1, bid_price_1, ...).
        trades_path: Optional ``lobster_trades_*.csv.gz``; gives the hidden-execution reference rate.

    Returns:
        The fitted :class:`MeloCalibration`.

    Raises:
        DataError: a file is missing or lacks the needed columns.
    """
    import pandas as pd

    events_path = Path(events_path)
    if not events_path.is_file():
        raise DataError(f"{events_path}: LOBSTER events file not found")
    ev = pd.read_csv(events_path)
    need = {"timestamp", "tic", "ask_price_1", "bid_price_1"}
    if missing := need - set(ev.columns):
        raise DataError(f"{events_path}: missing columns {sorted(missing)}")
    ev["period"] = _period_index(ev["timestamp"])
    ev = ev[(ev["period"] >= 0) & (ev["period"] < PERIODS_PER_DAY)]
    ev = ev[(ev["ask_price_1"] > ev["bid_price_1"]) & (ev["bid_price_1"] > 0)]

    hidden: dict[str, float] = {}
    if trades_path is not None and Path(trades_path).is_file():
        tr = pd.read_csv(trades_path)
        if {"tic", "visible"} <= set(tr.columns):
            hidden = (tr[tr["visible"] == 0].groupby("tic").size() / PERIODS_PER_DAY).to_dict()

    x = (np.arange(PERIODS_PER_DAY) + 0.5) / PERIODS_PER_DAY
    basis = np.stack([np.ones_like(x), (2 * x - 1) ** 2], axis=1)
    symbols: list[SymbolCalibration] = []
    ratios, spreads, counts_by_tic = [], [], []
    for tic, g in ev.groupby("tic", sort=True):
        mid = ((g["ask_price_1"] + g["bid_price_1"]) / 2).to_numpy()
        spread = (g["ask_price_1"] - g["bid_price_1"]).to_numpy()
        dmid = np.diff(mid)
        moved = np.flatnonzero(dmid != 0) + 1
        mid_level = float(np.median(mid))
        counts = np.bincount(g["period"].to_numpy()[moved], minlength=PERIODS_PER_DAY).astype(float)
        symbols.append(
            SymbolCalibration(
                symbol=str(tic),
                moves_per_period=float(counts.mean()),
                move_bps=float(np.abs(dmid[moved - 1]).mean() / mid_level * 1e4),
                spread_bps=float(np.median(spread) / mid_level * 1e4),
                hidden_executions_per_period=float(hidden.get(tic, 0.0)),
            )
        )
        counts_by_tic.append(counts / counts.mean())
        sp = pd.Series(spread / mid_level * 1e4).groupby(g["period"].to_numpy()).median()
        spreads.append(sp.reindex(range(PERIODS_PER_DAY)).to_numpy() / symbols[-1].spread_bps)
    if not symbols:
        raise DataError(f"{events_path}: no usable events between 09:30 and 16:00")
    norm = np.stack(counts_by_tic)  # [symbols, periods]
    coef, *_ = np.linalg.lstsq(np.tile(basis, (len(symbols), 1)), norm.reshape(-1), rcond=None)
    coef = coef / (basis @ coef).mean()
    u = basis @ coef
    labels_all, ratio_all, spread_all, switches, pairs = [], [], [], 0, 0
    for r_raw, sp in zip(norm, spreads, strict=False):
        ratio = r_raw / u
        smooth = pd.Series(ratio).rolling(5, center=True, min_periods=1).median().to_numpy()
        labels = np.where(smooth < CALM_BELOW, 0, np.where(smooth > VOLATILE_ABOVE, 2, 1))
        switches += int((labels[1:] != labels[:-1]).sum())
        pairs += len(labels) - 1
        labels_all.append(labels)
        ratio_all.append(ratio)
        spread_all.append(sp)
        ratios.append(ratio)
    labels = np.concatenate(labels_all)
    ratio = np.concatenate(ratio_all)
    spread_rel = np.concatenate(spread_all)
    rate = tuple(float(ratio[labels == k].mean()) if (labels == k).any() else float("nan") for k in range(3))
    share = tuple(float((labels == k).mean()) for k in range(3))
    spread_mult = tuple(float(np.nanmedian(spread_rel[labels == k])) if (labels == k).any() else 1.0 for k in range(3))
    # A redraw from the stationary law keeps the regime with probability share[k]; convert observed switches.
    p_change = switches / max(pairs, 1)
    keep_same = float(sum(s * s for s in share))
    switch_prob = min(1.0, p_change / max(1.0 - keep_same, 1e-9))
    cal = MeloCalibration(
        symbols=tuple(symbols),
        u_shape=(float(coef[0]), float(coef[1])),
        regime_rate=rate,  # type: ignore[arg-type]
        regime_share=share,  # type: ignore[arg-type]
        regime_switch_prob=float(switch_prob),
        regime_spread=spread_mult,  # type: ignore[arg-type]
    )
    logger.info("M-ELO calibration from %s:\n%s", events_path, cal.markdown())
    return cal


if __name__ == "__main__":  # pragma: no cover
    import sys

    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    result = calibrate_lobster(folder / "lobster_l1_events_2012-06-21.csv.gz", folder / "lobster_trades_2012-06-21.csv.gz")
    sys.stdout.write(result.markdown() + "\n")
