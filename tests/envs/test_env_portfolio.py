"""PortfolioAllocationVecEnv: weights, accounting against a numpy loop, covariance observation, adapters."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import finrl_lite.envs  # noqa: F401  (registers the environments)
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs import PORTFOLIO_ID, PortfolioAllocationVecEnv, PortfolioParams
from finrl_lite.envs.portfolio import make_portfolio_env, scores_to_weights


def test_scores_to_weights_masks_untradable_and_cash() -> None:
    scores = torch.tensor([[0.2, -0.5, 1.0, 0.0]], dtype=torch.float64)
    tradable = torch.tensor([[True, False, True]])
    w = scores_to_weights(PortfolioParams(cash_weight=True, action_scale=2.0), scores, tradable)
    e = np.exp(np.array([0.4, 2.0, 0.0]))
    np.testing.assert_allclose(w[0].numpy(), [e[0] / e.sum(), 0.0, e[1] / e.sum(), e[2] / e.sum()])
    w = scores_to_weights(PortfolioParams(cash_weight=False, action_scale=2.0), scores[:, :3], tradable)
    assert w[0, -1].item() == 0.0 and w[0, 1].item() == 0.0 and w.sum().item() == pytest.approx(1.0)
    w = scores_to_weights(PortfolioParams(cash_weight=False), scores[:, :3], torch.zeros(1, 3, dtype=torch.bool))
    assert w[0].tolist() == [0.0, 0.0, 0.0, 1.0]  # nothing tradable: all cash


def reference_rollout(market: MarketData, params: PortfolioParams, start: int, actions: np.ndarray) -> list[dict[str, float]]:
    """Plain numpy loop of the documented rules (one environment, execution next_open)."""
    open_, close = np.nan_to_num(market.field("open")), np.nan_to_num(market.field("close"))
    cash, shares, value = params.initial_amount, np.zeros(market.num_tickers), params.initial_amount
    out = []
    for k, a in enumerate(actions):
        t = start + k
        price, ok = open_[t + 1], market.valid[t + 1] & (open_[t + 1] > 0)
        logits = np.where(ok, np.clip(a[: market.num_tickers], -1, 1) * params.action_scale, -np.inf)
        logits = np.append(logits, np.clip(a[-1], -1, 1) * params.action_scale)
        w = np.exp(logits - logits.max())
        w /= w.sum()
        current = shares * price
        frozen = current[~ok].sum()
        investable = cash + current.sum() - frozen
        target = w[:-1] * investable
        cost = params.cost_pct * np.abs(target - current)[ok].sum()
        shrink = (investable - cost) / investable
        shares = np.where(ok, target * shrink / np.where(ok, price, 1.0), shares)
        cash = w[-1] * investable * shrink
        new_value = cash + (shares * close[t + 1]).sum()
        out.append({"cash": cash, "value": new_value, "reward": np.log(new_value / value), "cost": cost, "shares": shares.copy()})
        value = new_value
    return out


def test_accounting_matches_numpy_loop(ragged_market: MarketData) -> None:
    params = PortfolioParams(cost_pct=0.002, random_start=False, lookback=5)
    env = PortfolioAllocationVecEnv(ragged_market, params, num_envs=1, seed=0)
    env.reset()
    steps = ragged_market.num_dates - 1 - 5
    actions = np.random.default_rng(0).uniform(-1.2, 1.2, size=(steps, env.action_size))
    ref = reference_rollout(ragged_market, params, 5, actions)
    for k in range(steps):
        _, reward, _, truncated, info = env.step(torch.from_numpy(actions[k][None]))
        r = ref[k]
        assert info["cash"][0].item() == pytest.approx(r["cash"], rel=1e-9, abs=1e-6)
        assert info["portfolio_value"][0].item() == pytest.approx(r["value"], rel=1e-9)
        assert reward[0].item() == pytest.approx(r["reward"], rel=1e-9, abs=1e-12)
        assert info["costs"][0].item() == pytest.approx(r["cost"], rel=1e-9, abs=1e-9)
        if k < steps - 1:
            assert env.state is not None
            np.testing.assert_allclose(env.state.holdings[0].numpy(), r["shares"], rtol=1e-9, atol=1e-9)
    assert bool(truncated[0])


def test_money_adds_up_and_long_only(ragged_market: MarketData) -> None:
    params = PortfolioParams(cost_pct=0.01, cash_weight=False, episode_length=12)
    env = PortfolioAllocationVecEnv(ragged_market, params, num_envs=32, seed=1)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    for _ in range(30):
        _, reward, _, _, info = env.step(torch.rand(32, env.action_size, generator=gen) * 2 - 1)
        assert bool((info["costs"] >= 0).all()) and bool((info["weights"] >= 0).all())
        torch.testing.assert_close(info["weights"].sum(1), torch.ones(32, dtype=torch.float64))
        assert bool((info["cash"] >= -1e-6).all()) and bool(torch.isfinite(reward).all())
        assert env.state is not None and bool((env.state.holdings >= 0).all())


def test_covariance_observation_uses_trailing_window_only(small_market: MarketData) -> None:
    params = PortfolioParams(lookback=10, random_start=False)
    env = PortfolioAllocationVecEnv(small_market, params, num_envs=1, seed=0)
    obs, _ = env.reset()
    n = small_market.num_tickers
    close = small_market.field("close")
    t = 10
    rets = close[t - 9 : t + 1] / close[t - 10 : t] - 1.0
    np.testing.assert_allclose(obs[0, : n * n].numpy().reshape(n, n), np.cov(rets, rowvar=False), rtol=1e-9)
    feats = small_market.values[t, :, 5:].T.reshape(-1)
    np.testing.assert_allclose(obs[0, n * n : n * n + feats.size].numpy(), feats)
    np.testing.assert_allclose(obs[0, -n - 1 :].numpy(), [0.0] * n + [1.0])  # all cash at the start


def test_batched_equals_single(ragged_market: MarketData) -> None:
    params = PortfolioParams(episode_length=6)
    seeds = [3, 4, 5]
    acts = torch.rand(15, 3, ragged_market.num_tickers + 1, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    batched = PortfolioAllocationVecEnv(ragged_market, params, num_envs=3)
    bo, _ = batched.reset(seed=seeds)
    brs = [batched.step(a)[1] for a in acts]
    for i, s in enumerate(seeds):
        single = PortfolioAllocationVecEnv(ragged_market, params, num_envs=1)
        so, _ = single.reset(seed=[s])
        assert torch.equal(so[0], bo[i])
        for k, a in enumerate(acts):
            assert torch.equal(single.step(a[i : i + 1])[1][0], brs[k][i])


def test_portfolio_registration_and_checkers(small_market: MarketData) -> None:
    env = make_portfolio_env(small_market, {"episode_length": 8})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env, skip_render_check=True)
    sb3_check_env(make_portfolio_env(small_market), warn=True)
    vec = gymnasium.make_vec(
        PORTFOLIO_ID, num_envs=4, vectorization_mode="vector_entry_point", market=small_market, params={"episode_length": 3}
    )
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (4, vec.single_observation_space.shape[0])
    for _ in range(3):
        obs, rew, term, trunc, infos = vec.step(vec.action_space.sample())
    assert trunc.all() and infos["_final_obs"].all() and infos["weights"].shape == (4, small_market.num_tickers + 1)
    single = gymnasium.make(PORTFOLIO_ID, market=small_market)
    assert single.reset(seed=1)[0].shape == single.observation_space.shape
