"""Cache of processed `MarketData`: parquet files keyed by a hash of everything that shapes them."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.errors import DataError
from finrl_lite.io import atomic_write_text, remove_stale_temp_files

__all__ = ["DataCache", "cache_key"]

logger = logging.getLogger(__name__)

CACHE_SCHEMA = 2


def cache_key(parts: dict[str, Any]) -> str:
    """Stable SHA-256 of a JSON-serialisable description (source, tickers, dates, interval, indicators, code version)."""
    from finrl_lite import __version__

    payload = json.dumps({"parts": parts, "version": __version__, "schema": CACHE_SCHEMA}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class DataCache:
    """A folder of ``<key>.parquet`` files (each with a ``<key>.json`` sidecar holding the cleaning report)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.directory / f"{key[:32]}.parquet", self.directory / f"{key[:32]}.json"

    def get(self, key: str) -> tuple[MarketData, dict[str, Any]] | None:
        data_path, meta_path = self._paths(key)
        if not (data_path.is_file() and meta_path.is_file()):
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("key") != key:
                return None
            data = MarketData.load(data_path)
        except (DataError, OSError, ValueError) as exc:
            logger.warning("ignoring unreadable cache entry %s (%s)", data_path, exc)
            return None
        logger.info("cache hit %s", data_path)
        return data, meta.get("extra", {})

    def put(self, key: str, data: MarketData, extra: dict[str, Any]) -> Path:
        """Write ``data`` under ``key`` (atomically; temporary files of interrupted writes are deleted first)."""
        remove_stale_temp_files(self.directory)
        data_path, meta_path = self._paths(key)
        data.save(data_path)
        atomic_write_text(meta_path, json.dumps({"key": key, "extra": extra}, indent=1, default=str))
        logger.info("cached %s", data_path)
        return data_path
