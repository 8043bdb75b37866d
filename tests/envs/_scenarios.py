"""Hypothesis scenarios of the stock-trading environment shared by the invariant and fused-kernel tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.synthetic import default_market


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[MarketData, StockTradingParams, np.ndarray]:
    market = default_market(
        num_tickers=draw(st.integers(2, 5)),
        num_dates=draw(st.integers(12, 40)),
        num_features=1,
        seed=draw(st.integers(0, 10_000)),
        ragged=draw(st.booleans()),
    )
    fractional = draw(st.booleans())
    params = StockTradingParams(
        hmax=draw(st.sampled_from([10.0, 100.0, 1000.0])),
        initial_amount=draw(st.sampled_from([1e3, 1e4, 1e6])),
        buy_cost_pct=draw(st.sampled_from([0.0, 0.001, 0.01])),
        sell_cost_pct=draw(st.sampled_from([0.0, 0.001, 0.01])),
        min_cost=draw(st.sampled_from([0.0, 1.0])),
        slippage_bps=draw(st.sampled_from([0.0, 5.0])),
        lot_size=1 if fractional else draw(st.sampled_from([1, 10, 100])),
        fractional=fractional,
        t_plus_1=draw(st.booleans()),
        execution=draw(st.sampled_from(["next_open", "close"])),
        turbulence_threshold=draw(st.sampled_from([None, 10.0])),
        episode_length=draw(st.sampled_from([None, 5])),
        reward=draw(st.sampled_from(["asset_change", "log_return", "differential_sharpe"])),
    )
    steps = draw(st.integers(1, 25))
    acts = draw(
        st.lists(
            st.floats(-1.2, 1.2, allow_nan=False),
            min_size=steps * 3 * market.num_tickers,
            max_size=steps * 3 * market.num_tickers,
        )
    )
    return market, params, np.asarray(acts).reshape(steps, 3, market.num_tickers)
