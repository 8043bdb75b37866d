"""One environment contract: every env is a BatchedEnv / TorchVecEnv with the same autoreset, Box or discrete actions."""

from __future__ import annotations

from typing import NamedTuple

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium import spaces

import finrl_lite.envs  # noqa: F401  (registers the environments)
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs import MELO_ID, BatchedEnv, GymEnv, GymVectorEnv, SB3VecEnv, StockTradingParams, TorchVecEnv
from finrl_lite.envs.base import same_step_autoreset
from finrl_lite.envs.discrete_actions import DiscreteTradeActions
from finrl_lite.envs.melo.config import MeloSimConfig
from finrl_lite.envs.melo.env import MeloEnvState, MeloVecEnv
from finrl_lite.envs.portfolio import PortfolioAllocationVecEnv, PortfolioParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Counter(NamedTuple):
    t: torch.Tensor
    key: torch.Tensor


def test_same_step_autoreset_selects_fresh_rows_and_keeps_the_final_observation() -> None:
    stepped = _Counter(t=torch.tensor([3, 5, 7]), key=torch.tensor([10, 20, 30]))
    done = torch.tensor([False, True, False])

    def fresh(s: _Counter) -> _Counter:
        return _Counter(t=torch.zeros_like(s.t), key=s.key)

    def observe(s: _Counter) -> torch.Tensor:
        return torch.stack([s.t, s.key], dim=1).double()

    state, obs, final = same_step_autoreset(stepped, done, fresh, observe)
    assert state.t.tolist() == [3, 0, 7] and state.key.tolist() == [10, 20, 30]
    assert obs.tolist() == [[3, 10], [0, 20], [7, 30]]
    assert final.tolist() == [[3, 10], [5, 20], [7, 30]]
    state, obs, final = same_step_autoreset(stepped, done, fresh, observe, final_obs=False)
    assert state.t.tolist() == [3, 0, 7] and final is obs
    state, obs, final = same_step_autoreset(stepped, done, fresh, observe, autoreset=False)
    assert state is stepped and final is obs and obs.tolist() == [[3, 10], [5, 20], [7, 30]]


def _envs(market: MarketData) -> list[BatchedEnv]:
    return [
        StockTradingVecEnv(market, StockTradingParams(episode_length=3), num_envs=2, seed=0),
        PortfolioAllocationVecEnv(market, PortfolioParams(episode_length=3, lookback=5), num_envs=2, seed=0),
        MeloVecEnv(MeloSimConfig(num_envs=2, num_symbols=1, periods_per_day=3), seed=0),
    ]


def test_every_env_keeps_the_contract(small_market: MarketData) -> None:
    for env in _envs(small_market):
        assert isinstance(env, TorchVecEnv) and isinstance(env, BatchedEnv)
        obs, info = env.reset(seed=1)
        assert obs.shape == (2, env.observation_size) and isinstance(info, dict)
        discrete = env.num_actions is not None
        for _ in range(3):
            if discrete:
                action = torch.zeros(2, dtype=torch.int64)
            else:
                action = torch.full((2, env.action_size), 0.5 * (env.action_low + env.action_high))
            obs, reward, terminated, truncated, info = env.step(action)
            done = terminated | truncated
            assert reward.shape == done.shape == (2,)
            assert torch.equal(info["final_obs"][~done], obs[~done])  # the final observation differs only where done
        assert bool(truncated.all()), type(env).__name__
        assert not torch.equal(info["final_obs"], obs)  # the returned observation is the next episode's first
        assert isinstance(env.state, tuple) and all(isinstance(x, torch.Tensor) for x in env.state)


def test_melo_is_a_discrete_env() -> None:
    env = MeloVecEnv(MeloSimConfig(num_envs=2, num_symbols=1, periods_per_day=3), seed=0)
    assert env.num_actions == 5 and env.action_size == 1 and (env.action_low, env.action_high) == (0.0, 4.0)
    with pytest.raises(ConfigError, match=r"expected \(num_envs,\) action indices = \(2,\)"):
        env.step(torch.zeros(2, 1, dtype=torch.int64))
    with pytest.raises(ConfigError, match="3 seeds for 2 environments"):
        env.reset(seed=[1, 2, 3])


def test_melo_seeds_one_generator() -> None:
    """Every row draws from one generator: a list of seeds (as SB3 passes them) seeds it with its first."""

    def run(seed: int | list[int]) -> list[torch.Tensor]:
        env = MeloVecEnv(MeloSimConfig(num_envs=2, num_symbols=1, periods_per_day=4), seed=0)
        out = [env.reset(seed=seed)[0]]
        for a in range(6):
            out += env.step(torch.full((2,), a % 5))[:2]
        return out

    for x, y in zip(run([7, 8]), run(7), strict=True):
        assert torch.equal(x, y)


def test_melo_state_and_generator_are_its_whole_state() -> None:
    """What a generic snapshot keeps (``state`` and ``generator``) is enough to replay the next steps exactly."""
    env = MeloVecEnv(MeloSimConfig(num_envs=2, num_symbols=2, periods_per_day=5), seed=3)
    env.reset()
    actions = [torch.tensor([a % 5, (a + 2) % 5, 4, 0]) for a in range(7)]  # crosses a day boundary
    env.step(actions[0])
    saved = MeloEnvState(*[x.clone() for x in env.state])
    generator = env.generator.get_state()
    first = [env.step(a) for a in actions]
    env.state = saved
    env.generator.set_state(generator)
    again = [env.step(a) for a in actions]
    for (o1, r1, *_, i1), (o2, r2, *_, i2) in zip(first, again, strict=True):
        assert torch.equal(o1, o2) and torch.equal(r1, r2) and torch.equal(i1["final_obs"], i2["final_obs"])


def test_one_gym_adapter_serves_melo() -> None:
    env = gymnasium.make(MELO_ID, config={"sim": {"periods_per_day": 3}})
    assert isinstance(env.unwrapped, GymEnv) and env.action_space == spaces.Discrete(5)
    env.reset(seed=0)
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(2)
    assert truncated and not terminated and env.observation_space.contains(obs)
    assert {"fill_rate", "markout_1s_bps", "h_ms", "regime"} <= set(info) and "stats" not in info
    with pytest.raises(ConfigError, match="reset"):
        env.step(2)
    venv = gymnasium.make_vec(MELO_ID, num_envs=2, vectorization_mode="vector_entry_point")
    assert isinstance(venv.unwrapped, GymVectorEnv) and venv.single_action_space == spaces.Discrete(5)
    with pytest.raises(ConfigError, match="multiple of num_symbols"):
        gymnasium.make_vec(MELO_ID, num_envs=4, vectorization_mode="vector_entry_point", num_symbols=3)


def test_sb3_vec_env_over_melo_and_dqn_smoke() -> None:
    from stable_baselines3 import DQN

    env = MeloVecEnv(MeloSimConfig(num_envs=2, num_symbols=2, periods_per_day=4), seed=0)
    venv = SB3VecEnv(env)
    assert venv.action_space == spaces.Discrete(5)
    venv.seed(3)
    venv.reset()
    for _ in range(4):
        venv.step_async(np.array([0, 1, 2, 3]))
        obs, rewards, dones, infos = venv.step_wait()
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)
    assert all(info["terminal_observation"].shape == (env.observation_size,) for info in infos)
    assert np.allclose(obs[:, 1], 0.0)  # the next day starts at time-of-day 0
    model = DQN("MlpPolicy", venv, learning_starts=8, buffer_size=200, batch_size=8, train_freq=4, seed=0, device="cpu")
    model.learn(32)
    assert model._n_updates > 0


def test_discrete_trade_actions_is_a_discrete_torch_env(small_market: MarketData) -> None:
    box = StockTradingVecEnv(small_market, StockTradingParams(episode_length=3), num_envs=2, seed=0)
    env = DiscreteTradeActions(box)
    assert isinstance(env, TorchVecEnv) and env.num_actions == 2 * small_market.num_tickers + 1
    assert SB3VecEnv(env).action_space == spaces.Discrete(env.num_actions)
    env.reset(seed=0)
    env.step(torch.tensor([1, 0]))
    assert box.state.holdings[0, 0] > 0 and box.state.holdings[1].sum() == 0  # buy ticker 0; hold
    with pytest.raises(ConfigError, match="action indices"):
        env.step(torch.zeros(2, 1, dtype=torch.int64))
    with pytest.raises(ConfigError, match="already discrete"):
        DiscreteTradeActions(MeloVecEnv(MeloSimConfig(num_envs=1, periods_per_day=3), seed=0))
