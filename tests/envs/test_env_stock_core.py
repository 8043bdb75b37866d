"""Batched core of the stock-trading environment: equivalence, invariants, look-ahead, episodes, dtypes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from _scenarios import scenarios
from hypothesis import HealthCheck, given, settings

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv, reset, step
from finrl_lite.errors import ConfigError


def rollout(env: StockTradingVecEnv, actions: torch.Tensor, seed: int | list[int]) -> list[tuple]:
    obs, _ = env.reset(seed=seed)
    out = [(obs,)]
    for a in actions:
        o, r, te, tr, info = env.step(a)
        out.append((o, r, te, tr, info["final_obs"], info["cash"], info["holdings"], info["costs"]))
    return out


STEP_MODES = pytest.mark.parametrize("step_mode", ["eager", "fused"])


@STEP_MODES
def test_batched_equals_single_envs(ragged_market: MarketData, step_mode: str) -> None:
    params = StockTradingParams(episode_length=7, turbulence_threshold=15.0, lot_size=10, min_cost=1.0, slippage_bps=5)
    seeds = [11, 12, 13, 14, 15]
    gen = torch.Generator().manual_seed(0)
    actions = torch.rand(30, len(seeds), ragged_market.num_tickers, generator=gen, dtype=torch.float64) * 2 - 1
    batched = rollout(StockTradingVecEnv(ragged_market, params, num_envs=len(seeds), step_mode=step_mode), actions, seeds)
    for i, s in enumerate(seeds):
        single = rollout(StockTradingVecEnv(ragged_market, params, num_envs=1, step_mode=step_mode), actions[:, i : i + 1], [s])
        for b_step, s_step in zip(batched, single, strict=True):
            for b, x in zip(b_step, s_step, strict=True):
                assert torch.equal(b[i : i + 1], x)
    # several episodes ran, with different random starts
    assert sum(int(x[3].sum()) for x in batched[1:]) >= 4 * len(seeds)


@STEP_MODES
def test_determinism_bitwise(ragged_market: MarketData, step_mode: str) -> None:
    params = StockTradingParams(episode_length=9, reward="differential_sharpe")
    actions = torch.rand(25, 8, ragged_market.num_tickers, generator=torch.Generator().manual_seed(1)) * 2 - 1
    a = rollout(StockTradingVecEnv(ragged_market, params, num_envs=8, step_mode=step_mode), actions, 123)
    b = rollout(StockTradingVecEnv(ragged_market, params, num_envs=8, step_mode=step_mode), actions, 123)
    c = rollout(StockTradingVecEnv(ragged_market, params, num_envs=8, step_mode=step_mode), actions, 124)
    assert all(torch.equal(x, y) for sa, sb in zip(a, b, strict=True) for x, y in zip(sa, sb, strict=True))
    assert not torch.equal(a[0][0], c[0][0])  # another seed, other starts


def test_random_starts_after_warmup(small_market: MarketData) -> None:
    market = replace(small_market, warmup=10)
    env = StockTradingVecEnv(market, StockTradingParams(episode_length=20), num_envs=256, seed=0)
    env.reset()
    assert env.state is not None
    t = env.state.t
    assert int(t.min()) >= 10 and int(t.max()) <= market.num_dates - 1 - 20
    assert len(torch.unique(t)) > 20
    fixed = StockTradingVecEnv(market, StockTradingParams(random_start=False), num_envs=4, seed=0)
    fixed.reset()
    assert fixed.state is not None and fixed.state.t.tolist() == [10] * 4
    with pytest.raises(ConfigError, match="episode_length"):
        StockTradingVecEnv(market, StockTradingParams(episode_length=60), num_envs=1)


def test_truncation_at_episode_length_and_end_of_data(small_market: MarketData) -> None:
    env = StockTradingVecEnv(small_market, StockTradingParams(episode_length=5), num_envs=3, seed=0)
    env.reset()
    flags = []
    for _ in range(10):
        _, _, te, tr, _ = env.step(torch.zeros(3, small_market.num_tickers))
        flags.append((te.clone(), tr.clone()))
    assert [bool(tr.all()) for _, tr in flags] == [False] * 4 + [True] + [False] * 4 + [True]
    assert not any(bool(te.any()) for te, _ in flags)
    to_end = StockTradingVecEnv(small_market, StockTradingParams(random_start=False), num_envs=1, seed=0)
    to_end.reset()
    for k in range(small_market.num_dates - 1):
        _, _, te, tr, _ = to_end.step(torch.zeros(1, small_market.num_tickers))
        assert bool(tr[0]) == (k == small_market.num_dates - 2) and not bool(te[0])


def test_ruin_terminates_and_autoreset(small_market: MarketData) -> None:
    params = StockTradingParams(ruin_fraction=0.999, buy_cost_pct=0.01, hmax=1000, random_start=False)
    env = StockTradingVecEnv(small_market, params, num_envs=2, seed=0)
    obs0, _ = env.reset()
    obs, reward, te, tr, info = env.step(torch.tensor([[1.0] * 4, [0.0] * 4]))
    assert te.tolist() == [True, False] and tr.tolist() == [False, False]
    assert float(info["portfolio_value"][0]) < 0.999 * 1e6 and float(reward[0]) < 0
    assert torch.equal(obs[0], obs0[0])  # same start bar (random_start=False): a fresh episode
    assert not torch.equal(info["final_obs"][0], obs0[0])  # the terminal observation is kept
    assert env.state is not None and env.state.episode.tolist() == [1, 0]


def test_partial_reset_with_mask(small_market: MarketData) -> None:
    params = StockTradingParams(episode_length=10)
    market = env_market = StockTradingVecEnv(small_market, params, num_envs=4, seed=0).market
    state, _ = reset(params, market, torch.Generator().manual_seed(0), 4)
    state, *_ = step(state, torch.ones(4, 4, dtype=torch.float64) * 0.5, params, env_market)
    mask = torch.tensor([True, False, True, False])
    new, _ = reset(params, market, torch.Generator().manual_seed(1), 4, state=state, mask=mask)
    assert new.steps.tolist() == [0, 1, 0, 1]
    assert torch.equal(new.holdings[1], state.holdings[1]) and bool((new.holdings[0] == 0).all())


def test_float32_mode_runs(ragged_market: MarketData) -> None:
    params = StockTradingParams(dtype=torch.float32, episode_length=20, reward="log_return")
    env = StockTradingVecEnv(ragged_market, params, num_envs=16, seed=0)
    obs, _ = env.reset()
    assert obs.dtype == torch.float32
    for _ in range(40):
        obs, r, _, _, info = env.step(torch.rand(16, ragged_market.num_tickers) * 2 - 1)
        assert obs.dtype == torch.float32 and r.dtype == torch.float32
        assert bool(torch.isfinite(obs).all()) and bool(torch.isfinite(r).all())
        assert bool((info["cash"] >= 0).all())


@pytest.mark.parametrize("execution", ["next_open", "close"])
def test_no_look_ahead(small_market: MarketData, execution: str) -> None:
    """Changing every bar after t0 changes no observation, fill or reward up to t0."""
    t0 = 30
    rng = np.random.default_rng(0)
    values = small_market.values.copy()
    values[t0 + 1 :] *= rng.uniform(0.5, 1.5, size=values[t0 + 1 :].shape)
    if execution == "next_open":  # the fill at t0 + 1 may read bar t0 + 1's open, nothing else of it
        values[t0 + 1, :, 0] = small_market.values[t0 + 1, :, 0]
        values[t0 + 1, :, 3:] = small_market.values[t0 + 1, :, 3:] * 3.0
        values[t0 + 1, :, 1:3] = 1.0
        values[t0 + 2 :] = small_market.values[t0 + 2 :] * 2.0
    market_vals = small_market.market_values.copy()
    market_vals[t0 + 1 :] = 1e9  # turbulence far above any threshold
    valid = small_market.valid.copy()
    valid[t0 + (2 if execution == "next_open" else 1) :, 1] = False  # next_open may read bar t0 + 1 (the fill)
    changed = replace(small_market, values=values, market_values=market_vals, valid=valid)
    params = StockTradingParams(random_start=False, turbulence_threshold=25.0, execution=execution)  # type: ignore[arg-type]
    actions = torch.rand(t0 + 1, 1, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2 - 1
    a = rollout(StockTradingVecEnv(small_market, params, num_envs=1), actions, 0)
    b = rollout(StockTradingVecEnv(changed, params, num_envs=1), actions, 0)
    for k in range(t0 + 1):  # observations of bars 0..t0
        assert torch.equal(a[k][0], b[k][0]), k
    for k in range(1, t0 + 1):  # rewards of steps ending at bars 1..t0
        assert torch.equal(a[k][1], b[k][1]), k
    # the step decided on bar t0 fills identically (same cash and holdings after it)
    assert torch.equal(a[t0 + 1][5], b[t0 + 1][5])
    assert torch.equal(a[t0 + 1][6], b[t0 + 1][6])


def test_ragged_ticker_not_traded_and_valued_at_last_price(ragged_market: MarketData) -> None:
    late = ragged_market.num_dates // 4
    params = StockTradingParams(random_start=False, buy_cost_pct=0.0, sell_cost_pct=0.0)
    env = StockTradingVecEnv(ragged_market, params, num_envs=1, seed=0)
    env.reset()
    n = ragged_market.num_tickers
    for k in range(ragged_market.num_dates - 1):
        _, _, _, _, info = env.step(torch.ones(1, n, dtype=torch.float64) * (0.3 if k % 3 else -0.2))
        held = info["holdings"][0]
        if k + 1 < late:  # the last ticker lists at bar `late`
            assert float(held[-1]) == 0.0
    close = np.nan_to_num(ragged_market.field("close"))
    assert float(held[0]) > 0  # bought while it was listed, still held after its delisting (no fills)
    expect = float(info["cash"][0]) + float((held.numpy() * close[-1]).sum())
    assert float(info["portfolio_value"][0]) == pytest.approx(expect, rel=1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios())
def test_accounting_invariants(scenario: tuple[MarketData, StockTradingParams, np.ndarray]) -> None:
    market, params, actions = scenario
    env = StockTradingVecEnv(market, params, num_envs=3, seed=0, step_mode="eager")  # the fused step: test_env_fused.py
    env.reset()
    close = torch.from_numpy(np.nan_to_num(market.field("close")))
    valid = torch.from_numpy(market.valid.copy())
    tol = 1e-9 * params.initial_amount
    for a in actions:
        assert env.state is not None
        before = env.state
        fill_bar = before.t + 1 if params.execution == "next_open" else before.t
        _, reward, _, _, info = env.step(torch.from_numpy(a))
        cash, held = info["cash"], info["holdings"]
        assert bool((cash >= -tol).all()), cash
        assert bool((held >= 0).all())
        assert bool((info["costs"] >= 0).all()) and bool(torch.isfinite(reward).all())
        value = cash + (held * close[before.t + 1]).sum(1)
        torch.testing.assert_close(info["portfolio_value"], value, rtol=1e-12, atol=1e-9)
        traded = held != before.holdings
        assert not bool((traded & ~valid[fill_bar]).any())  # invalid tickers are never traded
        if not params.fractional:
            assert bool((torch.remainder(held, params.lot_size) == 0).all())
        if params.t_plus_1 and params.execution == "next_open":  # daily bars: a new day every step
            assert bool((env.state.locked <= env.state.holdings).all())


def test_float32_observation_with_float64_accounting(small_market: MarketData) -> None:
    params = StockTradingParams(obs_dtype=torch.float32, episode_length=5)
    env = StockTradingVecEnv(small_market, params, num_envs=4, seed=0)
    ref = StockTradingVecEnv(small_market, replace(params, obs_dtype=None), num_envs=4, seed=0)
    obs, _ = env.reset()
    obs64, _ = ref.reset()
    assert obs.dtype == torch.float32 and obs64.dtype == torch.float64
    torch.testing.assert_close(obs, obs64.float())
    action = torch.full((4, small_market.num_tickers), 0.5)
    o32, r32, _, _, i32 = env.step(action)
    o64, r64, _, _, i64 = ref.step(action)
    assert i32["cash"].dtype == torch.float64 and torch.equal(i32["cash"], i64["cash"]) and torch.equal(r32, r64)


def test_final_obs_can_be_skipped(small_market: MarketData) -> None:
    params = StockTradingParams(episode_length=2)
    full = StockTradingVecEnv(small_market, params, num_envs=3, seed=0)
    lean = StockTradingVecEnv(small_market, params, num_envs=3, seed=0, final_obs=False)
    full.reset()
    lean.reset()
    for _ in range(2):
        action = torch.zeros(3, small_market.num_tickers)
        fo, fr, _, ftr, finfo = full.step(action)
        lo, lr, _, ltr, linfo = lean.step(action)
        assert torch.equal(fo, lo) and torch.equal(fr, lr) and torch.equal(ftr, ltr)
    assert ftr.all() and torch.equal(linfo["final_obs"], lo) and not torch.equal(finfo["final_obs"], fo)


def test_t_plus_1_on_intraday_bars(small_market: MarketData) -> None:
    """Three bars a day: shares bought on a day cannot be sold before the next day's first bar."""
    hours = np.array([10, 12, 14], dtype="timedelta64[h]")
    dates = np.array(
        [np.datetime64("2024-01-01") + np.timedelta64(i // 3, "D") + hours[i % 3] for i in range(small_market.num_dates)]
    ).astype("datetime64[ns]")
    market = replace(small_market, dates=dates, interval="2h")
    params = StockTradingParams(t_plus_1=True, random_start=False, buy_cost_pct=0.0, sell_cost_pct=0.0)
    env = StockTradingVecEnv(market, params, num_envs=1, seed=0)
    env.reset()
    buy = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    sell = torch.tensor([[-1.0, 0.0, 0.0, 0.0]])
    held = [env.step(buy)[4]["holdings"][0, 0].item()]  # fills on bar 1 (day 0)
    held.append(env.step(sell)[4]["holdings"][0, 0].item())  # bar 2, still day 0: locked
    held.append(env.step(sell)[4]["holdings"][0, 0].item())  # bar 3, day 1: sellable
    assert held == [100.0, 100.0, 0.0]
    no_rule = StockTradingVecEnv(market, replace(params, t_plus_1=False), num_envs=1, seed=0)
    no_rule.reset()
    no_rule.step(buy)
    assert no_rule.step(sell)[4]["holdings"][0, 0].item() == 0.0
