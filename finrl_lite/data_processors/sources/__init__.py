"""Data sources by name. Each is imported only when asked for, so optional dependencies stay optional."""

from __future__ import annotations

import importlib
from typing import Any

from finrl_lite.data_processors.sources.base import REQUIRED_COLUMNS, Source
from finrl_lite.errors import DataError

__all__ = ["REQUIRED_COLUMNS", "SOURCES", "Source", "make_source"]

SOURCES: dict[str, str] = {
    "synthetic": "finrl_lite.data_processors.sources.synthetic:SyntheticSource",
    "csv": "finrl_lite.data_processors.sources.files:CsvSource",
    "parquet": "finrl_lite.data_processors.sources.files:ParquetSource",
    "yahoofinance": "finrl_lite.data_processors.sources.yahoofinance:YahooFinanceSource",
    "alpaca": "finrl_lite.data_processors.sources.alpaca:AlpacaSource",
}


def make_source(name: str, **options: Any) -> Source:
    """Instantiate the source called ``name`` with its own typed options.

    Raises:
        DataError: unknown source name (the message lists the known ones).
    """
    if name not in SOURCES:
        raise DataError(f"unknown data source '{name}'; known sources: {', '.join(SOURCES)}")
    module, cls = SOURCES[name].split(":")
    source_cls = getattr(importlib.import_module(module), cls)
    try:
        return source_cls(**options)
    except TypeError as exc:
        raise DataError(f"source '{name}': bad options {sorted(options)} ({exc})") from exc
