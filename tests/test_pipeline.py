"""The train -> validate -> test pipeline and the train / backtest CLI, end to end on tiny budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from finrl_lite.cli import app
from finrl_lite.config import load_config
from finrl_lite.errors import ConfigError
from finrl_lite.train.pipeline import backtest_run, train_run

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()

TINY = [
    "data.synthetic.num_tickers=3",
    "env.num_envs=4",
    "env.episode_length=30",
    "agent.params={num_steps: 16, num_minibatches: 2, update_epochs: 2}",
    "train.total_timesteps=256",
    "train.baselines=[buy_and_hold, min_variance]",
]


def _cfg(tmp_path: Path, *extra: str):  # noqa: ANN202
    return load_config(REPO / "configs" / "quickstart.yaml", [*TINY, f"data.cache.dir={tmp_path / 'cache'}", *extra])


def test_cli_train_then_backtest(tmp_path: Path) -> None:
    run = tmp_path / "run"
    sets = [arg for s in [*TINY, f"data.cache.dir={tmp_path / 'cache'}"] for arg in ("--set", s)]
    result = runner.invoke(app, ["train", "--config", str(REPO / "configs/quickstart.yaml"), "--out", str(run), *sets])
    assert result.exit_code == 0, result.output
    assert "validation" in result.output and "agent" in result.output
    for name in (
        "config.yaml",
        "run.json",
        "metrics.json",
        "train.log",
        "seed_0/model/agent.json",
        "seed_0/metrics.json",
        "seed_0/equity_test.csv",
        "seed_0/report_test.png",
        "seed_0/report_validation.png",
    ):
        assert (run / name).is_file(), name
    run_info = json.loads((run / "run.json").read_text())
    assert len(run_info["data_fingerprint"]) == 64 and "torch" in run_info["versions"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"validation", "test"}
    assert set(metrics["test"]) == {"agent", "buy_and_hold", "min_variance", "index"}
    assert metrics["test"]["agent"]["sharpe"]["n"] == 1
    equity = pd.read_csv(run / "seed_0" / "equity_test.csv", index_col="date")
    assert list(equity.columns) == ["agent", "buy_and_hold", "min_variance", "index"]
    assert not equity.isna().any().any()  # the agent and every baseline cover the same bars

    bt = runner.invoke(app, ["backtest", str(run), "--split", "trade"])
    assert bt.exit_code == 0, bt.output
    result_json = json.loads((run / "backtest_trade.json").read_text())
    assert "agent" in result_json["trade"]
    assert (run / "backtest_trade" / "seed_0" / "report_trade.png").is_file()


def test_same_seed_same_metrics(tmp_path: Path) -> None:
    a = train_run(_cfg(tmp_path), tmp_path / "a")
    b = train_run(_cfg(tmp_path), tmp_path / "b")
    assert json.loads((tmp_path / "a" / "metrics.json").read_text()) == json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a["test"]["agent"]["cumulative_return"]["mean"] == b["test"]["agent"]["cumulative_return"]["mean"]


def test_several_seeds_give_a_confidence_interval(tmp_path: Path) -> None:
    metrics = train_run(_cfg(tmp_path, "train.seeds=[0, 1]", "train.eval_splits=[test]"), tmp_path / "r")
    sharpe = metrics["test"]["agent"]["sharpe"]
    assert sharpe["n"] == 2 and sharpe["low"] <= sharpe["mean"] <= sharpe["high"] and len(sharpe["values"]) == 2


DDQN = ["agent.algo=ddqn", "agent.params={batch_size: 16, buffer_size: 300, train_frequency: 4, gradient_steps: 2}"]
SB3_A2C = ["agent.backend=sb3", "agent.algo=a2c", "agent.params={n_steps: 8}"]
SB3_DQN = ["agent.backend=sb3", "agent.algo=dqn", "agent.params={learning_starts: 32, batch_size: 16, buffer_size: 1000}"]


def _weights(agent) -> dict[str, torch.Tensor]:  # noqa: ANN001
    module = agent.model.policy if hasattr(agent, "model") else agent.ddqn.q if hasattr(agent, "ddqn") else agent.policy
    return module.state_dict()


def _has_training_state(model_dir: Path) -> bool:
    if (model_dir / "model.zip").is_file():
        return (model_dir / "model.state.pkl").is_file()
    return "training_state" in torch.load(model_dir / "model.pt", weights_only=True)


@pytest.mark.parametrize(
    ("agent", "total"),
    [([], 512), (DDQN, 512), (SB3_A2C, 256), (SB3_DQN, 256)],
    ids=["native_ppo", "native_ddqn", "sb3_a2c", "sb3_dqn"],
)
def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path: Path, agent: list[str], total: int) -> None:
    every = total // 4
    cfg = _cfg(tmp_path, f"train.total_timesteps={total}", f"train.checkpoint_every={every}", "train.eval_splits=[test]", *agent)
    straight = tmp_path / "straight"
    train_run(cfg, straight)
    run = tmp_path / "r"

    def interrupt(seed: int, progress) -> None:  # noqa: ANN001
        if progress.steps >= total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, run, hook=interrupt)
    saved = json.loads((run / "seed_0" / "progress.json").read_text())
    assert saved == {"steps": total // 2, "done": False} and (run / "seed_0" / "checkpoint" / "env.pt").is_file()
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    assert f"{total}/{total}" in result.output  # the progress bar counts the steps before the interruption too
    assert json.loads((run / "seed_0" / "progress.json").read_text()) == {"steps": total, "done": True}
    from finrl_lite.agents.factory import load_agent

    resumed, uninterrupted = load_agent(run / "seed_0" / "model"), load_agent(straight / "seed_0" / "model")
    assert resumed.num_timesteps == uninterrupted.num_timesteps == total  # type: ignore[attr-defined]
    for key, value in _weights(uninterrupted).items():
        torch.testing.assert_close(_weights(resumed)[key], value, rtol=0, atol=0, msg=key)
    for name in ("metrics.json", "seed_0/metrics.json"):
        assert json.loads((run / name).read_text()) == json.loads((straight / name).read_text()), name
    # only the checkpoint holds the training state (replay buffer, current observation...), not the final model
    assert _has_training_state(run / "seed_0" / "checkpoint") and not _has_training_state(run / "seed_0" / "model")


def test_resume_without_the_env_snapshot_is_a_clear_error(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "train.total_timesteps=256", "train.checkpoint_every=64", "train.eval_splits=[test]")
    run = tmp_path / "r"

    def interrupt(seed: int, progress) -> None:  # noqa: ANN001
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, run, hook=interrupt)
    (run / "seed_0" / "checkpoint" / "env.pt").unlink()
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 2 and "no env.pt" in result.output and "progress.json" in result.output


def test_checkpoints_follow_multiples_of_checkpoint_every(tmp_path: Path) -> None:
    # iterations of 64 steps (4 envs x 16); a checkpoint at the first iteration that passes each multiple of 96
    cfg = _cfg(tmp_path, "train.total_timesteps=512", "train.checkpoint_every=96", "train.eval_splits=[test]")
    run, checkpoints = tmp_path / "r", []

    def record(seed: int, progress) -> None:  # noqa: ANN001
        saved = json.loads((run / "seed_0" / "progress.json").read_text()) if (run / "seed_0" / "progress.json").is_file() else {}
        if saved.get("steps") == progress.steps:
            checkpoints.append(progress.steps)

    train_run(cfg, run, hook=record)
    assert checkpoints == [128, 192, 320, 384, 512]


def test_sb3_backend_through_the_pipeline(tmp_path: Path) -> None:
    """The metrics the pipeline reports for an SB3 agent are those of a fresh back-test of the model it saved."""
    cfg = _cfg(tmp_path, "agent.backend=sb3", "agent.algo=a2c", "agent.params={n_steps: 8}", "train.eval_splits=[test]")
    metrics = train_run(cfg, tmp_path / "r")
    fresh = backtest_run(tmp_path / "r", "test")
    assert fresh["test"] == metrics["test"]
    agent = fresh["test"]["agent"]
    assert agent["turnover"]["mean"] > 0  # the saved model trades: the comparison is not between two idle curves
    assert agent["cumulative_return"]["mean"] != fresh["test"]["buy_and_hold"]["cumulative_return"]["mean"]


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not available on backend 'native'"):
        train_run(_cfg(tmp_path, "agent.algo=sac"), tmp_path / "r")
    with pytest.raises(ConfigError, match=r"data.splits has no split 'holdout'"):  # before the data and the run directory
        train_run(_cfg(tmp_path, "train.eval_splits=[holdout]"), tmp_path / "r2")
    assert not (tmp_path / "r2").exists()
    with pytest.raises(ConfigError, match=r"\['lr'\] are not native PPO hyper-parameters"):
        train_run(_cfg(tmp_path, "agent.params={lr: 0.1}"), tmp_path / "r3")
    result = runner.invoke(app, ["backtest", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "not a run directory" in result.output


@pytest.mark.parametrize(("flags", "console_shows_info"), [([], False), (["-v"], True)])
def test_info_lines_only_with_verbose(tmp_path: Path, flags: list[str], console_shows_info: bool) -> None:
    """Warnings by default, INFO with -v: the INFO that train.log records stays off the console without -v."""
    run = tmp_path / "run"
    sets = [arg for s in [*TINY, f"data.cache.dir={tmp_path / 'cache'}", "train.eval_splits=[test]"] for arg in ("--set", s)]
    result = runner.invoke(app, [*flags, "train", "--config", str(REPO / "configs/quickstart.yaml"), "--out", str(run), *sets])
    assert result.exit_code == 0, result.output
    assert "ppo step" in (run / "train.log").read_text()  # the native PPO's INFO line per update
    assert ("ppo step" in result.output) is console_shows_info
