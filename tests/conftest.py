"""Shared fixtures: the real data folder beside the repo (skipped cleanly when absent) and tiny panels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

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
