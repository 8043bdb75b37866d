"""Agents change their hyper-parameters between learn calls (`set_hyperparameters`), as population-based training needs."""

from __future__ import annotations

import pytest
import torch

from finrl_lite.agents.backends import BACKENDS
from finrl_lite.agents.base import TunableAgent
from finrl_lite.agents.hyperparameters import Hyperparameter, check_hyperparameters
from finrl_lite.agents.native.ppo import NativePPO, PPOConfig
from finrl_lite.agents.sb3.agent import SB3Agent
from finrl_lite.data_processors import DataProcessor, MarketData
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.errors import ConfigError


@pytest.fixture(scope="module")
def market() -> MarketData:
    dp = DataProcessor("synthetic", num_tickers=3, seed=2)
    df = dp.add_indicators(dp.clean(dp.download([], "2019-01-01", "2019-12-31")), ["macd", "rsi_30"])
    return dp.to_market_data(df)


def _env(market: MarketData) -> StockTradingVecEnv:
    return StockTradingVecEnv(market, StockTradingParams(episode_length=20), num_envs=2, seed=0)


def test_hyperparameter_ranges() -> None:
    gamma = Hyperparameter(0.0, 1.0, low_open=True)
    assert gamma.contains(1.0) and gamma.contains(0.5) and not gamma.contains(0.0) and not gamma.contains(1.01)
    assert gamma.describe() == "(0, 1]"
    count = Hyperparameter(1, integer=True)
    assert count.contains(16) and count.contains(16.0) and not count.contains(16.5) and not count.contains(0)
    assert count.describe() == "integers >= 1" and count.check("n", 16.0, "x") == 16
    assert not gamma.contains(float("nan")) and not gamma.contains(True) and not gamma.contains("0.5")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"native ppo cannot change \['hidden_sizes'\] during training; it can change: "):
        check_hyperparameters(BACKENDS.get("native").tunable("ppo"), {"hidden_sizes": (8,)}, "native ppo")


def test_native_ppo_applies_new_values_from_the_next_learn_call(market: MarketData) -> None:
    agent = NativePPO(_env(market), PPOConfig(num_steps=8, anneal_lr=False, seed=0))
    assert isinstance(agent, TunableAgent)
    agent.learn(16)
    weights = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    agent.set_hyperparameters({"learning_rate": 1e-2, "clip_coef": 0.3, "num_steps": 4, "gamma": 0.9})
    assert (agent.config.learning_rate, agent.config.clip_coef, agent.config.num_steps, agent.config.gamma) == (1e-2, 0.3, 4, 0.9)
    assert all(torch.equal(v, agent.policy.state_dict()[k]) for k, v in weights.items())  # the weights are kept
    steps = agent.num_timesteps
    agent.learn(8)
    assert agent.optimizer.param_groups[0]["lr"] == 1e-2
    assert agent.num_timesteps - steps == 2 * 4  # two envs x the new rollout length
    with pytest.raises(ConfigError, match=r"gamma=1\.5 is outside its valid range \(0, 1\]"):
        agent.set_hyperparameters({"gamma": 1.5})
    with pytest.raises(ConfigError, match=r"cannot change \['seed'\]"):
        agent.set_hyperparameters({"seed": 3})


def test_sb3_ppo_applies_new_values_to_its_schedules_and_buffer(market: MarketData) -> None:
    agent = SB3Agent("ppo", _env(market), {"n_steps": 16, "batch_size": 16}, seed=0)
    agent.learn(32)
    agent.set_hyperparameters({"learning_rate": 1e-2, "clip_range": 0.3, "gamma": 0.9, "gae_lambda": 0.8, "ent_coef": 0.05})
    model = agent.model
    assert model.lr_schedule(1.0) == 1e-2 and model.clip_range(0.5) == 0.3
    assert (model.gamma, model.rollout_buffer.gamma, model.rollout_buffer.gae_lambda, model.ent_coef) == (0.9, 0.9, 0.8, 0.05)
    agent.learn(32)
    assert model.policy.optimizer.param_groups[0]["lr"] == 1e-2
    assert agent.params["learning_rate"] == 1e-2  # saved with the model
    with pytest.raises(ConfigError, match=r"sb3 ppo cannot change \['n_steps'\] during training"):
        agent.set_hyperparameters({"n_steps": 8})


def test_sb3_off_policy_applies_new_values(market: MarketData) -> None:
    agent = SB3Agent("dqn", _env(market), {"learning_starts": 20, "buffer_size": 500}, seed=0)
    agent.set_hyperparameters({"learning_rate": 2e-3, "gamma": 0.95, "tau": 0.5})
    assert (agent.model.lr_schedule(1.0), agent.model.gamma, agent.model.tau) == (2e-3, 0.95, 0.5)
    with pytest.raises(ConfigError, match=r"sb3 dqn cannot change \['clip_range'\]"):
        agent.set_hyperparameters({"clip_range": 0.2})
