"""Agents fail loudly: training stops at the first loss or weight that is not finite (native PPO, native DDQN, SB3),
a damaged saved agent is an error naming its file, and a backend checks agent.params without building anything."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from finrl_lite.agents.backends import BACKENDS
from finrl_lite.agents.base import TrainProgress
from finrl_lite.agents.factory import load_agent, make_agent, save_agent
from finrl_lite.config import AgentConfig
from finrl_lite.data_processors import MarketData
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.envs.synthetic import default_market
from finrl_lite.errors import ConfigError, TrainingError


@pytest.fixture(scope="module")
def market() -> MarketData:
    return default_market(num_tickers=3, num_dates=80, num_features=2, seed=1)


def _exploding_env(market: MarketData) -> StockTradingVecEnv:
    """Rewards of 1e300 x the change of value: the first update makes the value loss infinite."""
    return StockTradingVecEnv(market, StockTradingParams(episode_length=20, reward_scaling=1e300), num_envs=2, seed=0)


@pytest.mark.parametrize(
    ("backend", "algo", "params", "name"),
    [
        ("native", "ppo", {"num_steps": 8, "num_minibatches": 1, "update_epochs": 1}, "native PPO"),
        ("native", "ddqn", {"batch_size": 4, "buffer_size": 64, "train_frequency": 4}, "native DDQN"),
        ("sb3", "a2c", {"n_steps": 4}, "SB3 A2C"),
    ],
)
def test_training_stops_at_the_first_non_finite_loss_or_weight(
    market: MarketData, backend: str, algo: str, params: dict, name: str, one_torch_thread: None
) -> None:
    agent = make_agent(AgentConfig(backend=backend, algo=algo, params=params), _exploding_env(market), seed=0)
    reported: list[int] = []

    def callback(progress: TrainProgress) -> None:
        reported.append(progress.steps)

    with pytest.raises(TrainingError, match=rf"{name}: training diverged at step \d+ \(.*(inf|nan).*learning_rate"):
        agent.learn(400, callback=callback)
    assert reported == []  # stopped before reporting (and so before any checkpoint) of the diverged update


def test_a_damaged_saved_agent_is_an_error_naming_the_file(market: MarketData, tmp_path: Path) -> None:
    env = StockTradingVecEnv(market, StockTradingParams(episode_length=20), num_envs=2, seed=0)
    for backend, algo, model in (("native", "ppo", "model.pt"), ("sb3", "a2c", "model.zip")):
        cfg = AgentConfig(backend=backend, algo=algo, params={"n_steps": 4} if backend == "sb3" else {})
        directory = save_agent(make_agent(cfg, env), cfg, tmp_path / backend)
        saved = (directory / model).read_bytes()
        for damaged in (b"", saved[: len(saved) // 2]):
            (directory / model).write_bytes(damaged)
            with pytest.raises(ConfigError, match=rf"{backend}/{model}: cannot load the saved agent .* truncated or corrupt"):
                load_agent(directory)
        (directory / model).write_bytes(saved)
        load_agent(directory)
    (tmp_path / "native" / "agent.json").write_text('{"backend": "native", "al')
    with pytest.raises(ConfigError, match=r"native/agent\.json: unreadable \(JSONDecodeError"):
        load_agent(tmp_path / "native")
    (tmp_path / "native" / "agent.json").write_text('{"backend": "native"}')
    with pytest.raises(ConfigError, match=r"native/agent\.json: unreadable \(KeyError"):
        load_agent(tmp_path / "native")


def test_backends_check_params_without_building(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    monkeypatch.setattr("finrl_lite.agents.native.ppo.NativePPO.__init__", lambda *a, **k: built.append("ppo"))
    with pytest.raises(ConfigError, match=r"\['lr'\] are not native PPO hyper-parameters"):
        BACKENDS.get("native").check_params("ppo", {"lr": 0.1})
    with pytest.raises(ConfigError, match=r"\['eps'\] are not native DDQN hyper-parameters"):
        BACKENDS.get("native").check_params("ddqn", {"eps": 0.1})
    with pytest.raises(ConfigError, match=r"\['n_step'\] are not A2C hyper-parameters"):
        BACKENDS.get("sb3").check_params("a2c", {"n_step": 4})
    with pytest.raises(ConfigError, match="agent.algo 'sac' is not available on backend 'native'"):
        BACKENDS.get("native").check_params("sac", {})
    BACKENDS.get("native").check_params("ppo", {"num_steps": 8})
    BACKENDS.get("sb3").check_params("sac", {"buffer_size": 10})
    assert built == []


def test_finite_weights_check_reads_parameters_and_buffers() -> None:
    from finrl_lite.agents.divergence import all_finite
    from finrl_lite.agents.native.ppo import ActorCritic, PPOConfig

    policy = ActorCritic(4, 2, PPOConfig())
    assert bool(all_finite(policy))
    policy.norm.var[1] = torch.inf  # a buffer (observation normalisation), not a parameter
    assert not bool(all_finite(policy))
