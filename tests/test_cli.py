"""The `finrl-lite` command line end to end (typer's CliRunner, in-process)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from finrl_lite import __version__
from finrl_lite.cli import app
from finrl_lite.data_processors import MarketData

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_help_and_version() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "data" in result.output
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_help_shows_counts_and_flags_without_values() -> None:
    """-v is a count and --no-cache a flag: --help must not print a value type after them."""
    top = runner.invoke(app, ["--help"], terminal_width=120).output
    verbose = next(line for line in top.splitlines() if "--verbose" in line)
    assert "-vv debug" in verbose and "<int>" not in verbose and "default: 0" not in top
    for command in (["train"], ["backtest"], ["data", "prepare"]):
        text = runner.invoke(app, [*command, "--help"], terminal_width=120).output
        no_cache = next(line for line in text.splitlines() if "--no-cache" in line)
        assert "<bool>" not in no_cache and "Neither read nor write" in no_cache, command


def test_data_prepare_quickstart(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["data", "prepare", "--config", str(REPO / "configs/quickstart.yaml"), "--out", str(out)]
    args += ["--set", f"data.cache.dir={tmp_path / 'cache'}", "--set", "data.synthetic.num_tickers=4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "valid cells" in result.output and "split train" in result.output
    market_tickers = [str(t) for t in MarketData.load(out / "market_data.parquet").tickers]
    assert f"4: {', '.join(market_tickers)}" in result.output  # the tickers are listed, as the README says
    market = MarketData.load(out / "market_data.parquet")
    assert market.num_tickers == 4 and market.splits is not None
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tickers"] == 4 and summary["fingerprint"] == market.fingerprint() and summary["cache_hit"] is False
    assert summary["ticker_symbols"] == market_tickers
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and json.loads((out / "summary.json").read_text())["cache_hit"] is True
    nocache = runner.invoke(app, [*args, "--no-cache"])
    assert nocache.exit_code == 0 and "cache" in nocache.output


def test_data_prepare_sp500(sp500_path: Path, tmp_path: Path) -> None:
    args = ["data", "prepare", "-c", str(REPO / "configs/sp500_csv.yaml"), "--out", str(tmp_path / "o"), "--no-cache"]
    args += ["--set", f"data.path={sp500_path}", "--set", "data.tickers=[VRTX, CHD, AAPL]"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    reasons = {d["reason"] for d in summary["cleaning"]["dropped"]}
    assert "NaN price" in reasons and summary["tickers"] == 3
    assert f"3: {', '.join(summary['ticker_symbols'])}" in result.output
    assert sorted(summary["ticker_symbols"]) == ["AAPL", "CHD", "VRTX"]


def test_a_long_universe_lists_its_first_tickers_and_a_count() -> None:
    from finrl_lite.cli.data import SHOWN_TICKERS, _tickers_text

    names = [f"T{i:03d}" for i in range(505)]
    text = _tickers_text(names)
    assert text.startswith("505: T000, T001") and f"T{SHOWN_TICKERS - 1:03d} and {505 - SHOWN_TICKERS} more" in text
    assert _tickers_text(["AAPL", "MSFT"]) == "2: AAPL, MSFT"


def test_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("data:\n  synthetic:\n    num_tickers: -3\n  colour: blue\n")
    result = runner.invoke(app, ["data", "prepare", "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "bad.yaml" in text and "data.synthetic.num_tickers" in text and "data.colour" in text
    assert "Traceback" not in text and not (tmp_path / "o").exists()
    missing = runner.invoke(app, ["data", "prepare", "--config", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "config file not found" in missing.output


def test_bad_data_exits_2_and_keeps_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "o"
    ok = runner.invoke(app, ["data", "prepare", "--out", str(out), "--no-cache", "--set", "data.synthetic.num_tickers=2"])
    assert ok.exit_code == 0, ok.output
    before = (out / "market_data.parquet").read_bytes()
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("date,tic,open,high,low,close\n2020-01-02,A,1,1,1,1\n")
    result = runner.invoke(
        app, ["data", "prepare", "--out", str(out), "--no-cache", "--set", "data.source=csv", "--set", f"data.path={bad_csv}"]
    )
    assert result.exit_code == 2 and "missing required column(s) ['volume']" in result.output
    assert (out / "market_data.parquet").read_bytes() == before
