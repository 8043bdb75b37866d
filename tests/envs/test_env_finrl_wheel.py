"""``execution="close"`` against FinRL 0.3.7's own ``StockTradingEnv``, loaded from its installed wheel, over a whole
episode of the S&P 500 file, to 1e-9 relative (cash, shares, total asset, reward, costs and the state vector).

The peer is the real thing: ``.ci/run`` installs it with ``pip install --no-deps finrl==0.3.7``; the module file is
loaded on its own because importing the ``finrl`` package pulls in FinRL's live-trading dependencies.

Where the two may differ (README, Environments): FinRL ranks its cash-limited buys with numpy's default, unstable
``argsort``, so the order among *equal* whole-share buy orders depends on numpy's sort implementation; the actions
here have no ties among buys. FinRL also skips a trade when that ticker's first indicator equals exactly 1.0 (it reads
the wrong state slot; the data here has no such value), and starts every episode with its turbulence reading at 0.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import torch

from finrl_lite.config import load_config
from finrl_lite.data_processors import prepare_data
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs.params import ObservationScales, StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv

INDICATORS = ["macd", "boll_ub", "boll_lb", "rsi_30", "cci_30", "dx_30", "close_30_sma", "close_60_sma"]
HMAX = 100
INITIAL = 300_000.0  # small enough that cash runs out mid-step and the buy order matters
RTOL = 1e-9
SP500 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sp500_5yr_daily.csv.gz"


def finrl_env_module() -> ModuleType:
    spec = importlib.util.find_spec("finrl")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("FinRL's wheel is not installed (pip install --no-deps finrl==0.3.7)")
    path = Path(next(iter(spec.submodule_search_locations))) / "meta" / "env_stock_trading" / "env_stocktrading.py"
    module_spec = importlib.util.spec_from_file_location("finrl_wheel_env_stocktrading", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sp500_market(tmp_path_factory: pytest.TempPathFactory) -> MarketData:
    """30 tickers with a complete five-year history, FinRL's 8 indicators and turbulence, after the warm-up."""
    if not SP500.is_file():
        pytest.skip("../shared/data/sp500_5yr_daily.csv.gz not present")
    sp500_path = SP500
    raw = pd.read_csv(sp500_path, usecols=["tic", "open", "high", "low", "close", "volume"])
    counts = raw.dropna().groupby("tic").size()
    complete = sorted(counts[counts == counts.max()].index)
    tickers = complete[:: max(1, len(complete) // 30)][:30]
    cache = tmp_path_factory.mktemp("cache")
    overrides = [
        "data.source=csv",
        f"data.path={sp500_path}",
        "data.start=2013-02-08",
        "data.end=2018-02-07",
        f"data.tickers=[{', '.join(tickers)}]",
        f"data.indicators=[{', '.join(INDICATORS)}]",
        "data.vix=false",
        f"data.cache.dir={cache}",
    ]
    market = prepare_data(load_config(None, overrides)).market
    market = market.select_tickers(sorted(market.tickers))  # FinRL's frame is sorted by (date, tic)
    after_warmup = market.slice((market.dates[market.warmup], market.dates[-1]))
    assert after_warmup.warmup == 0 and after_warmup.valid.all()
    return after_warmup


def finrl_frame(market: MarketData) -> pd.DataFrame:
    frame = market.to_frame()[["date", "tic", "close", *INDICATORS, "turbulence"]]
    frame = frame.sort_values(["date", "tic"]).reset_index(drop=True)
    frame.index = frame["date"].factorize()[0]
    return frame


def untied_actions(steps: int, n: int, seed: int) -> np.ndarray:
    """Per step distinct whole-share sizes (no two buys tie), random signs, a fifth of them zero."""
    rng = np.random.default_rng(seed)
    sizes = np.stack([rng.choice(np.arange(1, HMAX + 1), size=n, replace=False) for _ in range(steps)]).astype(np.float64)
    signs = rng.choice([-1.0, 1.0], size=(steps, n))
    actions = signs * (sizes + 0.5) / HMAX  # (a * hmax).astype(int) == sign * size on both sides
    actions[rng.uniform(size=(steps, n)) < 0.2] = 0.0
    return actions


def close_rel(a: float, b: float) -> bool:
    return abs(a - b) <= RTOL * max(abs(a), abs(b), 1.0)


@pytest.mark.parametrize("step_mode", ["eager", "fused"])
def test_whole_episode_equals_finrl_wheel(sp500_market: MarketData, step_mode: str) -> None:
    market = sp500_market
    turbulence = market.market("turbulence")
    threshold = float(np.quantile(turbulence, 0.95))
    start = int(np.flatnonzero(turbulence < threshold)[0])  # FinRL reads 0 turbulence on its first day
    market = market.slice((market.dates[start], market.dates[-1]))
    assert not (market.values[:, :, market.field_index("macd")] == 1.0).any()  # FinRL's wrong-slot bug stays asleep
    t_len, n = market.num_dates, market.num_tickers

    finrl = finrl_env_module().StockTradingEnv(
        df=finrl_frame(market),
        stock_dim=n,
        hmax=HMAX,
        initial_amount=INITIAL,
        num_stock_shares=[0] * n,
        buy_cost_pct=[0.001] * n,
        sell_cost_pct=[0.001] * n,
        reward_scaling=1e-4,
        state_space=1 + 2 * n + len(INDICATORS) * n,
        action_space=n,
        tech_indicator_list=INDICATORS,
        turbulence_threshold=threshold,
        print_verbosity=10**9,
    )
    params = StockTradingParams(
        hmax=HMAX,
        initial_amount=INITIAL,
        reward_scaling=1e-4,
        turbulence_threshold=threshold,
        execution="close",
        random_start=False,
        features=tuple(INDICATORS),
        scales=ObservationScales.identity(),
        obs_dtype=None,
    )
    ours = StockTradingVecEnv(market, params, num_envs=1, seed=0, step_mode=step_mode)
    state, _ = finrl.reset(seed=0)
    obs, _ = ours.reset()
    np.testing.assert_allclose(obs[0].numpy(), np.asarray(state, dtype=np.float64), rtol=RTOL)

    actions = untied_actions(t_len - 1, n, seed=7)
    cash_limited = turbulent = 0
    for k in range(t_len - 1):
        wanted = (actions[k] * HMAX).astype(int)
        turbulent += int(finrl.turbulence >= threshold)
        state, reward, terminal, _, _ = finrl.step(actions[k].copy())
        obs, r, terminated, truncated, info = ours.step(torch.from_numpy(actions[k][None]))
        executed = finrl.actions_memory[-1]
        cash_limited += int(((executed < wanted) & (wanted > 0)).any())
        shares = np.asarray(state[1 + n : 1 + 2 * n], dtype=np.float64)
        asset = state[0] + float(np.dot(state[1 : 1 + n], shares))
        assert close_rel(float(info["cash"][0]), state[0]), (k, float(info["cash"][0]), state[0])
        np.testing.assert_allclose(info["holdings"][0].numpy(), shares, rtol=RTOL, atol=0)
        assert close_rel(float(info["portfolio_value"][0]), asset), k
        assert close_rel(float(r[0]), reward), (k, float(r[0]), reward)
        assert close_rel(float(info["total_costs"][0]), finrl.cost), k
        observed = info["final_obs"][0].numpy()
        assert close_rel(float(observed[0]), state[0])  # cash: compared on the scale of 1, as above
        np.testing.assert_allclose(observed[1:], np.asarray(state[1:], dtype=np.float64), rtol=RTOL)
        assert bool(truncated[0]) == (k == t_len - 2) and not bool(terminated[0]) and not terminal
    assert finrl.step(np.zeros(n))[2]  # FinRL's episode ends on the step after its last day
    assert t_len > 1000 and turbulent > 20 and cash_limited > 50
