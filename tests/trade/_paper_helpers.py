"""Helpers of the paper-trading tests (a module of its own: test modules import it by a unique name, which a
``conftest`` is not when pytest collects several test folders)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from finrl_lite.config import load_config

# 3 synthetic tickers, two indicators, a short turbulence window with a threshold that fires on 3 of the 41
# trade bars (sell everything), large orders for the cash (buys run out of cash and fill partly): the loop's
# paths all run on these bars.
TINY: dict[str, Any] = {
    "data": {
        "source": "synthetic",
        "start": "2018-07-02",
        "end": "2019-12-31",
        "indicators": ["macd", "rsi_30"],
        "turbulence": True,
        "turbulence_window": 30,
        "vix": True,
        "synthetic": {"num_tickers": 3, "seed": 5},
        "splits": {
            "train": {"start": "2018-07-02", "end": "2019-08-31"},
            "test": {"start": "2019-09-01", "end": "2019-10-31"},
            "trade": {"start": "2019-11-01", "end": "2019-12-31"},
        },
    },
    "env": {
        "num_envs": 8,
        "hmax": 3000,
        "initial_amount": 50000,
        "turbulence_threshold": 9.0,
        "episode_length": 64,
        "scales": {"features": 0.01},
    },
    "agent": {"backend": "native", "algo": "ppo", "params": {"num_steps": 16}},
    "train": {"total_timesteps": 256, "eval_splits": ["test"], "baselines": ["buy_and_hold", "equal_weight_index"]},
}


def write_config(path: Path, cache_dir: Path, **changes: Any) -> Path:
    """The tiny config (with ``section.key`` changes) as a YAML file."""
    raw = yaml.safe_load(yaml.safe_dump(TINY))
    raw["data"]["cache"] = {"dir": str(cache_dir)}
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    path.write_text(yaml.safe_dump(raw))
    return path


def train_tiny(directory: Path, cache_dir: Path, **changes: Any) -> Path:
    from finrl_lite.train.pipeline import train_run

    cfg = load_config(write_config(directory.parent / f"{directory.name}.yaml", cache_dir, **changes))
    train_run(cfg, directory)
    return directory


@dataclass
class Session:
    """An uninterrupted paper session of the tiny run over its trade split (sim broker, replayed bars)."""

    journal: Path
    broker: Path
    reports: list[Any]
    actions: list[list[float]]


def broker_orders(path: Path) -> dict[str, tuple[Any, ...]]:
    """The sim broker's orders (read-only): client order id -> (ticker, side, qty, status, filled qty, avg price)."""
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT client_order_id, ticker, side, qty, status, filled_qty, filled_avg_price FROM orders"
        ).fetchall()
    finally:
        db.close()
    return {r[0]: tuple(r[1:]) for r in rows}


def journal_orders(path: Path) -> dict[str, tuple[Any, ...]]:
    """The journal's orders in the same shape as :func:`broker_orders` (read-only)."""
    from finrl_lite.trade.journal import Journal

    journal = Journal(path, read_only=True)
    try:
        return {
            o.client_order_id: (o.ticker, o.side, o.qty, o.status, o.filled_qty, o.filled_avg_price) for o in journal.orders()
        }
    finally:
        journal.close()


def first_orders(path: Path) -> int:
    """How many orders the journal at ``path`` holds for its first traded bar."""
    from finrl_lite.trade.journal import Journal

    journal = Journal(path, read_only=True)
    try:
        return len(journal.orders(bar_time=journal.bars("done")[0].time))
    finally:
        journal.close()


def journal_equity(path: Path) -> list[tuple[str, float]]:
    from finrl_lite.trade.journal import Journal

    journal = Journal(path, read_only=True)
    try:
        return [(b.time, b.equity) for b in journal.bars("done")]
    finally:
        journal.close()
