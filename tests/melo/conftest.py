"""Fixtures of the M-ELO tests: the LOBSTER files beside the repo, and one torch thread per test."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LOBSTER_EVENTS = SHARED_DATA / "lobster_l1_events_2012-06-21.csv.gz"
LOBSTER_TRADES = SHARED_DATA / "lobster_trades_2012-06-21.csv.gz"


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every M-ELO test runs its small batched ops on one intra-op thread."""


@pytest.fixture
def lobster_paths() -> tuple[Path, Path]:
    if not LOBSTER_EVENTS.is_file():
        pytest.skip("../shared/data/lobster_l1_events_2012-06-21.csv.gz not present")
    return LOBSTER_EVENTS, LOBSTER_TRADES
