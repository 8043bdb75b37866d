"""Gymnasium / SB3 adapters and the registration of the stock-trading environment."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import finrl_lite.envs  # noqa: F401  (registers the environments)
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs import (
    STOCK_TRADING_ID,
    GymEnv,
    GymVectorEnv,
    SB3VecEnv,
    StockTradingParams,
    StockTradingVecEnv,
    make_stock_trading_env,
)
from finrl_lite.errors import ConfigError


def test_single_env_passes_gymnasium_and_sb3_checkers(small_market: MarketData) -> None:
    env = make_stock_trading_env(small_market, {"episode_length": 10, "observe_risk": True})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checkers report problems as warnings
        gym_check_env(env, skip_render_check=True)
    sb3_check_env(make_stock_trading_env(small_market), warn=True)


def test_gymnasium_make_and_episode(small_market: MarketData) -> None:
    env = gymnasium.make(STOCK_TRADING_ID, market=small_market, params={"episode_length": 6}, seed=0)
    obs, info = env.reset(seed=4)
    assert env.observation_space.contains(obs) and "portfolio_value" in info
    steps = 0
    while True:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        assert isinstance(reward, float) and env.observation_space.contains(obs)
        if terminated or truncated:
            break
    assert steps == 6 and truncated and not terminated
    with pytest.raises(ConfigError, match="reset"):
        env.unwrapped.step(env.action_space.sample())
    default = gymnasium.make(STOCK_TRADING_ID)  # a synthetic market when none is given
    assert default.reset(seed=0)[0].shape == default.observation_space.shape


def test_make_vec_vector_entry_point(small_market: MarketData) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        envs = gymnasium.make_vec(
            STOCK_TRADING_ID,
            num_envs=5,
            vectorization_mode="vector_entry_point",
            market=small_market,
            params=StockTradingParams(episode_length=4),
        )
    assert isinstance(envs.unwrapped, GymVectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert envs.num_envs == 5 and envs.single_action_space.shape == (small_market.num_tickers,)
    obs, infos = envs.reset(seed=[1, 2, 3, 4, 5])
    assert obs.shape == (5, envs.single_observation_space.shape[0]) and obs.dtype == np.float32
    assert infos["portfolio_value"].shape == (5,)
    for _ in range(4):
        obs, rew, term, trunc, infos = envs.step(envs.action_space.sample())
        assert rew.shape == (5,) and term.dtype == np.bool_
        assert infos["cash"].shape == (5,) and infos["holdings"].shape == (5, small_market.num_tickers)
    assert trunc.all() and infos["_final_obs"].all()
    assert infos["final_obs"][0].shape == envs.single_observation_space.shape
    assert infos["final_info"]["portfolio_value"].shape == (5,)
    # the returned observation is already the next episode's first: full cash, no holdings
    n = small_market.num_tickers
    np.testing.assert_allclose(obs[:, 0], 1.0)
    np.testing.assert_array_equal(obs[:, 1 + n : 1 + 2 * n], 0.0)
    envs.close()


def test_make_vec_matches_single_envs(small_market: MarketData) -> None:
    params = StockTradingParams(episode_length=5)
    vec = gymnasium.make_vec(
        STOCK_TRADING_ID, num_envs=3, vectorization_mode="vector_entry_point", market=small_market, params=params
    )
    obs, _ = vec.reset(seed=[7, 8, 9])
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, size=(5, 3, small_market.num_tickers)).astype(np.float32)
    vec_rewards = np.stack([vec.step(a)[1] for a in acts])
    for i, s in enumerate([7, 8, 9]):
        single = gymnasium.make(STOCK_TRADING_ID, market=small_market, params=params)
        o, _ = single.reset(seed=s)
        np.testing.assert_array_equal(o, obs[i])
        rewards = [single.step(a[i])[1] for a in acts]
        np.testing.assert_array_equal(rewards, vec_rewards[:, i])


def test_sb3_vec_env_terminal_observation_and_ppo_smoke(small_market: MarketData) -> None:
    from stable_baselines3 import PPO

    torch_env = StockTradingVecEnv(small_market, StockTradingParams(episode_length=5), num_envs=4, seed=0)
    venv = SB3VecEnv(torch_env)
    venv.seed(3)
    obs = venv.reset()
    assert obs.shape == (4, torch_env.observation_size)
    for _ in range(5):
        venv.step_async(np.zeros((4, small_market.num_tickers), dtype=np.float32))
        obs, rewards, dones, infos = venv.step_wait()
    assert dones.all() and rewards.dtype == np.float32
    assert all(info["TimeLimit.truncated"] for info in infos)
    assert all(info["terminal_observation"].shape == (torch_env.observation_size,) for info in infos)
    assert venv.get_attr("num_tickers") == [small_market.num_tickers] * 4
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=64)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (4, small_market.num_tickers)


def test_sb3_ruin_is_not_a_time_limit(small_market: MarketData) -> None:
    params = StockTradingParams(ruin_fraction=0.999, buy_cost_pct=0.05, hmax=1000)
    venv = SB3VecEnv(StockTradingVecEnv(small_market, params, num_envs=2, seed=0))
    venv.reset()
    venv.step_async(np.ones((2, small_market.num_tickers), dtype=np.float32))
    _, _, dones, infos = venv.step_wait()
    assert dones.all() and not any(info["TimeLimit.truncated"] for info in infos)


def test_gym_env_requires_one_env_without_autoreset(small_market: MarketData) -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        GymEnv(StockTradingVecEnv(small_market, num_envs=2, autoreset=False))
    with pytest.raises(ConfigError, match="autoreset"):
        GymEnv(StockTradingVecEnv(small_market, num_envs=1))


def test_native_torch_api_stays_on_device(small_market: MarketData) -> None:
    env = StockTradingVecEnv(small_market, num_envs=3, seed=0)
    obs, _ = env.reset()
    out = env.step(torch.zeros(3, small_market.num_tickers))
    for x in (obs, *out[:4], *out[4].values()):
        assert isinstance(x, torch.Tensor) and x.device == env.device
