"""Cleaning: duplicates, impossible bars, calendar alignment and forward filling (never backward).

The output is a full grid (every calendar bar x every ticker) in long format with a ``valid`` column:
a cell is valid when the ticker had a real bar there. Prices of invalid cells are forward-filled from
the ticker's last real bar (open = high = low = close = last close, volume = 0); before a ticker's
first bar they stay NaN.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from finrl_lite.data_processors.calendars import bar_grid
from finrl_lite.data_processors.sources.base import PRICE_COLUMNS, REQUIRED_COLUMNS
from finrl_lite.errors import DataError

__all__ = ["CleaningReport", "clean_frame", "find_bad_rows"]

logger = logging.getLogger(__name__)

_MAX_LISTED = 10


@dataclass
class CleaningReport:
    """What cleaning did, for the summary a person reads.

    Attributes:
        dropped: dropped rows as ``(tic, date, reason)``.
        exact_duplicates: identical rows removed.
        filled_cells: grid cells without a real bar inside a ticker's life (forward-filled, not valid).
        calendar: the calendar the grid follows.
        jumps: one-bar close moves beyond ``max_price_jump`` that lasted (kept), as ``(tic, date, factor)``: spin-offs
            and unadjusted splits look like this, and a person should check them.
    """

    dropped: list[tuple[str, str, str]] = field(default_factory=list)
    exact_duplicates: int = 0
    filled_cells: int = 0
    calendar: str = ""
    jumps: list[tuple[str, str, float]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, _, reason in self.dropped:
            out[reason] = out.get(reason, 0) + 1
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "calendar": self.calendar,
            "exact_duplicates": self.exact_duplicates,
            "filled_cells": self.filled_cells,
            "dropped_counts": self.counts(),
            "dropped": [{"tic": t, "date": d, "reason": r} for t, d, r in self.dropped],
            "price_jumps_kept": [{"tic": t, "date": d, "factor": f} for t, d, f in self.jumps],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> CleaningReport:
        dropped = [(d["tic"], d["date"], d["reason"]) for d in raw.get("dropped", [])]  # type: ignore[index,union-attr]
        jumps = [(d["tic"], d["date"], float(d["factor"])) for d in raw.get("price_jumps_kept", [])]  # type: ignore[index,union-attr]
        return cls(
            dropped,  # type: ignore[arg-type]
            int(raw.get("exact_duplicates", 0)),  # type: ignore[arg-type]
            int(raw.get("filled_cells", 0)),  # type: ignore[arg-type]
            str(raw.get("calendar", "")),
            jumps,  # type: ignore[arg-type]
        )


def _rows_text(df: pd.DataFrame, mask: pd.Series, reason: str | pd.Series) -> str:
    rows = df.loc[mask]
    reasons = reason[mask] if isinstance(reason, pd.Series) else pd.Series(reason, index=rows.index)
    parts = [f"{r.tic} {pd.Timestamp(r.date)} ({reasons[i]})" for i, r in rows.head(_MAX_LISTED).iterrows()]
    more = f" and {len(rows) - _MAX_LISTED} more" if len(rows) > _MAX_LISTED else ""
    return "; ".join(parts) + more


def find_bad_rows(df: pd.DataFrame) -> pd.Series:
    """Reason string for each impossible bar ('' where the bar is fine).

    Impossible: a NaN price, a non-positive price, high < low, open or close outside [low, high],
    a negative or NaN volume.
    """
    reasons = pd.Series("", index=df.index, dtype=object)

    def mark(mask: pd.Series, reason: str) -> None:
        mask = mask.fillna(False).astype(bool) & (reasons == "")
        reasons[mask] = reason

    prices = df[list(PRICE_COLUMNS)]
    mark(prices.isna().any(axis=1), "NaN price")
    mark((prices <= 0).any(axis=1), "non-positive price")
    mark(df["high"] < df["low"], "high < low")
    mark((df["close"] < df["low"]) | (df["close"] > df["high"]), "close outside [low, high]")
    mark((df["open"] < df["low"]) | (df["open"] > df["high"]), "open outside [low, high]")
    mark(df["volume"].isna(), "NaN volume")
    mark(df["volume"] < 0, "negative volume")
    return reasons


def price_jumps(df: pd.DataFrame, factor: float) -> tuple[pd.Series, pd.Series, pd.Series]:
    """One-bar close moves of more than ``factor`` (up, or down to less than ``1 / factor``) between a ticker's rows.

    Returns:
        ``(spike, jump, ratio)`` over ``df``'s rows: boolean masks and each close over its ticker's previous close. A
        spike moves away from both the previous and the next close of its ticker (up from both, or down from both): a
        bad print that the next bar takes back. A jump moves from the previous close and stays (spin-offs, unadjusted
        splits).
    """
    order = df.sort_values(["tic", "date"], kind="stable")
    by_tic = order.groupby("tic", sort=False)["close"]
    up_prev = order["close"] / by_tic.shift(1)
    up_next = order["close"] / by_tic.shift(-1)
    big_up_prev, big_down_prev = up_prev > factor, up_prev < 1.0 / factor
    spike = (big_up_prev & (up_next > factor)) | (big_down_prev & (up_next < 1.0 / factor))
    jump = (big_up_prev | big_down_prev) & ~spike
    return spike.reindex(df.index), jump.reindex(df.index), up_prev.reindex(df.index)


def _jump_rows(df: pd.DataFrame, rows: pd.Series, ratio: pd.Series) -> list[tuple[str, object, float]]:
    """``(tic, date, ratio)`` of the rows marked in ``rows``, by date."""
    marked = df.loc[rows].assign(factor=ratio[rows]).sort_values(["date", "tic"], kind="stable")
    return [(r.tic, r.date, float(r.factor)) for r in marked.itertuples()]


def _drop_bad_rows(df: pd.DataFrame, reasons: pd.Series, on_bad_rows: str, report: CleaningReport, origin: str) -> pd.DataFrame:
    """``df`` without the rows that have a reason (reported), or a :class:`DataError` listing them (``error``)."""
    bad = reasons != ""
    if bad.any():
        text = _rows_text(df, bad, reasons)
        if on_bad_rows == "error":
            raise DataError(f"{origin}: {int(bad.sum())} impossible bar(s): {text}")
        logger.warning("%s: dropping %d impossible bar(s): %s", origin, int(bad.sum()), text)
        report.dropped += [(r.tic, str(pd.Timestamp(r.date)), reasons[i]) for i, r in df.loc[bad].iterrows()]
        df = df.loc[~bad]
    if df.empty:
        raise DataError(f"{origin}: no rows left after dropping impossible bars (empty result)")
    return df


def _off_calendar_text(df: pd.DataFrame, off: pd.Series, calendar: str, interval: str, origin: str) -> str:
    """The error when most bars are not bars of the calendar, with a sample and the calendar's bars on its day."""
    sample = df.loc[off].head(3)
    shown = ", ".join(f"{r.tic} {pd.Timestamp(r.date)}" for r in sample.itertuples())
    first = pd.Timestamp(sample["date"].iloc[0])
    same_day = bar_grid(calendar, first.normalize(), first.normalize(), interval)  # the whole day's bars
    near = (
        f"the calendar's bars that day run {same_day[0]}..{same_day[-1]}"
        if len(same_day)
        else f"{first.date()} is no session of {calendar}"
    )
    intraday = first != first.normalize() or len(same_day) > 1
    times = " (UTC)" if intraday else ""
    return (
        f"{origin}: {int(off.sum())} of {len(df)} bars are not bars of the {calendar} calendar at interval {interval}"
        f"{times}, e.g. {shown}; {near}. A timezone or interval mismatch is the likely cause: naive intraday timestamps "
        f"are read in data.timezone (the calendar's timezone by default), so set it to the file's timezone, or check "
        f"data.interval and cleaning.calendar"
    )


def clean_frame(
    df: pd.DataFrame,
    calendar: str = "XNYS",
    interval: str = "1d",
    on_bad_rows: Literal["drop", "error"] = "drop",
    align_to_calendar: bool = True,
    origin: str = "data",
    max_price_jump: float | None = 1.75,
) -> tuple[pd.DataFrame, CleaningReport]:
    """Clean a long frame and align it to a full grid with a ``valid`` column.

    Args:
        df: long frame with at least ``date, tic, open, high, low, close, volume``.
        calendar: exchange_calendars name for the grid of bars.
        interval: bar interval of the data.
        on_bad_rows: ``drop`` impossible bars (and report them) or raise.
        align_to_calendar: reindex on the calendar's bars; otherwise on the dates present in the data.
        origin: what to name in messages.
        max_price_jump: a close more than this factor away from both neighbouring closes of its ticker is an impossible
            bar (a bad print, see :func:`price_jumps`); a lasting move beyond it is kept and listed in
            ``report.jumps``. None: no check.

    Raises:
        DataError: a required column is missing, (date, tic) duplicates with different values,
            impossible bars with ``on_bad_rows="error"``, most bars off the calendar (a timezone or interval
            mismatch), or nothing left.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{origin}: missing required column(s) {missing}; found {list(df.columns)}")
    if df.empty:
        raise DataError(f"{origin}: no rows to clean (empty result)")
    report = CleaningReport(calendar=calendar if align_to_calendar else "dates present in the data")
    df = df.copy()
    df["date"] = pd.to_datetime(df["date"])
    if getattr(df["date"].dt, "tz", None) is not None:
        df["date"] = df["date"].dt.tz_convert("UTC").dt.tz_localize(None)

    # 1. Duplicates: identical rows are dropped; same (date, tic) with other values is an error.
    before = len(df)
    df = df.drop_duplicates()
    report.exact_duplicates = before - len(df)
    clash = df.duplicated(["date", "tic"], keep=False)
    if clash.any():
        pairs = df.loc[clash, ["tic", "date"]].drop_duplicates()
        listed = "; ".join(f"{r.tic} {pd.Timestamp(r.date)}" for r in pairs.head(_MAX_LISTED).itertuples())
        more = f" and {len(pairs) - _MAX_LISTED} more" if len(pairs) > _MAX_LISTED else ""
        raise DataError(f"{origin}: {len(pairs)} (date, tic) pair(s) appear more than once with different values: {listed}{more}")

    # 2. Impossible bars.
    df = _drop_bad_rows(df, find_bad_rows(df), on_bad_rows, report, origin)

    # 3. Calendar alignment.
    if align_to_calendar:
        grid = bar_grid(calendar, df["date"].min(), df["date"].max(), interval)
        off = ~df["date"].isin(grid)
        if off.sum() * 2 > len(df):
            raise DataError(_off_calendar_text(df, off, calendar, interval, origin))
        if off.any():
            logger.warning("%s: dropping %d bar(s) that are not bars of %s", origin, int(off.sum()), calendar)
            reason = f"not a {calendar} bar"
            report.dropped += [(r.tic, str(pd.Timestamp(r.date)), reason) for r in df.loc[off].itertuples()]
            df = df.loc[~off]
    else:
        grid = pd.DatetimeIndex(np.sort(df["date"].unique()))
    if df.empty or len(grid) == 0:
        raise DataError(f"{origin}: no rows on the {calendar} calendar (empty result)")

    # 3b. Bad prints (a close that the next bar takes back), then lasting jumps (kept, reported).
    if max_price_jump is not None:
        spike, _, _ = price_jumps(df, max_price_jump)
        reason = f"price spike beyond x{max_price_jump:g} from both neighbouring closes"
        df = _drop_bad_rows(df, pd.Series(np.where(spike, reason, ""), index=df.index, dtype=object), on_bad_rows, report, origin)
        _, jump, ratio = price_jumps(df, max_price_jump)  # again: the spikes' neighbours have new neighbours now
        report.jumps = [(t, str(pd.Timestamp(d)), f) for t, d, f in _jump_rows(df, jump, ratio)]
        if report.jumps:
            listed = "; ".join(f"{t} {d} (x{f:.3g})" for t, d, f in report.jumps[:_MAX_LISTED])
            more = f" and {len(report.jumps) - _MAX_LISTED} more" if len(report.jumps) > _MAX_LISTED else ""
            logger.warning(
                "%s: kept %d one-bar close move(s) beyond x%g that did not revert (spin-offs, unadjusted splits?): %s%s",
                *(origin, len(report.jumps), max_price_jump, listed, more),
            )

    # 4. Full grid, forward fill only.
    tickers = sorted(df["tic"].unique())
    full = pd.MultiIndex.from_product([grid, tickers], names=["date", "tic"])
    out = df.set_index(["date", "tic"]).reindex(full)
    valid = out["close"].notna()
    by_tic = out.groupby(level="tic", sort=False)
    close = by_tic["close"].ffill()
    started = close.notna()
    report.filled_cells = int((started & ~valid).sum())
    for col in ("open", "high", "low"):
        out[col] = out[col].where(valid, close)
    out["close"] = close
    out["volume"] = out["volume"].where(valid, np.where(started, 0.0, np.nan))
    extras = [c for c in out.columns if c not in REQUIRED_COLUMNS]
    if extras:
        out[extras] = by_tic[extras].ffill()
    out["valid"] = valid.to_numpy()
    out = out.reset_index()
    logger.info(
        "%s: cleaned %d tickers x %d bars; %d filled cells, %d dropped rows",
        origin,
        len(tickers),
        len(grid),
        report.filled_cells,
        len(report.dropped),
    )
    return out, report
