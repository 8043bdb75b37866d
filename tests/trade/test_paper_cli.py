"""`finrl-lite paper` and `finrl-lite paper status` from the command line."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from _paper_helpers import Session, first_orders, journal_equity
from typer.testing import CliRunner

from finrl_lite.cli import app

REPO = Path(__file__).resolve().parents[2]


def _invoke(*args: object) -> object:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_paper_stop_resume_and_status(run_copy: Path, reference_session: Session) -> None:
    first = _invoke("paper", run_copy, "--max-bars", "3", "--no-live")
    assert first.output.count("\nbar ") + first.output.startswith("bar ") == 3 and "3 bar(s) (3 traded)" in first.output
    journal = run_copy / "paper" / "journal.sqlite"
    assert journal.is_file() and (run_copy / "paper" / "journal.sim_broker.sqlite").is_file()
    again = _invoke("paper", run_copy, "--live")  # the rest of the session, with the live panel
    assert "reconciled" in again.output and "orders sent" in again.output and "38 bar(s) (38 traded)" in again.output
    assert journal_equity(journal) == journal_equity(reference_session.journal)

    status = _invoke("paper", "status", journal)
    text = status.output
    for part in ("account", "SYN001", "P&L against the baselines", "agent", "buy_and_hold", "open orders", "recent orders"):
        assert part in text
    last_bar, last_equity = journal_equity(reference_session.journal)[-1]
    assert last_bar.startswith("2019-12-31") and "2019-12-31" in text and f"{last_equity:,.2f}" in text
    png = run_copy / "paper" / "journal_status.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    assert (run_copy / "paper" / "paper.log").read_text().count("sim broker") > 10


def test_dry_run_writes_nothing(run_copy: Path) -> None:
    result = _invoke("paper", run_copy, "--dry-run", "--max-bars", "2", "--no-live")
    assert "[dry_run]" in result.output and "orders sent 0" in " ".join(result.output.split())
    assert not (run_copy / "paper" / "journal.sqlite").exists()


def _readme_paper_commands() -> list[str]:
    section = (REPO / "README.md").read_text().split("## Paper trading", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)[0].splitlines()


@pytest.mark.slow
def test_quickstart_agent_paper_trades_end_to_end(tmp_path: Path) -> None:
    """The README's two paper commands on the quick start config (a small training budget): the session over the
    trade split ends with the equity `finrl-lite backtest --split trade` reports, and `paper status` shows it."""
    run = tmp_path / "quickstart"
    overrides = [
        "--set",
        "train.total_timesteps=512",
        "--set",
        "env.num_envs=16",
        "--set",
        f"data.cache.dir={tmp_path / 'cache'}",
    ]
    _invoke("train", "--config", REPO / "configs" / "quickstart.yaml", "--out", run, *overrides)
    paper_cmd, status_cmd = (shlex.split(c.replace("runs/quickstart", str(run))) for c in _readme_paper_commands())
    assert paper_cmd[:2] == ["finrl-lite", "paper"] and status_cmd[:3] == ["finrl-lite", "paper", "status"]
    with _cwd(REPO):  # the README's paths are relative to the repository
        paper = _invoke(*paper_cmd[1:], "--no-live")
        status = _invoke(*status_cmd[1:])
    assert "64 bar(s) (64 traded)" in " ".join(paper.output.split())
    assert "P&L against the baselines" in status.output and "min_variance" in status.output
    _invoke("backtest", run, "--split", "trade")
    backtest = pd.read_csv(run / "backtest_trade" / "seed_0" / "equity_trade.csv")
    paper_equity = [e for _, e in journal_equity(run / "paper" / "journal.sqlite")]
    assert len(paper_equity) == len(backtest)
    assert max(abs(a - b) for a, b in zip(paper_equity, backtest["agent"], strict=True)) <= 1e-9


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def test_the_runs_own_paper_section_is_the_default_config(run_copy: Path, reference_session: Session) -> None:
    import yaml

    first_bar_orders = first_orders(reference_session.journal)
    assert first_bar_orders > 0

    raw = yaml.safe_load((run_copy / "config.yaml").read_text())
    raw["paper"] = {"risk": {"max_order_notional": 1.0}}
    (run_copy / "config.yaml").write_text(yaml.safe_dump(raw))
    result = _invoke("paper", run_copy, "--max-bars", "1", "--no-live")
    assert f"blocked {first_bar_orders}" in " ".join(result.output.split())  # every order of the first bar
    result = _invoke("paper", run_copy, "--max-bars", "1", "--no-live", "--config", REPO / "configs" / "paper_sim.yaml")
    assert "blocked 0" in " ".join(result.output.split())
