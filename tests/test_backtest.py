"""Back-tests on tiny data with hand-computed numbers: agents and baselines through the same environment."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from finrl_lite.agents.baselines import BASELINES, EqualWeightBuyAndHold, make_baseline
from finrl_lite.config import AppConfig, PortfolioEnvConfig, StockTradingEnvConfig
from finrl_lite.data_processors import DataProcessor, MarketData, Splits
from finrl_lite.errors import DataError
from finrl_lite.train.backtest import baseline_env, index_curve, run_agent, run_baseline, run_target_weights
from finrl_lite.train.pipeline import baseline_curves


def _market(open_: np.ndarray, close: np.ndarray, valid: np.ndarray | None = None, dates: np.ndarray | None = None) -> MarketData:
    t, n = close.shape
    values = np.stack([open_, np.maximum(open_, close), np.minimum(open_, close), close, np.ones_like(close)], axis=-1)
    if dates is None:
        dates = np.arange("2021-01-04", t, dtype="datetime64[D]").astype("datetime64[ns]")
    return MarketData(
        dates,
        tuple(f"T{i}" for i in range(n)),
        ("open", "high", "low", "close", "volume"),
        values,
        np.ones((t, n), bool) if valid is None else valid,
        market_fields=("index",),
        market_values=close.mean(1, keepdims=True),
    )


# Two bars a day (T+1 then locks what a fill bought for the rest of that day): day 1 bars 0-1, day 2 bars 2-3, day 3 bar 4.
HOURS = np.array(["2024-01-01T10", "2024-01-01T11", "2024-01-02T10", "2024-01-02T11", "2024-01-03T10"], dtype="datetime64[ns]")
OPEN = np.array([[10.0, 20.0], [10.0, 20.0], [12.0, 20.0], [12.0, 25.0], [14.0, 24.0]])
CLOSE = np.array([[10.0, 20.0], [11.0, 21.0], [12.0, 22.0], [13.0, 24.0], [15.0, 26.0]])
EVERY_RULE = {
    "initial_amount": 10_000.0,
    "buy_cost_pct": 0.01,
    "sell_cost_pct": 0.02,
    "min_cost": 45.0,
    "slippage_bps": 100.0,
    "lot_size": 10,
    "t_plus_1": True,
    "execution": "next_open",
}


@pytest.mark.parametrize("step_mode", ["eager", "fused"])
def test_target_weights_under_every_market_rule_by_hand(step_mode: str) -> None:
    cfg = StockTradingEnvConfig(**EVERY_RULE, step_mode=step_mode)
    weights = np.array([[0.5, 0.0], [0.5, 0.4], [0.0, 0.0], [np.nan, np.nan], [0.3, 0.3]])
    curve = run_target_weights(weights, _market(OPEN, CLOSE, dates=HOURS), cfg, "w")
    # 1: fill at bar 1's open (slipped to 10.10): 500 T0 for 5050 + fee 50.5 -> cash 4899.5; value 4899.5 + 500 * 11
    # 2: value 10899.5 at the opens; T0 454.1 -> sell 40 (lots) at 11.88 = 475.2, minimum fee 45 (not 9.504);
    #    T1 217.99 -> buy 210 at 20.20 = 4242, minimum fee 45 (not 42.42) -> cash 1042.7; value 1042.7 + 460 * 12 + 210 * 22
    # 3: sell everything: the 210 T1 bought this morning are locked (T+1), 460 T0 sell at 11.88, fee 109.296
    #    -> cash 6398.204; value 6398.204 + 210 * 24
    # 4: NaN row: no order (the lock has expired on day 3, and T1 is kept); value 6398.204 + 210 * 26
    assert curve.values.tolist() == pytest.approx([10_000.0, 10_399.5, 11_182.7, 11_438.204, 11_858.204], abs=1e-9)
    assert curve.costs.tolist() == pytest.approx([0.0, 50.5, 90.0, 109.296, 0.0], abs=1e-9)
    assert curve.traded.tolist() == pytest.approx([0.0, 5050.0, 4717.2, 5464.8, 0.0], abs=1e-9)
    assert curve.dates.tolist() == HOURS[:5].tolist()


@pytest.mark.parametrize("step_mode", ["eager", "fused"])
def test_buy_and_hold_under_every_market_rule_by_hand(step_mode: str) -> None:
    market = _market(OPEN, CLOSE, dates=HOURS)
    curve = run_baseline(EqualWeightBuyAndHold(), market, StockTradingEnvConfig(**EVERY_RULE, step_mode=step_mode))
    # targets 500 T0 and 250 T1 at the opens; T0 fills first (the larger order): 500 at 10.10, fee 50.5;
    # T1: the cash 4899.5 affords floor(4899.5 / (20.2 * 1.01)) = 240 (whole lots of 10), fee 48.48 -> cash 3.02
    assert curve.name == "buy_and_hold"
    assert curve.values.tolist() == pytest.approx(
        [
            10_000.0,
            3.02 + 500 * 11 + 240 * 21,
            3.02 + 500 * 12 + 240 * 22,
            3.02 + 500 * 13 + 240 * 24,
            3.02 + 500 * 15 + 240 * 26,
        ],
        abs=1e-9,
    )
    assert curve.costs.tolist() == pytest.approx([0.0, 98.98, 0.0, 0.0, 0.0], abs=1e-9)
    assert curve.traded.tolist() == pytest.approx([0.0, 9898.0, 0.0, 0.0, 0.0], abs=1e-9)


def test_target_weights_default_rules_by_hand() -> None:
    open_ = np.array([[10.0, 10.0], [10.0, 20.0], [12.0, 20.0]])
    close = np.array([[10.0, 10.0], [11.0, 20.0], [12.0, 22.0]])
    cfg = StockTradingEnvConfig(initial_amount=1000.0, buy_cost_pct=0.01, sell_cost_pct=0.02)
    weights = np.array([[0.5, 0.0], [np.nan, np.nan], [0.0, 0.0]])
    curve = run_target_weights(weights, _market(open_, close), cfg, "w")
    # bar 0 decides 50% in T0; fill at bar 1 open 10: 50 shares, fee 5 -> cash 495; value at close 11: 495 + 550
    assert curve.values.tolist() == pytest.approx([1000.0, 1045.0, 1095.0])
    assert curve.costs.tolist() == pytest.approx([0.0, 5.0, 0.0])
    assert curve.traded.tolist() == pytest.approx([0.0, 500.0, 0.0])


def test_portfolio_configs_price_baselines_with_fractional_shares_and_the_portfolio_cost() -> None:
    """A portfolio run: its cost on both sides, fractional shares, no lots or minimum fee; from the agent's first bar."""
    cfg = PortfolioEnvConfig(reward="log_return", lookback=2, initial_amount=10_000.0, cost_pct=0.01)
    market = _market(OPEN, CLOSE, dates=HOURS)
    env = baseline_env(cfg, market)
    assert env.params.fractional and env.params.buy_cost_pct == env.params.sell_cost_pct == 0.01
    assert env.params.lot_size == 1 and env.params.min_cost == 0.0 and not env.params.t_plus_1
    curve = run_baseline(EqualWeightBuyAndHold(), market, cfg)
    # the portfolio agent starts at bar 2 (its 2-bar covariance window); fill at bar 3's opens 12 and 25:
    # 416.67 T0 for 5000 + 50 fee, then the 4950 left buy 4950 / 25.25 = 196.04 T1 (cash limited, fee 49.01)
    t1 = 4950.0 / 25.25
    assert curve.dates.tolist() == HOURS[2:].tolist()
    assert curve.values.tolist() == pytest.approx([10_000.0, 5000 / 12 * 13 + t1 * 24, 5000 / 12 * 15 + t1 * 26], abs=1e-9)
    assert curve.costs.tolist() == pytest.approx([0.0, 50.0 + t1 * 25 * 0.01, 0.0], abs=1e-9)

    class Cash:
        def predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
            return torch.zeros(obs.shape[0], 3, dtype=torch.float64)

    assert run_agent(Cash(), market, cfg).dates.tolist() == curve.dates.tolist()


def test_turbulence_liquidation_is_the_agents_overlay_not_a_baseline_rule() -> None:
    cfg = StockTradingEnvConfig(turbulence_threshold=1.0, min_cost=2.0, lot_size=100, slippage_bps=5.0, t_plus_1=True)
    params = baseline_env(cfg, _market(OPEN, CLOSE)).params
    assert params.turbulence_threshold is None and params.action_mode == "target_weights"
    assert (params.min_cost, params.lot_size, params.slippage_bps, params.t_plus_1) == (2.0, 100, 5.0, True)


def test_target_weights_never_overspend_and_skip_invalid() -> None:
    rng = np.random.default_rng(1)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (60, 3)), axis=0))
    valid = np.ones((60, 3), bool)
    valid[20:30, 1] = False
    weights = rng.dirichlet(np.ones(3), size=60)
    cfg = StockTradingEnvConfig(initial_amount=1e4, buy_cost_pct=0.05, sell_cost_pct=0.05, fractional=True)
    curve = run_target_weights(weights, _market(close, close, valid), cfg, "w")
    assert (curve.values > 0).all() and (curve.costs >= 0).all() and curve.values.size == 60


def test_bad_weights_and_history_are_refused() -> None:
    market = _market(OPEN, CLOSE)
    with pytest.raises(DataError, match=r"target weights have shape \(4, 2\), expected \(5, 2\)"):
        run_target_weights(np.zeros((4, 2)), market, StockTradingEnvConfig(), "w")
    other = _market(OPEN, CLOSE, dates=HOURS)
    with pytest.raises(DataError, match="does not hold the bars"):
        run_baseline(EqualWeightBuyAndHold(), market, StockTradingEnvConfig(), history=other)


def test_index_curve_scales_the_index() -> None:
    close = np.array([[10.0, 30.0], [12.0, 36.0]])
    curve = index_curve(_market(close, close), 100.0)
    assert curve is not None and curve.values.tolist() == pytest.approx([100.0, 120.0])


class _AllIn:
    """Buys hmax shares of every ticker every step."""

    def __init__(self, num_tickers: int = 2) -> None:
        self.num_tickers = num_tickers

    def predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return torch.ones(obs.shape[0], self.num_tickers, dtype=torch.float64)


def test_run_agent_matches_env_accounting() -> None:
    open_ = np.array([[10.0, 10.0], [10.0, 20.0], [12.0, 20.0]])
    close = np.array([[10.0, 10.0], [11.0, 20.0], [12.0, 22.0]])
    cfg = StockTradingEnvConfig(initial_amount=10_000.0, hmax=10, buy_cost_pct=0.0, sell_cost_pct=0.0)
    curve = run_agent(_AllIn(), _market(open_, close), cfg)
    # step 1: buy 10 + 10 at opens 10 and 20 -> cash 9700, value 9700 + 110 + 200
    # step 2: buy 10 + 10 at 12 and 20 -> cash 9380, value 9380 + 20*12 + 20*22
    assert curve.values.tolist() == pytest.approx([10_000.0, 10_010.0, 10_060.0])
    assert curve.traded.tolist() == pytest.approx([0.0, 300.0, 320.0])


def test_a_ruined_episode_ends_the_curve() -> None:
    close = np.array([[10.0], [10.0], [10.0], [10.0]])
    cfg = StockTradingEnvConfig(initial_amount=1000.0, buy_cost_pct=0.5, sell_cost_pct=0.5, ruin_fraction=0.8)
    curve = run_target_weights(np.array([[1.0], [0.0], [1.0], [0.0]]), _market(close, close), cfg, "w")
    # buy 66 shares (1000 // 15): fee 330 -> value 670 < 800: ruined after the first step
    assert curve.values.tolist() == pytest.approx([1000.0, 670.0]) and curve.dates.size == 2


# ---------------------------------------------------------------- history before the split


@pytest.fixture(scope="module")
def split_market() -> MarketData:
    dp = DataProcessor("synthetic", num_tickers=5, seed=3)
    df = dp.add_indicators(dp.clean(dp.download([], "2017-01-02", "2019-06-28")), ["macd", "close_30_sma"])
    splits = Splits({"train": ("2017-01-02", "2018-12-31"), "test": ("2019-01-01", "2019-06-28")})
    return dp.to_market_data(df, splits)


def _app(**env: object) -> AppConfig:
    return AppConfig.model_validate({"env": env, "train": {"baselines": list(BASELINES)}})


def test_baselines_trade_from_the_split_first_bar_with_the_bars_before_as_history(split_market: MarketData) -> None:
    cfg = _app(initial_amount=1e6)
    test = split_market.slice("test")
    agent = run_agent(_AllIn(5), test, cfg.env)
    curves = {c.name: c for c in baseline_curves(split_market, cfg, "test")}
    for name in BASELINES:
        c = curves[name]
        assert c.dates.tolist() == agent.dates.tolist() == test.dates.tolist(), name
        assert c.traded[1] > 0, f"{name} does not trade on the split's first bar"
    # Without the history, minimum variance waits for its 60-bar covariance window inside the split.
    alone = run_baseline(make_baseline("min_variance"), test, cfg.env)
    assert (alone.traded[1:61] == 0).all() and alone.traded[61] > 0


def test_baseline_curves_never_read_bars_after_a_decision(split_market: MarketData) -> None:
    cfg = _app(initial_amount=1e6)
    test = split_market.slice("test")
    k = 40  # bar of the test split; everything after it (prices, volumes) changes
    cut = int(np.searchsorted(split_market.dates, test.dates[k])) + 1
    values = split_market.values.copy()
    values[cut:, :, :5] *= np.random.default_rng(0).uniform(0.5, 1.5, size=values[cut:, :, :5].shape)
    changed = replace(split_market, values=values)
    for name in BASELINES:
        ref = run_baseline(make_baseline(name), test, cfg.env, history=split_market)
        new = run_baseline(make_baseline(name), changed.slice("test"), cfg.env, history=changed)
        # the decision on bar k fills at bar k + 1's open (changed): everything up to bar k's close is the same
        np.testing.assert_array_equal(new.values[: k + 1], ref.values[: k + 1], err_msg=name)
        np.testing.assert_array_equal(new.traded[: k + 1], ref.traded[: k + 1], err_msg=name)
