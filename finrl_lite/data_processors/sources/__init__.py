"""The data sources ``data.source`` can name, each declared once as a :class:`DataSource` entry of :data:`SOURCES`.

Entries point at their source class by import path: this module imports neither pandas nor an optional
client, so :mod:`finrl_lite.config` validates ``data.source`` against :data:`SOURCES` cheaply, and a source
is imported only when asked for (optional dependencies stay optional). Adding a source is one module (a
class implementing :class:`~finrl_lite.data_processors.sources.base.Source`) plus one entry::

    from finrl_lite.data_processors.sources import SOURCES, DataSource

    SOURCES.register(DataSource("my_feed", "mypkg.feed:MyFeedSource", takes_path=True))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from finrl_lite.errors import ConfigError, DataError
from finrl_lite.lazy import lazy_exports
from finrl_lite.registry import Registry, Target, resolve

if TYPE_CHECKING:
    from finrl_lite.data_processors.sources.base import REQUIRED_COLUMNS, Source

__all__ = ["REQUIRED_COLUMNS", "SOURCES", "DataSource", "Source", "make_source", "source_options"]


@dataclass(frozen=True)
class DataSource:
    """One data source.

    Attributes:
        name: the ``data.source`` value.
        source: the source class (import path or class), called with its options.
        section: the ``data`` section whose fields are its options (``synthetic``, ``yahoofinance``,
            ``alpaca``); None: it takes none.
        takes_path: ``data.path`` is its input file: required, passed as ``path=``, with ``date_format=`` and
            ``timezone=`` (``data.date_format``, ``data.timezone``) and ``calendar=`` (``cleaning.calendar``, when set),
            which say how to read its timestamps.
        description: one line for messages and docs.
    """

    name: str
    source: Target
    section: str | None = None
    takes_path: bool = False
    description: str = ""


SOURCES: Registry[DataSource] = Registry(
    "data source",
    [
        DataSource(
            "synthetic",
            "finrl_lite.data_processors.sources.synthetic:SyntheticSource",
            section="synthetic",
            description="the embedded seeded synthetic market (offline)",
        ),
        DataSource(
            "csv",
            "finrl_lite.data_processors.sources.files:CsvSource",
            takes_path=True,
            description="a long-format csv file (.gz accepted)",
        ),
        DataSource(
            "parquet",
            "finrl_lite.data_processors.sources.files:ParquetSource",
            takes_path=True,
            description="a long-format parquet file",
        ),
        DataSource(
            "yahoofinance",
            "finrl_lite.data_processors.sources.yahoofinance:YahooFinanceSource",
            section="yahoofinance",
            description="Yahoo Finance through yfinance (network)",
        ),
        DataSource(
            "alpaca",
            "finrl_lite.data_processors.sources.alpaca:AlpacaSource",
            section="alpaca",
            description="Alpaca's market data API (network, alpaca extra)",
        ),
    ],
)
"""Every data source, by name."""


def source_options(config: Any) -> dict[str, Any]:
    """The options a ``data`` config section gives its source: its own section's fields; for a file, ``path``,
    ``date_format`` and ``timezone``."""
    entry = SOURCES.get(config.source)
    options: dict[str, Any] = getattr(config, entry.section).model_dump() if entry.section is not None else {}
    if entry.takes_path:
        options.update(path=config.path, date_format=config.date_format, timezone=config.timezone)
    return options


def make_source(name: str, **options: Any) -> Source:
    """Instantiate the source called ``name`` with its own typed options.

    Raises:
        DataError: unknown source name (the message lists the known ones), or options the source does not take.
    """
    try:
        entry = SOURCES.get(name)
    except ConfigError:
        raise DataError(f"unknown data source '{name}'; known sources: {', '.join(SOURCES.names())}") from None
    source_cls = resolve(entry.source)
    try:
        return source_cls(**options)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise DataError(f"source '{name}': bad options {sorted(options)} ({exc})") from exc


__getattr__ = lazy_exports(__name__, {"REQUIRED_COLUMNS": ".base", "Source": ".base"})
