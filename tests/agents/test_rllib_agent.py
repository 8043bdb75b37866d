"""RLlib (new API stack) PPO and DQN run a tiny budget on the stock env; save/load keeps predictions."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

pytest.importorskip("ray.rllib")

from finrl_lite.agents.base import Agent, TrainProgress  # noqa: E402
from finrl_lite.agents.rllib import RLlibAgent, make_rllib_env  # noqa: E402
from finrl_lite.data_processors import MarketData  # noqa: E402
from finrl_lite.envs.params import StockTradingParams  # noqa: E402
from finrl_lite.envs.stock_trading import StockTradingVecEnv  # noqa: E402
from finrl_lite.errors import ConfigError  # noqa: E402

SMALL = {
    "ppo": {"train_batch_size": 32, "minibatch_size": 16, "num_epochs": 1, "model_config": {"fcnet_hiddens": [16]}},
    "dqn": {
        "train_batch_size": 8,
        "num_steps_sampled_before_learning_starts": 16,
        "min_sample_timesteps_per_iteration": 32,
        "replay_buffer_config": {"capacity": 500},
        "model_config": {"fcnet_hiddens": [16]},
    },
}


@pytest.fixture(scope="module", autouse=True)
def _ray_cluster() -> Iterator[None]:
    yield
    import ray

    ray.shutdown()


@pytest.fixture(scope="module")
def market(tiny_market: MarketData) -> MarketData:
    return tiny_market


def _env(market: MarketData) -> StockTradingVecEnv:
    return StockTradingVecEnv(market, StockTradingParams(episode_length=20), num_envs=1, seed=0)


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_tiny_budget_and_save_load(algo: str, market: MarketData, tmp_path: Path) -> None:
    env = _env(market)
    agent = RLlibAgent(algo, env, SMALL[algo], seed=0)
    assert isinstance(agent, Agent)
    seen: list[TrainProgress] = []
    agent.learn(64, callback=seen.append)
    assert seen and seen[-1].steps >= 64 and agent.num_timesteps == seen[-1].steps
    assert all(p.total_steps == 64 for p in seen)

    obs = np.random.default_rng(0).normal(size=(5, env.observation_size)).astype(np.float32)
    action = agent.predict(obs)
    assert isinstance(action, np.ndarray) and action.shape == (5, 3) and np.all(np.abs(action) <= 1.0)
    explore = agent.predict(torch.as_tensor(obs), deterministic=False)
    assert isinstance(explore, torch.Tensor) and explore.shape == (5, 3) and bool((explore.abs() <= 1.0).all())
    if algo == "dqn":  # one trade at most per step
        assert np.all(np.isin(action, (-1.0, 0.0, 1.0))) and np.all(np.abs(action).sum(axis=1) <= 1)

    path = agent.save(tmp_path / algo)
    assert (path / "finrl_lite_agent.json").is_file()
    agent.save(path)  # overwriting an existing checkpoint works

    loaded = RLlibAgent.load(path)  # RLModule only: predictions, no algorithm
    np.testing.assert_array_equal(loaded.predict(obs), action)
    torch_action = loaded.predict(torch.as_tensor(obs))
    assert isinstance(torch_action, torch.Tensor)
    np.testing.assert_array_equal(torch_action.numpy(), action)
    with pytest.raises(ConfigError, match="without an environment"):
        loaded.learn(8)

    resumed = RLlibAgent.load(path, env=_env(market))  # whole algorithm, ready to train on
    np.testing.assert_array_equal(resumed.predict(obs), action)
    assert resumed.num_timesteps == agent.num_timesteps
    resumed.learn(8)
    assert resumed.num_timesteps > agent.num_timesteps
    logdirs = [Path(agent.algorithm.logdir), Path(resumed.algorithm.logdir)]  # RLlib's ~/ray_results/<run> folders
    agent.close()
    resumed.close()
    assert not any(d.exists() for d in logdirs)  # removed (empty) when the agents close


def test_iterations_are_fitted_to_the_budget(market: MarketData, caplog: pytest.LogCaptureFixture) -> None:
    from finrl_lite.agents.rllib.agent import fit_to_budget

    assert fit_to_budget("ppo", {}, 4096) == {"train_batch_size_per_learner": 2048, "minibatch_size": 128}  # 2 x 2048
    assert fit_to_budget("ppo", {"train_batch_size": 32, "minibatch_size": 16}, 20) == {
        "train_batch_size_per_learner": 20,
        "minibatch_size": 16,
    }
    assert fit_to_budget("ppo", {"train_batch_size": 32}, 6400) == {"train_batch_size": 32}  # already whole iterations
    with caplog.at_level("WARNING"):
        assert fit_to_budget("dqn", {}, 512) == {"min_sample_timesteps_per_iteration": 512}
    assert "makes no update" in caplog.text  # DQN's learning starts after 1000 sampled steps by default

    agent = RLlibAgent("ppo", _env(market), SMALL["ppo"] | {"train_batch_size": 48}, seed=0)
    seen: list[int] = []
    agent.learn(64, callback=lambda p: seen.append(p.steps))
    assert agent.params["train_batch_size_per_learner"] == 32 and seen == [32, 64]  # not 2 x 48 = 96 steps
    agent.close()


def test_unknown_hyperparameter_is_a_clear_error(market: MarketData) -> None:
    with pytest.raises(ConfigError, match=r"\['n_steps'\] are not RLlib PPO hyper-parameters; allowed: .*train_batch_size"):
        RLlibAgent("ppo", _env(market), {"n_steps": 16})
    with pytest.raises(ConfigError, match=r"\['learning_starts'\] are not RLlib DQN .*num_steps_sampled_before_learning_starts"):
        RLlibAgent("dqn", _env(market), {"learning_starts": 16})
    with pytest.raises(ConfigError, match="unknown RLlib algorithm 'sac'"):
        RLlibAgent("sac", _env(market))
    with pytest.raises(ConfigError, match="needs an environment"):
        RLlibAgent("ppo", None)
    with pytest.raises(ConfigError, match="not an RLlib agent checkpoint"):
        RLlibAgent.load(Path("/nonexistent/rllib-checkpoint"))


def test_rllib_env_creator_and_discrete_wrapper(market: MarketData) -> None:
    config = {"market": market, "params": StockTradingParams(episode_length=5), "seed": 1}
    box_env = make_rllib_env(config)
    env = make_rllib_env({**config, "discrete": True})
    assert isinstance(env.action_space, spaces.Discrete) and env.action_space.n == 7
    assert env.observation_space == box_env.observation_space
    obs, _ = env.reset(seed=3)
    assert obs.shape == env.observation_space.shape
    _, reward, terminated, truncated, info = env.step(2)  # 2: buy hmax shares of the second ticker
    assert np.isfinite(reward) and not terminated
    assert info["holdings"].tolist() == [0.0, 100.0, 0.0]
    _, _, _, _, info = env.step(5)  # N + 2 = 5: sell the second ticker
    assert info["holdings"].tolist() == [0.0, 0.0, 0.0]
    check_env(env.unwrapped, skip_render_check=True)
    with pytest.raises(ConfigError, match="needs 'market'"):
        make_rllib_env({})


def test_importing_the_backend_does_not_import_ray() -> None:
    code = "import sys, finrl_lite.agents.rllib; assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
