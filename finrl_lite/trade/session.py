"""Putting a session together from a run directory and a paper config: run, feed, broker, journal, trader."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from finrl_lite.errors import ConfigError
from finrl_lite.trade.brokers.base import Broker
from finrl_lite.trade.brokers.sim import SimBroker
from finrl_lite.trade.config import PaperConfig
from finrl_lite.trade.feeds.base import Feed
from finrl_lite.trade.feeds.replay import ReplayFeed
from finrl_lite.trade.journal import Journal
from finrl_lite.trade.loop import PaperTrader
from finrl_lite.trade.run import ObservationLayout, TradingRun, load_trading_run

__all__ = ["default_journal_path", "make_broker", "make_feed", "open_session", "session_window", "sim_broker_path"]

logger = logging.getLogger(__name__)


def default_journal_path(run_dir: str | Path) -> Path:
    """``RUN_DIR/paper/journal.sqlite``."""
    return Path(run_dir) / "paper" / "journal.sqlite"


def sim_broker_path(journal: Path) -> Path:
    """The sim broker's own state file, beside the journal it trades for."""
    return journal.with_name(journal.stem + ".sim_broker.sqlite")


def session_window(run: TradingRun, config: PaperConfig) -> tuple[pd.Timestamp, pd.Timestamp | None]:
    """The replay's first and last bar: ``replay.start/end``, else the run's ``trade`` split (or its last split)."""
    splits = run.market.splits or {}
    default = splits.get("trade") if "trade" in splits else (splits[list(splits)[-1]] if splits else None)
    start = config.replay.start or (default.start if default is not None else None)
    if start is None:
        raise ConfigError(f"{run.directory}: the run's data has no splits; give the replay window with --start (and --end)")
    end = config.replay.end or (default.end if default is not None and config.replay.start is None else None)
    return pd.Timestamp(start), pd.Timestamp(end) if end is not None else None


def make_feed(run: TradingRun, config: PaperConfig) -> Feed:
    """The feed a config names (``replay`` of a file or of the run's data, or ``alpaca``)."""
    if config.feed == "replay":
        start, end = session_window(run, config)
        if config.replay.data:
            return ReplayFeed.from_file(
                config.replay.data,
                run.tickers,
                start,
                end,
                date_format=run.config.data.date_format,
                timezone=run.config.data.timezone,
                speed=config.replay.speed,
                interval=run.market.interval,
                calendar=run.market.calendar,
            )
        return ReplayFeed.from_market(run.market, start, end, speed=config.replay.speed)
    from finrl_lite.data_processors.sources.alpaca import AlpacaSource
    from finrl_lite.trade.feeds.alpaca import AlpacaFeed

    source = AlpacaSource(feed=config.alpaca.feed, crypto=config.alpaca.crypto)
    return AlpacaFeed(
        run.tickers,
        run.market.interval,
        "24/7" if config.alpaca.crypto else run.market.calendar,
        source,
        history_bars=config.alpaca.history_bars,
        poll_seconds=config.alpaca.poll_seconds,
        settle_seconds=config.alpaca.settle_seconds,
    )


def make_broker(run: TradingRun, config: PaperConfig, journal_path: Path | None) -> Broker:
    """The broker a config names; the sim broker keeps its state beside the journal (in memory for a dry run)."""
    if config.broker == "sim":
        path = None if journal_path is None else sim_broker_path(journal_path)
        return SimBroker(path, run.params, run.tickers, run.config.env.initial_amount, owner=run.run_id)
    from finrl_lite.trade.brokers.alpaca import AlpacaBroker, RetryPolicy

    a = config.alpaca
    policy = RetryPolicy(timeout=a.timeout_seconds, retries=a.retries, backoff=a.backoff_seconds)
    return AlpacaBroker(run.tickers, crypto=a.crypto, policy=policy)


def open_session(run_dir: str | Path, config: PaperConfig) -> PaperTrader:
    """Load the run, open (or create) the journal, build the broker and the feed, and return the trader.

    Nothing is traded yet: :meth:`PaperTrader.start` reconciles, :meth:`PaperTrader.run` trades.
    """
    run = load_trading_run(run_dir, seed=config.seed)
    feed = make_feed(run, config)
    if isinstance(feed, ReplayFeed) and feed.tickers != run.tickers:  # refused before anything is written
        given = ObservationLayout.with_tickers(run.params, feed.tickers, run.layout.features)
        run.layout.check_same(given, str(run.directory), feed.origin)
    journal_path = None if config.dry_run else Path(config.journal) if config.journal else default_journal_path(run_dir)
    remote = make_broker(run, config, None) if config.broker != "sim" else None  # keys checked before any file is made
    journal = Journal(journal_path)
    try:
        journal.check_owner(run.run_id, str(run.directory))
        broker = remote if remote is not None else make_broker(run, config, journal_path)
    except BaseException:
        journal.close()
        raise
    kill = None
    if config.risk.kill_switch_file:
        kill = Path(config.risk.kill_switch_file)
        if not kill.is_absolute():
            kill = (journal_path.parent if journal_path is not None else Path.cwd()) / kill
    return PaperTrader(run, broker, feed, journal, config, kill_switch=kill)
