"""Every SB3 algorithm runs a tiny budget on the stock env; save/load keeps predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from finrl_lite.agents.sb3.agent import SB3_ALGORITHMS, SB3Agent
from finrl_lite.data_processors import MarketData
from finrl_lite.envs.discrete_actions import discrete_to_box
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.errors import ConfigError


@pytest.fixture(scope="module")
def market(tiny_market: MarketData) -> MarketData:
    return tiny_market


def _env(market: MarketData, n: int = 2) -> StockTradingVecEnv:
    return StockTradingVecEnv(market, StockTradingParams(episode_length=20), num_envs=n, seed=0)


SMALL = {
    "ppo": {"n_steps": 16, "batch_size": 16},
    "a2c": {"n_steps": 8},
    "ddpg": {"learning_starts": 20, "buffer_size": 500},
    "td3": {"learning_starts": 20, "buffer_size": 500},
    "sac": {"learning_starts": 20, "buffer_size": 500},
    "dqn": {"learning_starts": 20, "buffer_size": 500},
    "ddqn": {"learning_starts": 20, "buffer_size": 500},
}


@pytest.mark.parametrize("algo", list(SB3_ALGORITHMS))
def test_tiny_budget_and_save_load(algo: str, market: MarketData, tmp_path: Path) -> None:
    agent = SB3Agent(algo, _env(market), SMALL[algo], seed=0)
    seen = []
    agent.learn(64, callback=lambda p: seen.append(p.steps))
    obs = np.random.default_rng(0).normal(size=(5, agent.vec_env.observation_space.shape[0])).astype(np.float32)
    action = agent.predict(obs)
    assert action.shape == (5, 3) and np.all(np.abs(action) <= 1.0)
    path = agent.save(tmp_path / f"{algo}.zip")
    loaded = SB3Agent.load(path)
    np.testing.assert_array_equal(loaded.predict(obs), action)
    torch_action = loaded.predict(torch.as_tensor(obs))
    assert isinstance(torch_action, torch.Tensor)
    assert seen and seen[-1] == agent.num_timesteps >= 64  # progress reported after each update, the last at the end


def test_unknown_hyperparameter_is_a_clear_error(market: MarketData) -> None:
    with pytest.raises(ConfigError, match=r"\['n_stepz'\] are not PPO hyper-parameters; allowed: .*n_steps"):
        SB3Agent("ppo", _env(market), {"n_stepz": 3})
    with pytest.raises(ConfigError, match="unknown SB3 algorithm 'ppo2'"):
        SB3Agent("ppo2", _env(market))


def test_discrete_actions_map_to_single_trades() -> None:
    box = discrete_to_box(torch.tensor([0, 1, 3, 4, 6]), 3)
    expected = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 0, 1], [-1, 0, 0], [0, 0, -1]], dtype=torch.float64)
    torch.testing.assert_close(box, expected)


class _Interrupt(Exception):
    pass


def test_resume_keeps_the_timestep_count_and_schedule(market: MarketData, tmp_path: Path) -> None:
    params = SMALL["dqn"] | {"exploration_fraction": 0.5, "train_freq": 4}  # rollouts of 4 steps x 2 envs
    straight, totals = SB3Agent("dqn", _env(market), params, seed=0), []
    straight.learn(96, callback=lambda p: totals.append((p.steps, p.total_steps)))
    assert totals == [(8 * k, 96) for k in range(1, 13)]  # after every update, against the whole budget

    env = _env(market)
    agent = SB3Agent("dqn", env, params, seed=0)

    def interrupt(p) -> None:  # noqa: ANN001
        if p.steps == 48:
            agent.save(tmp_path / "m.zip", training_state=True)
            torch.save(env.state_dict(), tmp_path / "env.pt")
            raise _Interrupt

    with pytest.raises(_Interrupt):
        agent.learn(96, callback=interrupt)
    env_copy = _env(market)
    env_copy.load_state_dict(torch.load(tmp_path / "env.pt", weights_only=True))
    resumed, resumed_totals = SB3Agent.load(tmp_path / "m.zip", env=env_copy), []
    assert resumed.num_timesteps == 48 and resumed.model.replay_buffer.size() == 48 // 2
    resumed.learn(96 - resumed.num_timesteps, callback=lambda p: resumed_totals.append((p.steps, p.total_steps)))
    assert resumed_totals == totals[6:]  # the count goes on, the budget is the same
    assert resumed.num_timesteps == straight.num_timesteps == 96
    assert resumed.model.exploration_rate == straight.model.exploration_rate  # the schedule went on too
    for key, value in straight.model.policy.state_dict().items():
        torch.testing.assert_close(resumed.model.policy.state_dict()[key], value, rtol=0, atol=0, msg=key)
    resumed.save(tmp_path / "m.zip")  # over the checkpoint: its training state goes with it
    assert not (tmp_path / "m.state.pkl").exists()  # only a checkpoint carries the training state


def test_ppo_learns_the_budget_not_a_whole_default_rollout(
    market: MarketData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SB3 PPO's default rollout is 2048 steps x num_envs; a smaller budget is learned as one shorter rollout."""
    logdir = tmp_path / "sb3-default-logger"
    monkeypatch.setenv("SB3_LOGDIR", str(logdir))  # where SB3's default logger would make its folder
    agent = SB3Agent("ppo", _env(market, 4), {"batch_size": 16}, seed=0)
    seen: list[tuple[int, int]] = []
    agent.learn(50, callback=lambda p: seen.append((p.steps, p.total_steps)))
    assert agent.num_timesteps == 52  # 50 rounded up to whole batched steps of 4 envs
    assert seen == [(52, 50)]
    assert agent.model.n_steps == 2048 and agent.model.rollout_buffer.buffer_size == 2048  # the configuration is kept
    assert not logdir.exists()  # SB3's logger wrote no folder


def test_on_policy_budget_is_whole_rollouts_then_one_shorter(market: MarketData) -> None:
    agent = SB3Agent("a2c", _env(market, 2), {"n_steps": 8}, seed=0)  # rollouts of 8 x 2 = 16 steps
    seen: list[int] = []
    agent.learn(40, callback=lambda p: seen.append(p.steps))
    assert seen == [16, 32, 40] and agent.num_timesteps == 40
    agent.learn(16, callback=lambda p: seen.append(p.steps))  # later calls keep the configured rollout
    assert seen[-1] == 56 and agent.model.n_steps == 8
