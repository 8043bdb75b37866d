"""``execution="close"`` reproduces FinRL 0.3.7's StockTradingEnv rules on real data, to 1e-9 relative,
with the torch core (``eager``) and with the fused CPU kernel (``fused``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _finrl_reference import FinrlReference

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs.params import ObservationScales, StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv

RTOL = 1e-9


def finrl_params(threshold: float | None, initial_amount: float = 1e6) -> StockTradingParams:
    return StockTradingParams(
        hmax=100,
        initial_amount=initial_amount,
        buy_cost_pct=0.001,
        sell_cost_pct=0.001,
        reward_scaling=1e-4,
        turbulence_threshold=threshold,
        execution="close",
        random_start=False,
        ruin_fraction=0.0,
        scales=ObservationScales.identity(),
        obs_dtype=None,  # float64 observations, compared to 1e-9
    )


def random_actions(t: int, n: int, seed: int) -> np.ndarray:
    """Uniform actions, a third of them saturated at +-1 (ties at +-hmax exercise FinRL's sort order)."""
    rng = np.random.default_rng(seed)
    acts = rng.uniform(-1.5, 1.5, size=(t, n)).clip(-1.0, 1.0)
    acts[rng.uniform(size=(t, n)) < 0.2] = 0.0
    return acts


def close_rel(a: float, b: float) -> bool:
    return abs(a - b) <= RTOL * max(abs(a), abs(b), 1.0)


STEP_MODES = pytest.mark.parametrize("step_mode", ["eager", "fused"])


def run_both(
    market: MarketData, threshold: float | None, seed: int, step_mode: str, initial_amount: float = 1e6
) -> dict[str, int]:
    close = market.field("close")
    turb = market.market("turbulence")
    t_len, n = close.shape
    ref = FinrlReference(close=close, turbulence=turb, turbulence_threshold=threshold, initial_amount=initial_amount)
    ref.reset()
    env = StockTradingVecEnv(market, finrl_params(threshold, initial_amount), num_envs=1, seed=0, step_mode=step_mode)
    obs, _ = env.reset()
    feats = market.values[:, :, 5:]
    expect_obs0 = np.concatenate([[initial_amount], close[0], np.zeros(n), feats[0].T.reshape(-1)])
    np.testing.assert_allclose(obs[0].numpy(), expect_obs0, rtol=RTOL)
    actions = random_actions(t_len - 1, n, seed)
    counts = {"turbulent": 0, "cash_bound": 0, "steps": 0}
    for k in range(t_len - 1):
        reward = ref.step(actions[k].copy())
        obs, r, terminated, truncated, info = env.step(torch.from_numpy(actions[k][None]))
        assert close_rel(float(info["cash"][0]), ref.cash), (k, float(info["cash"][0]), ref.cash)
        np.testing.assert_allclose(info["holdings"][0].numpy(), ref.shares, rtol=RTOL, atol=0)
        assert close_rel(float(info["portfolio_value"][0]), ref.total_asset()), k
        assert close_rel(float(r[0]), reward), (k, float(r[0]), reward)
        assert close_rel(float(info["total_costs"][0]), ref.cost), k
        last = k == t_len - 2
        assert bool(truncated[0]) == last and not bool(terminated[0])
        if not last:  # after the last step the env has already autoreset
            state = np.concatenate([[ref.cash], close[ref.day], ref.shares, feats[ref.day].T.reshape(-1)])
            np.testing.assert_allclose(obs[0].numpy(), state, rtol=RTOL)
        counts["turbulent"] += int(info["turbulent"][0])
        counts["steps"] += 1
    assert ref.terminal
    counts["cash_bound"] = ref.cash_limited_buys
    return counts


@STEP_MODES
def test_finrl_equivalence_real_data_with_turbulence(real_market: MarketData, step_mode: str) -> None:
    turb = real_market.market("turbulence")
    threshold = float(np.quantile(turb[turb > 0], 0.9))
    counts = run_both(real_market, threshold, seed=0, step_mode=step_mode)
    assert counts["steps"] == real_market.num_dates - 1
    assert counts["turbulent"] > 20  # the rule fires, liquidates and blocks buys many times
    assert counts["cash_bound"] >= 5  # cash runs out mid-step: the buy order matters


@STEP_MODES
def test_finrl_equivalence_real_data_without_turbulence(real_market: MarketData, step_mode: str) -> None:
    counts = run_both(real_market.slice((real_market.dates[0], real_market.dates[299])), None, seed=1, step_mode=step_mode)
    assert counts["turbulent"] == 0


@STEP_MODES
@pytest.mark.parametrize("seed", [2, 3])
def test_finrl_equivalence_synthetic(seed: int, step_mode: str) -> None:
    from finrl_lite.envs.synthetic import default_market

    market = default_market(num_tickers=6, num_dates=120, num_features=2, seed=seed)
    turb = market.market("turbulence")
    counts = run_both(market, float(np.quantile(turb, 0.85)), seed=seed, step_mode=step_mode, initial_amount=3e4)
    assert counts["cash_bound"] > 30 and counts["turbulent"] > 5
