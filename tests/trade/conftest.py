"""Shared fixtures of the paper-trading tests: one tiny run trained once per session, and its uninterrupted
paper session over the trade split (the reference the parity and crash tests compare with)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from _paper_helpers import Session, train_tiny


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run directory (trained once per session); tests copy it before they write into it."""
    root = tmp_path_factory.mktemp("tiny")
    return train_tiny(root / "run", root / "cache")


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny run (its paper/ folder starts empty)."""
    target = tmp_path / "run"
    shutil.copytree(tiny_run, target, ignore=shutil.ignore_patterns("paper"))
    return target


@pytest.fixture(scope="session")
def reference_session(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Session:
    from finrl_lite.trade.config import PaperConfig
    from finrl_lite.trade.session import open_session, sim_broker_path

    journal = tmp_path_factory.mktemp("reference") / "journal.sqlite"
    trader = open_session(tiny_run, PaperConfig(journal=str(journal)))
    reports: list[Any] = []
    try:
        trader.start()
        trader.run(on_bar=reports.append)
        actions = [trader.journal.bar(r.time).action for r in reports]
    finally:
        trader.broker.close()
        trader.journal.close()
    return Session(journal, sim_broker_path(journal), reports, actions)
