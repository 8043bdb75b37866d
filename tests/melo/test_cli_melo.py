"""`finrl-lite melo train` and `finrl-lite melo evaluate` end to end with a tiny budget (CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from finrl_lite.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

TINY = [
    "melo.sim.num_envs=1",
    "melo.sim.periods_per_day=20",
    "melo.train.days=2",
    "melo.agent.hidden=[16]",
    "melo.agent.batch_size=32",
    "melo.agent.gradient_steps=4",
    "melo.evaluate.static_grid_ms=[0.25,1.0,2.5]",
]


def test_train_then_evaluate(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["melo", "train", "--config", str(REPO / "configs/melo_ddqn.yaml"), "--out", str(run), "--threads", "1"]
    for item in TINY:
        args += ["--set", item]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert {"model.pt", "config.yaml", "train_history.json"} <= {p.name for p in run.iterdir()}
    assert len(json.loads((run / "train_history.json").read_text())) == 2

    result = runner.invoke(app, ["melo", "evaluate", str(run), "--days", "1", "--seed", "3", "--threads", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads((run / "melo_eval.json").read_text())
    assert {"agent", "static", "oracle", "legacy_10ms"} <= set(report)
    assert set(report["static"]) == {"0.25", "1", "2.5"}
    for entry in [report["agent"], report["oracle"], report["legacy_10ms"], *report["static"].values()]:
        assert 0.0 <= entry["fill_rate"] <= 1.0 and isinstance(entry["markout_bps"], float)
    assert report["days"] == 1 and report["seed"] == 3 and report["symbol_periods"] == 20 * 3
    png = run / "melo_pareto.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_user_errors_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["melo", "evaluate", str(tmp_path)])
    assert result.exit_code == 2 and "model.pt" in result.output
    result = runner.invoke(app, ["melo", "train", "--set", "melo.env.h_min_ms=5", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "h_min_ms" in result.output
