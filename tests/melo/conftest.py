"""Fixtures of the M-ELO tests: the LOBSTER files beside the repo, and one torch thread per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LOBSTER_EVENTS = SHARED_DATA / "lobster_l1_events_2012-06-21.csv.gz"
LOBSTER_TRADES = SHARED_DATA / "lobster_trades_2012-06-21.csv.gz"


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small batched ops are fastest (and stable on a shared 2-core box) with one intra-op thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def lobster_paths() -> tuple[Path, Path]:
    if not LOBSTER_EVENTS.is_file():
        pytest.skip("../shared/data/lobster_l1_events_2012-06-21.csv.gz not present")
    return LOBSTER_EVENTS, LOBSTER_TRADES
