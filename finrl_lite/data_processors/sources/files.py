"""Local files in the long format ``date, tic, open, high, low, close, volume`` (extra columns kept)."""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from finrl_lite.data_processors.calendars import calendar_timezone
from finrl_lite.data_processors.intervals import is_intraday
from finrl_lite.data_processors.sources.base import check_request, finalize_frame
from finrl_lite.errors import DataError

__all__ = ["CsvSource", "ParquetSource"]

logger = logging.getLogger(__name__)


class _FileSource:
    """A local file of bars.

    Args:
        path: the file.
        calendar: the exchange calendar of the bars (XNYS by default); its timezone is that of naive intraday
            timestamps unless ``timezone`` says otherwise.
        date_format: ``ISO8601`` or one strftime format for every date (see :func:`parse_dates`).
        timezone: IANA timezone of naive intraday timestamps; None: the calendar's.
    """

    name = "file"
    default_calendar = "XNYS"

    def __init__(
        self, path: str | Path, calendar: str | None = None, date_format: str = "ISO8601", timezone: str | None = None
    ) -> None:
        self.path = Path(path).expanduser()
        if calendar:
            self.default_calendar = calendar
        self.date_format = date_format
        self.timezone = timezone

    def _read(self) -> pd.DataFrame:
        raise NotImplementedError

    def _require_file(self) -> None:
        if not self.path.is_file():
            raise DataError(f"{self.path}: file not found")

    def download(self, tickers: Sequence[str], start: object, end: object, interval: str = "1d") -> pd.DataFrame:
        names, s, e = check_request(tickers, start, end)
        self._require_file()
        frame = self._read()
        logger.info("read %d rows from %s", len(frame), self.path)
        intraday = is_intraday(interval)
        timezone = self.timezone or (calendar_timezone(self.default_calendar) if intraday else None)
        return finalize_frame(
            frame, str(self.path), names, s, e, date_format=self.date_format, timezone=timezone, intraday=intraday
        )

    def download_vix(self, start: object, end: object, interval: str = "1d") -> pd.Series | None:
        return None

    def fingerprint(self) -> str:
        """Identity of the file's current content for cache keys (path, size, modification time)."""
        self._require_file()
        st = self.path.stat()
        return f"{self.path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


class CsvSource(_FileSource):
    """CSV file (``.csv`` or compressed ``.csv.gz``/``.bz2``/``.zip``/``.xz``, by extension)."""

    name = "csv"

    def _read(self) -> pd.DataFrame:
        try:
            return pd.read_csv(self.path, dtype={"tic": str}, low_memory=False)
        except (gzip.BadGzipFile, zlib.error, EOFError, OSError) as exc:
            raise DataError(f"{self.path}: cannot decompress or read the file ({exc}); is it really {self.path.suffix}?") from exc
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{self.path}: not a readable CSV file ({exc})") from exc
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"{self.path}: the file is empty") from exc


class ParquetSource(_FileSource):
    """Parquet file in the long format."""

    name = "parquet"

    def _read(self) -> pd.DataFrame:
        try:
            return pd.read_parquet(self.path)
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            raise DataError(f"{self.path}: not a readable parquet file ({exc})") from exc
