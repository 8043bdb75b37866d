"""Shared fixtures: the real data folder beside the repo (skipped cleanly when absent) and tiny panels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from finrl_lite.data_processors.market_data import MarketData

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
