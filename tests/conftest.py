"""Shared fixtures: the real data folder beside the repo (skipped cleanly when absent) and tiny panels.

Nothing left behind: third-party libraries write outside a test's ``tmp_path`` by default: Ray its session folders
(and the "current cluster" file another process's ``ray.init()`` would join) under ``/tmp/ray``, an RLlib
``Algorithm`` or a Tune run its results under ``~/ray_results``, Ray its auth token under ``~/.ray``, SB3 an empty
``/tmp/SB3-<time>`` folder per ``learn`` with its default logger, and Ray's usage reporter looks up cloud metadata
servers. For the whole session (and every subprocess it starts: CLI runs, notebook kernels) ``HOME``, ``RAY_TMPDIR``
and ``SB3_LOGDIR`` point into one sandbox folder, removed when the session ends, usage reporting is off and
``RAY_ADDRESS`` is unset (tests start their own local cluster). Set before any test module imports Ray or SB3, so
every test inherits it; tests/test_nothing_left_behind.py proves it on a sub-session.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

if TYPE_CHECKING:
    from finrl_lite.data_processors.market_data import MarketData

SANDBOX = Path(tempfile.mkdtemp(prefix="flt"))  # short: Ray's socket paths under it must stay < 108 characters
os.environ.update(  # subprocesses (notebook kernels, Ray workers) write their temporary files into the sandbox too
    TMPDIR=str(SANDBOX / "tmp"),
    HOME=str(SANDBOX / "home"),
    RAY_TMPDIR=str(SANDBOX),
    SB3_LOGDIR=str(SANDBOX / "sb3"),
    RAY_USAGE_STATS_ENABLED="0",
)
os.environ.pop("RAY_ADDRESS", None)
(SANDBOX / "home").mkdir()
(SANDBOX / "tmp").mkdir()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop a Ray cluster a test left running, then remove the sandbox."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
    shutil.rmtree(SANDBOX, ignore_errors=True)


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SP500 = SHARED_DATA / "sp500_5yr_daily.csv.gz"
CRYPTO = SHARED_DATA / "crypto_binance_1min_2023-02.csv.gz"


@pytest.fixture
def sp500_path() -> Path:
    if not SP500.is_file():
        pytest.skip("../shared/data/sp500_5yr_daily.csv.gz not present")
    return SP500


@pytest.fixture
def crypto_path() -> Path:
    if not CRYPTO.is_file():
        pytest.skip("../shared/data/crypto_binance_1min_2023-02.csv.gz not present")
    return CRYPTO


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch intra-op thread for the test: tiny batched ops are fastest (and stable on a shared box) that way."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_market() -> MarketData:
    """Three synthetic tickers over 2019 with macd and rsi_30: the agents' smoke-test market."""
    from finrl_lite.data_processors import DataProcessor

    dp = DataProcessor("synthetic", num_tickers=3, seed=2)
    df = dp.add_indicators(dp.clean(dp.download([], "2019-01-01", "2019-12-31")), ["macd", "rsi_30"])
    return dp.to_market_data(df)
