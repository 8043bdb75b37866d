"""Conversions between the long frame (``date, tic, ...``) and wide ``[T, N]`` arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from finrl_lite.errors import DataError

__all__ = ["to_wide", "wide_to_columns"]


def to_wide(df: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, list[str], dict[str, np.ndarray]]:
    """Pivot ``columns`` of a long frame to ``[T, N]`` arrays (missing cells NaN).

    Returns:
        (dates [T], tickers [N], {column: array [T, N]}), dates and tickers sorted.
    """
    if df.duplicated(["date", "tic"]).any():
        raise DataError("frame has duplicated (date, tic) rows; clean it first")
    dates = np.sort(df["date"].unique())
    tickers = sorted(df["tic"].unique())
    rows = np.searchsorted(dates, df["date"].to_numpy())
    cols = np.searchsorted(np.asarray(tickers, dtype=object), df["tic"].to_numpy())
    out: dict[str, np.ndarray] = {}
    for name in columns:
        arr = np.full((len(dates), len(tickers)), np.nan)
        arr[rows, cols] = df[name].to_numpy(np.float64)
        out[name] = arr
    return dates, tickers, out


def wide_to_columns(df: pd.DataFrame, dates: np.ndarray, tickers: Sequence[str], arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """Add ``[T, N]`` arrays back to the rows of ``df`` (matching each row's date and tic)."""
    rows = np.searchsorted(dates, df["date"].to_numpy())
    cols = np.searchsorted(np.asarray(tickers, dtype=object), df["tic"].to_numpy())
    df = df.copy()
    for name, arr in arrays.items():
        df[name] = arr[rows, cols]
    return df
