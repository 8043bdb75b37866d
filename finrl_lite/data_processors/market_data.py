"""`MarketData`: the one immutable container environments read from."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from finrl_lite.data_processors.splits import DateRange, Splits
from finrl_lite.errors import DataError
from finrl_lite.io import atomic_path

if TYPE_CHECKING:
    import torch

__all__ = ["MarketData", "TorchMarketData"]

logger = logging.getLogger(__name__)

_FORMAT_VERSION = 1
_META_KEY = b"finrl_lite"


class TorchMarketData(NamedTuple):
    """Device tensors of a :class:`MarketData`; environments index into these and never copy them.

    Attributes:
        values: ``[T, N, F]`` per-ticker fields; NaN (no data yet, or indicator warm-up) replaced by 0.
        valid: ``[T, N]`` bool, True where the ticker had a real bar.
        market: ``[T, M]`` per-date series (index, turbulence, vix), NaN replaced by 0.
    """

    values: torch.Tensor
    valid: torch.Tensor
    market: torch.Tensor


@dataclass(frozen=True, eq=False)
class MarketData:
    """Dense market panel: ``values [T, N, F]`` with a ``valid [T, N]`` mask for ragged histories.

    Prices are forward-filled inside a ticker's life and after a delisting (a ticker that is not valid
    on a bar is valued at its last valid price); before a ticker's first bar they are NaN. Indicator
    columns are NaN during their warm-up. Nothing is ever filled backwards.

    Attributes:
        dates: ``[T]`` datetime64[ns] bar timestamps (daily bars are midnight dates, intraday bars UTC).
        tickers: ``N`` ticker symbols, in column order.
        fields: ``F`` per-ticker field names (``open, high, low, close, volume`` first, then features).
        values: ``[T, N, F]`` float64.
        valid: ``[T, N]`` bool.
        market_fields: ``M`` per-date series names (for example ``turbulence``, ``vix``, ``index``).
        market_values: ``[T, M]`` float64.
        interval: bar interval, e.g. ``"1d"`` or ``"1m"``.
        calendar: exchange calendar of the bars (``XNYS``, ``24/7``...), for annualisation.
        warmup: number of leading bars during which some indicator is still NaN.
        splits: named date ranges, if the data was prepared with them.
        source: free-form description of where the data came from (for reports).
    """

    dates: np.ndarray
    tickers: tuple[str, ...]
    fields: tuple[str, ...]
    values: np.ndarray
    valid: np.ndarray
    market_fields: tuple[str, ...] = ()
    market_values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    interval: str = "1d"
    calendar: str = "XNYS"
    warmup: int = 0
    splits: Splits | None = None
    source: str = ""

    def __post_init__(self) -> None:
        t, n = len(self.dates), len(self.tickers)
        if self.market_values.size == 0 and not self.market_fields:
            object.__setattr__(self, "market_values", np.zeros((t, 0)))
        expect = {
            "values": (self.values.shape, (t, n, len(self.fields))),
            "valid": (self.valid.shape, (t, n)),
            "market_values": (self.market_values.shape, (t, len(self.market_fields))),
        }
        for name, (got, want) in expect.items():
            if tuple(got) != want:
                raise DataError(f"MarketData.{name} has shape {tuple(got)}, expected {want}")
        if len(set(self.tickers)) != n:
            raise DataError("MarketData.tickers has duplicates")
        if len(set(self.fields)) != len(self.fields):
            raise DataError("MarketData.fields has duplicates")
        for arr in (self.values, self.valid, self.market_values, self.dates):
            arr.flags.writeable = False

    # ------------------------------------------------------------------ access
    @property
    def num_dates(self) -> int:
        return len(self.dates)

    @property
    def num_tickers(self) -> int:
        return len(self.tickers)

    def field_index(self, name: str) -> int:
        try:
            return self.fields.index(name)
        except ValueError:
            raise DataError(f"field '{name}' not in MarketData; fields are {list(self.fields)}") from None

    def field(self, name: str) -> np.ndarray:
        """``[T, N]`` view of one per-ticker field."""
        return self.values[:, :, self.field_index(name)]

    def market(self, name: str) -> np.ndarray:
        """``[T]`` view of one per-date series."""
        try:
            return self.market_values[:, self.market_fields.index(name)]
        except ValueError:
            raise DataError(f"market series '{name}' not in MarketData; series are {list(self.market_fields)}") from None

    @property
    def feature_fields(self) -> tuple[str, ...]:
        """Per-ticker fields beyond OHLCV (indicators)."""
        return tuple(f for f in self.fields if f not in ("open", "high", "low", "close", "volume"))

    def to_torch(self, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> TorchMarketData:
        """Move the panel to ``device`` once (NaN replaced by 0; ``valid`` tells real from filled)."""
        import torch

        dtype = dtype or torch.float64
        values = torch.from_numpy(np.nan_to_num(self.values, nan=0.0)).to(device=device, dtype=dtype)
        market = torch.from_numpy(np.nan_to_num(self.market_values, nan=0.0)).to(device=device, dtype=dtype)
        valid = torch.from_numpy(self.valid.copy()).to(device=device)
        return TorchMarketData(values=values, valid=valid, market=market)

    # ------------------------------------------------------------------ slicing
    def slice(self, split: str | DateRange | tuple[object, object]) -> MarketData:
        """Bars of one split (by name, when the data carries :attr:`splits`) or of a date range.

        The slice keeps ``warmup`` only for bars that are still in the warm-up.
        """
        if isinstance(split, str):
            if self.splits is None:
                raise DataError(f"cannot slice split '{split}': this MarketData has no splits")
            rng = self.splits[split]
        elif isinstance(split, DateRange):
            rng = split
        else:
            rng = DateRange.parse("slice", *split)
        idx = np.flatnonzero(rng.mask(self.dates))
        if idx.size == 0:
            raise DataError(f"no bars inside {rng} (data covers {self.date_range_text()})")
        return self.bars(int(idx[0]), int(idx[-1]) + 1)

    def bars(self, start: int, stop: int) -> MarketData:
        """Bars ``start`` to ``stop - 1`` by position (no splits; ``warmup`` kept for bars still in the warm-up)."""
        if not 0 <= start < stop <= self.num_dates:
            raise DataError(f"bars {start}..{stop - 1} are not inside the data's {self.num_dates} bars")
        return replace(
            self,
            dates=self.dates[start:stop].copy(),
            values=self.values[start:stop].copy(),
            valid=self.valid[start:stop].copy(),
            market_values=self.market_values[start:stop].copy(),
            warmup=max(0, self.warmup - start),
            splits=None,
        )

    def select_tickers(self, tickers: list[str]) -> MarketData:
        missing = [t for t in tickers if t not in self.tickers]
        if missing:
            raise DataError(f"unknown tickers {missing}; MarketData has {len(self.tickers)} tickers")
        cols = [self.tickers.index(t) for t in tickers]
        return replace(self, tickers=tuple(tickers), values=self.values[:, cols].copy(), valid=self.valid[:, cols].copy())

    # ------------------------------------------------------------------ description
    def date_range_text(self) -> str:
        if self.num_dates == 0:
            return "empty"
        first, last = pd.Timestamp(self.dates[0]), pd.Timestamp(self.dates[-1])
        if first == first.normalize() and last == last.normalize():
            return f"{first.date()}..{last.date()}"
        return f"{first}..{last}"

    def fingerprint(self) -> str:
        """SHA-256 of the panel's content (dates, tickers, fields, values, mask); stable across runs."""
        h = hashlib.sha256()
        h.update(json.dumps([list(self.tickers), list(self.fields), list(self.market_fields), self.interval]).encode())
        for arr in (self.dates.astype("datetime64[ns]"), self.values, self.valid, self.market_values):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def summary(self) -> dict[str, object]:
        """Numbers a person wants to see after preparing data."""
        return {
            "tickers": self.num_tickers,
            "dates": self.num_dates,
            "start": str(pd.Timestamp(self.dates[0])) if self.num_dates else None,
            "end": str(pd.Timestamp(self.dates[-1])) if self.num_dates else None,
            "interval": self.interval,
            "fields": list(self.fields),
            "market_fields": list(self.market_fields),
            "valid_fraction": float(self.valid.mean()) if self.valid.size else 0.0,
            "warmup": self.warmup,
            "splits": {k: str(v) for k, v in self.splits.items()} if self.splits else {},
        }

    # ------------------------------------------------------------------ frames and files
    def to_frame(self) -> pd.DataFrame:
        """Long DataFrame ``date, tic, valid, <fields>, <market fields>`` (market series repeated per ticker)."""
        t, n = self.num_dates, self.num_tickers
        frame = pd.DataFrame(
            {
                "date": np.repeat(self.dates, n),
                "tic": np.tile(np.asarray(self.tickers, dtype=object), t),
                "valid": self.valid.reshape(-1),
            }
        )
        flat = self.values.reshape(t * n, len(self.fields))
        for j, name in enumerate(self.fields):
            frame[name] = flat[:, j]
        for j, name in enumerate(self.market_fields):
            frame[name] = np.repeat(self.market_values[:, j], n)
        return frame

    def save(self, path: str | Path) -> Path:
        """Write to a parquet file atomically (temporary file, then rename)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        table = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
        meta = {
            "format": _FORMAT_VERSION,
            "tickers": list(self.tickers),
            "fields": list(self.fields),
            "market_fields": list(self.market_fields),
            "interval": self.interval,
            "calendar": self.calendar,
            "warmup": self.warmup,
            "splits": self.splits.to_dict() if self.splits else None,
            "source": self.source,
        }
        schema_meta = dict(table.schema.metadata or {})
        schema_meta[_META_KEY] = json.dumps(meta).encode()
        table = table.replace_schema_metadata(schema_meta)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> MarketData:
        """Read a file written by :meth:`save`."""
        import pyarrow.parquet as pq

        path = Path(path)
        if not path.exists():
            raise DataError(f"{path}: no such MarketData file")
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            raise DataError(f"{path}: not a readable parquet file ({exc})") from exc
        raw = (table.schema.metadata or {}).get(_META_KEY)
        if raw is None:
            raise DataError(f"{path}: parquet file was not written by MarketData.save (no finrl_lite metadata)")
        meta = json.loads(raw)
        frame = table.to_pandas()
        tickers, fields, mfields = meta["tickers"], meta["fields"], meta["market_fields"]
        n = len(tickers)
        t = len(frame) // n if n else 0
        values = (
            np.stack([frame[f].to_numpy(np.float64).reshape(t, n) for f in fields], axis=-1) if fields else np.zeros((t, n, 0))
        )
        market = (
            np.stack([frame[f].to_numpy(np.float64).reshape(t, n)[:, 0] for f in mfields], axis=-1)
            if mfields
            else np.zeros((t, 0))
        )
        return cls(
            dates=frame["date"].to_numpy("datetime64[ns]").reshape(t, n)[:, 0].copy(),
            tickers=tuple(tickers),
            fields=tuple(fields),
            values=values,
            valid=frame["valid"].to_numpy(bool).reshape(t, n).copy(),
            market_fields=tuple(mfields),
            market_values=market,
            interval=meta["interval"],
            calendar=meta.get("calendar", "XNYS"),
            warmup=int(meta["warmup"]),
            splits=Splits(meta["splits"]) if meta.get("splits") else None,
            source=meta.get("source", ""),
        )
