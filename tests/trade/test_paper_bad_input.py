"""Bad input to `finrl-lite paper`: a clear message and exit code 2, never a traceback or a shape crash."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from finrl_lite.cli import app
from finrl_lite.errors import DataError


def _paper(*args: str) -> object:
    return CliRunner().invoke(app, ["paper", *[str(a) for a in args], "--no-live"])


def _status(*args: str) -> object:
    return CliRunner().invoke(app, ["paper", "status", *[str(a) for a in args]])


def _message(result: object) -> str:
    return " ".join(result.output.split())  # type: ignore[attr-defined]


def _raw_bars(run: Path) -> pd.DataFrame:
    """The run's own bars as a raw long-format frame (what a replay file holds)."""
    from finrl_lite.data_processors.processor import prepare_data
    from finrl_lite.train.pipeline import load_run_config

    frame = prepare_data(load_run_config(run)).market.to_frame()
    return frame[frame["valid"]][["date", "tic", "open", "high", "low", "close", "volume"]]


def _edit_config(run: Path, **changes: object) -> None:
    raw = yaml.safe_load((run / "config.yaml").read_text())
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        if dotted == "env.kind":  # another kind takes other fields: a fresh section of that kind
            raw[section] = {key: value}
        else:
            raw[section][key] = value
    (run / "config.yaml").write_text(yaml.safe_dump(raw))


def test_run_dir_without_a_model(run_copy: Path, tmp_path: Path) -> None:
    shutil.rmtree(run_copy / "seed_0" / "model")
    result = _paper(run_copy)
    assert result.exit_code == 2
    assert "seed 0 has no trained model" in _message(result) and "finrl-lite train --resume" in _message(result)
    result = _paper(tmp_path / "nothing")
    assert result.exit_code == 2 and "not a run directory (config.yaml missing)" in _message(result)


def test_bars_of_other_tickers_name_both_layouts(run_copy: Path, tmp_path: Path) -> None:
    frame = _raw_bars(run_copy)
    frame = frame[frame["tic"] != "SYN002"].replace({"tic": {"SYN000": "AAPL", "SYN001": "MSFT"}})
    path = tmp_path / "other.csv"
    frame.to_csv(path, index=False)
    result = _paper(run_copy, "--data", path)
    assert result.exit_code == 2, result.output
    text = _message(result)
    assert "observation layout mismatch" in text
    assert "3 tickers ['SYN000', 'SYN001', 'SYN002'] x features ['macd', 'rsi_30']" in text  # the model's
    assert "2 tickers ['AAPL', 'MSFT'] x features ['macd', 'rsi_30']" in text  # the feed's
    assert not (run_copy / "paper").exists()  # refused before a journal or an account was written


def test_a_model_of_another_observation_layout(run_copy: Path) -> None:
    _edit_config(run_copy, **{"env.observe_valid": True})  # the run now describes 3 more inputs than the model has
    result = _paper(run_copy)
    assert result.exit_code == 2, result.output
    text = _message(result)
    assert "observation layout mismatch" in text and "+ valid" in text
    assert "= 16 values" in text and "the model takes observations of 13 values" in text


def test_empty_feed(run_copy: Path, tmp_path: Path) -> None:
    result = _paper(run_copy, "--start", "2021-01-04", "--end", "2021-02-01")
    assert result.exit_code == 2
    assert "empty feed: no bars in the session 2021-01-04" in _message(result) and "the data has 2018-07-02" in _message(result)
    empty = tmp_path / "empty.csv"
    empty.write_text("date,tic,open,high,low,close,volume\n")
    result = _paper(run_copy, "--data", empty)
    assert result.exit_code == 2 and "empty" in _message(result)


def test_feed_with_a_gap(run_copy: Path, tmp_path: Path) -> None:
    frame = _raw_bars(run_copy)
    path = tmp_path / "gap.csv"
    frame[frame["date"] != pd.Timestamp("2019-11-06")].to_csv(path, index=False)
    result = _paper(run_copy, "--data", path)
    assert result.exit_code == 2, result.output
    text = _message(result)
    assert "gap in the feed: bar 2019-11-07 00:00:00 follows bar 2019-11-05 00:00:00" in text
    assert "1 XNYS bar(s) are missing in between (2019-11-06 00:00:00)" in text


def test_feed_with_a_bar_out_of_order(tiny_run: Path, tmp_path: Path) -> None:
    from finrl_lite.trade.config import PaperConfig
    from finrl_lite.trade.feeds.replay import ReplayFeed
    from finrl_lite.trade.session import open_session

    frame = _raw_bars(tiny_run).reset_index(drop=True)
    late = frame[frame["date"] == pd.Timestamp("2019-11-04")]
    recorded = pd.concat([frame[frame["date"] <= "2019-11-05"], late])  # an older bar arrives after 11-05
    trader = open_session(tiny_run, PaperConfig(journal=str(tmp_path / "j.sqlite")))
    trader.feed = ReplayFeed(recorded, "2019-11-01", origin="recorded feed")
    trader.start()
    with pytest.raises(
        DataError, match=r"recorded feed: bar 2019-11-04 00:00:00 arrives after bar 2019-11-05 00:00:00: out of order"
    ):
        trader.run()
    assert trader.journal.last_finished_bar() == "2019-11-05T00:00:00"  # what came before was traded and kept
    trader.broker.close()
    trader.journal.close()


def test_journal_of_another_run(tiny_run: Path, run_copy: Path, tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    assert _paper(tiny_run, "--journal", journal, "--max-bars", "1").exit_code == 0
    _edit_config(run_copy, **{"env.reward_scaling": 0.001})  # another run: another config
    result = _paper(run_copy, "--journal", journal)
    assert result.exit_code == 2
    text = _message(result)
    assert f"{journal} is the journal of another run" in text and str(tiny_run) in text and str(run_copy) in text


def test_corrupt_journal(tiny_run: Path, tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    journal.write_bytes(b"this is not a database" * 200)
    for result in (_paper(tiny_run, "--journal", journal), _status(journal)):
        assert result.exit_code == 2
        assert f"{journal}: not a readable journal (corrupt or not SQLite" in _message(result)
    other = tmp_path / "other.sqlite"
    import sqlite3

    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    result = _status(other)
    assert result.exit_code == 2 and "not a finrl-lite journal" in _message(result)
    assert _status(tmp_path / "missing.sqlite").exit_code == 2


def test_missing_keys_for_the_alpaca_broker(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    result = _paper(tiny_run, "--broker", "alpaca", "--journal", tmp_path / "j.sqlite")
    assert result.exit_code == 2
    assert "--broker alpaca needs the environment variables APCA_API_KEY_ID and APCA_API_SECRET_KEY" in _message(result)
    assert "not set: APCA_API_KEY_ID, APCA_API_SECRET_KEY" in _message(result)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"env.kind": "portfolio", "env.reward": "log_return"}, "paper trading supports env.kind 'stock_trading'"),
        ({"env.execution": "close"}, "paper trading needs execution 'next_open'"),
    ],
)
def test_runs_the_loop_cannot_trade_are_refused(run_copy: Path, change: dict[str, object], message: str) -> None:
    _edit_config(run_copy, **change)
    result = _paper(run_copy)
    assert result.exit_code == 2 and message in _message(result)


def test_bad_paper_config(tiny_run: Path) -> None:
    result = _paper(tiny_run, "--set", "risk.max_position_weight=2")
    assert result.exit_code == 2 and "risk.max_position_weight" in _message(result)
    result = _paper(tiny_run, "--broker", "ib")
    assert result.exit_code == 2 and "broker" in _message(result)
