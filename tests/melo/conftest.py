"""Fixtures of the M-ELO tests: the LOBSTER files beside the repo, one torch thread per test, hand-set layers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

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


@pytest.fixture
def linear() -> Callable[[list[list[float]], list[float]], nn.Linear]:
    """Builds an ``nn.Linear`` with the given weight rows and bias (Q-networks whose targets are checked by hand)."""

    def build(weight: list[list[float]], bias: list[float]) -> nn.Linear:
        layer = nn.Linear(len(weight[0]), len(weight))
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(weight, dtype=torch.float32))
            layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
        return layer

    return build
