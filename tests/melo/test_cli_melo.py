"""`finrl-lite melo train` and `finrl-lite melo evaluate` end to end with a tiny budget."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from finrl_lite.cli import app
from finrl_lite.cli.melo import available_threads

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

TINY = [
    "melo.sim.num_envs=1",
    "melo.sim.periods_per_day=20",
    "melo.train.days=2",
    "melo.agent.hidden=[16]",
    "melo.agent.batch_size=32",
    "melo.agent.buffer_size=5000",
    "melo.agent.gradient_steps=4",
    "melo.evaluate.static_grid_ms=[0.25,1.0,2.5]",
]


def _train_args(run: Path, *extra: str, config: str = "melo_ddqn.yaml") -> list[str]:
    args = ["melo", "train", "--config", str(REPO / "configs" / config), "--out", str(run), "--threads", "1"]
    for item in [*TINY, *extra]:
        args += ["--set", item]
    return args


def test_train_then_evaluate_two_seeds(tmp_path: Path) -> None:
    """The full-information agent (seed 0) and the published one-action agent (seed 1), evaluated together."""
    runs = [tmp_path / "seed0", tmp_path / "seed1"]
    for seed, (run, config) in enumerate(zip(runs, ["melo_ddqn.yaml", "melo_published.yaml"], strict=True)):
        result = runner.invoke(app, _train_args(run, f"melo.train.seed={seed}", config=config))
        assert result.exit_code == 0, result.output
        assert {"model.pt", "config.yaml", "train_history.json"} <= {p.name for p in run.iterdir()}
        assert (run / "regime_table.json").is_file() == (seed == 0)  # full information fits it while training
        assert not (run / "checkpoint").exists()  # removed once the model is written
        assert "day 1/2" in result.output and "day 2/2" in result.output  # one line per day off a terminal
        assert len(json.loads((run / "train_history.json").read_text())) == 2

    summary = tmp_path / "summary.json"
    args = ["melo", "evaluate", *map(str, runs), "--days", "2", "--seed", "3", "--threads", "1", "--summary", str(summary)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "static holding period dominates the agent" in result.output
    assert "regime table" in result.output and "hindsight" in result.output and "targets met" in result.output
    assert "fitting the regime table" in result.output and (runs[1] / "regime_table.json").is_file()
    for run in runs:
        report = json.loads((run / "melo_eval.json").read_text())
        assert {"agent", "static", "oracle", "legacy_10ms", "regime_table", "per_day", "spread", "targets"} <= set(report)
        assert set(report["static"]) == {"0.25", "1", "2.5"}
        for entry in [report["agent"], report["oracle"], report["legacy_10ms"], *report["static"].values()]:
            assert 0.0 <= entry["fill_rate"] <= 1.0 and isinstance(entry["markout_bps"], float)
        assert report["days"] == 2 and report["seed"] == 3 and report["symbol_periods"] == 2 * 20 * 3
        assert len(report["per_day"]["agent"]["fill_rate"]) == 2 and report["spread"]["agent"]["fill_rate"]["n"] == 2
        png = run / "melo_pareto.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    over = json.loads(summary.read_text())
    assert over["runs"] == [str(r) for r in runs] and over["over_training_seeds"]["agent"]["fill_rate"]["n"] == 2


def test_resume_finishes_an_interrupted_run(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) stops at a day's end after a checkpoint, exits 130; --resume ends where a whole run ends."""
    whole = tmp_path / "whole"
    assert runner.invoke(app, _train_args(whole, "melo.train.days=8")).exit_code == 0

    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", "from finrl_lite.cli import main; main()", *_train_args(run, "melo.train.days=8")]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # interrupt once training has started
        if line.startswith("day "):
            proc.send_signal(signal.SIGINT)
            break
    output = proc.stdout.read()
    assert proc.wait(timeout=120) == 130, output
    assert "checkpoint" in output and f"--resume {run}" in output
    assert (run / "checkpoint" / "agent.pt").is_file() and not (run / "model.pt").exists()

    result = runner.invoke(app, ["melo", "train", "--resume", str(run), "--threads", "1"])
    assert result.exit_code == 0, result.output
    a = torch.load(whole / "model.pt", weights_only=True)["q"]
    b = torch.load(run / "model.pt", weights_only=True)["q"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((whole / "regime_table.json").read_text()) == json.loads((run / "regime_table.json").read_text())


def test_user_errors_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["melo", "evaluate", str(tmp_path)])
    assert result.exit_code == 2 and "model.pt" in result.output
    result = runner.invoke(app, ["melo", "train", "--set", "melo.env.h_min_ms=5", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "h_min_ms" in result.output
    result = runner.invoke(app, ["melo", "train", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "config.yaml" in result.output
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("melo: {}\n")
    result = runner.invoke(app, ["melo", "train", "--resume", str(run), "--set", "melo.train.days=1"])
    assert result.exit_code == 2 and "drop --config/--set" in result.output
    result = runner.invoke(app, ["melo", "train", "--resume", str(run), "--threads", "1"])
    assert result.exit_code == 2 and "no checkpoint" in result.output


def test_finished_runs_and_broken_tables_are_user_errors(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert runner.invoke(app, _train_args(run, "melo.train.days=1")).exit_code == 0
    result = runner.invoke(app, ["melo", "train", "--resume", str(run), "--threads", "1"])
    assert result.exit_code == 2 and "already finished" in result.output
    table = run / "regime_table.json"
    table.write_text("{not json")
    result = runner.invoke(app, ["melo", "evaluate", str(run), "--days", "1", "--threads", "1"])
    assert result.exit_code == 2 and "regime_table.json: not JSON" in result.output
    table.write_text(json.dumps({"grid_ms": [1.0]}))
    result = runner.invoke(app, ["melo", "evaluate", str(run), "--days", "1", "--threads", "1"])
    assert result.exit_code == 2 and "not a regime table" in result.output and "delete it" in result.output
    assert not (run / "melo_eval.json").exists()


def test_threads_follow_the_cpus_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    for load, want in ((0.2, 4), (1.4, 3), (2.6, 1), (9.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert available_threads() == (want, 4, load)
    result = runner.invoke(app, ["melo", "train", "--help"], env={"COLUMNS": "200"})
    assert "sched_getaffinity" in result.output and "load average" in result.output
