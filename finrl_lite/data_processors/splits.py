"""Named, non-overlapping date ranges (train, validation, test, trade)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from finrl_lite.errors import DataError

__all__ = ["DateRange", "Splits"]

_SLACK = pd.Timedelta(days=7)


@dataclass(frozen=True)
class DateRange:
    """An inclusive date range ``[start, end]``."""

    start: pd.Timestamp
    end: pd.Timestamp

    @classmethod
    def parse(cls, name: str, start: object, end: object) -> DateRange:
        try:
            s, e = pd.Timestamp(start), pd.Timestamp(end)
        except (ValueError, TypeError) as exc:
            raise DataError(f"split '{name}': cannot parse dates {start!r}..{end!r}: {exc}") from exc
        if s > e:
            raise DataError(f"split '{name}': start {s.date()} is after end {e.date()}")
        return cls(s, e)

    def overlaps(self, other: DateRange) -> bool:
        return self.start <= other.end and other.start <= self.end

    def mask(self, dates: np.ndarray) -> np.ndarray:
        """Boolean mask of ``dates`` (datetime64 array) that fall inside the range."""
        d = pd.DatetimeIndex(dates)
        if self.end == self.end.normalize():  # a date-only end includes that whole day's bars
            return np.asarray((d >= self.start) & (d < self.end + pd.Timedelta(days=1)))
        return np.asarray((d >= self.start) & (d <= self.end))

    def __str__(self) -> str:
        return f"{self.start.date()}..{self.end.date()}"


class Splits(Mapping[str, DateRange]):
    """Named date ranges that cannot overlap, e.g. ``train``, ``validation``, ``test``, ``trade``.

    Example:
        >>> Splits({"train": ("2020-01-01", "2020-12-31"), "test": ("2021-01-01", "2021-06-30")})
    """

    def __init__(self, ranges: Mapping[str, tuple[object, object] | DateRange]) -> None:
        parsed: dict[str, DateRange] = {}
        for name, rng in ranges.items():
            parsed[name] = rng if isinstance(rng, DateRange) else DateRange.parse(name, *rng)
        names = list(parsed)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                if parsed[a].overlaps(parsed[b]):
                    raise DataError(
                        f"splits '{a}' ({parsed[a]}) and '{b}' ({parsed[b]}) overlap; "
                        "train/validation/test/trade ranges must be disjoint"
                    )
        self._ranges = parsed

    def __getitem__(self, name: str) -> DateRange:
        try:
            return self._ranges[name]
        except KeyError:
            raise KeyError(f"no split named '{name}'; splits are {sorted(self._ranges)}") from None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._ranges)

    def __len__(self) -> int:
        return len(self._ranges)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self._ranges.items())
        return f"Splits({inner})"

    def to_dict(self) -> dict[str, tuple[str, str]]:
        return {k: (v.start.isoformat(), v.end.isoformat()) for k, v in self._ranges.items()}

    def indices(self, name: str, dates: np.ndarray) -> np.ndarray:
        """Positions of ``dates`` inside split ``name``."""
        return np.flatnonzero(self[name].mask(dates))

    def validate(self, dates: np.ndarray, warmup: int) -> None:
        """Check every split against the data's dates and the indicator warm-up.

        Raises:
            DataError: a split lies outside the data (by more than a week), holds no trading day, or has fewer usable bars
                (after the warm-up of the indicators) than the warm-up itself.
        """
        if len(dates) == 0:
            raise DataError("cannot validate splits against empty data")
        first, last = pd.Timestamp(dates[0]), pd.Timestamp(dates[-1])
        for name, rng in self._ranges.items():
            idx = self.indices(name, dates)
            # A week of slack lets a range start or end on a weekend or holiday next to the data.
            if rng.start < first.normalize() - _SLACK or rng.end > last + _SLACK or rng.end < first or rng.start > last:
                raise DataError(f"split '{name}' ({rng}) lies outside the data ({first.date()}..{last.date()})")
            if idx.size == 0:
                raise DataError(
                    f"split '{name}' ({rng}) has no trading day in range (only weekends or holidays of the calendar; "
                    f"the data covers {first.date()}..{last.date()})"
                )
            usable = int(np.sum(idx >= warmup))
            need = max(warmup, 2)
            if usable < need:
                raise DataError(
                    f"split '{name}' ({rng}) has {usable} bars after the indicator warm-up; "
                    f"it needs at least {need} (the warm-up is {warmup} bars)"
                )
