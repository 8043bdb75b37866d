"""Shared fixtures: the real data folder beside the repo (skipped cleanly when absent) and tiny panels."""

from __future__ import annotations

from pathlib import Path

import pytest

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
