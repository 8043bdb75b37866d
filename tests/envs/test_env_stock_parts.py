"""Unit tests with exact numbers for the simulator, action mapper, observation builder and rewards."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from finrl_lite.envs.actions import actions_to_orders
from finrl_lite.envs.observation import stock_observation, stock_observation_names, stock_observation_size
from finrl_lite.envs.params import ObservationScales, StockTradingParams
from finrl_lite.envs.rewards import compute_reward
from finrl_lite.envs.simulator import execute_orders
from finrl_lite.envs.stock_trading import make_stock_market
from finrl_lite.errors import ConfigError

T = torch.tensor


def run(
    params: StockTradingParams,
    cash: float,
    holdings: list[float],
    orders: list[float],
    price: list[float],
    tradable: list[bool] | None = None,
    liquidate: bool = False,
    locked: list[float] | None = None,
):
    n = len(orders)
    return execute_orders(
        params,
        T([cash], dtype=torch.float64),
        T([holdings], dtype=torch.float64),
        T([locked or [0.0] * n], dtype=torch.float64),
        T([orders], dtype=torch.float64),
        T([price], dtype=torch.float64),
        T([tradable or [True] * n]),
        T([liquidate]),
    )


def test_actions_truncate_toward_zero_and_round_to_lots() -> None:
    a = T([[0.999, -0.999, 0.5, -0.004, 2.0]], dtype=torch.float64)
    assert actions_to_orders(StockTradingParams(hmax=100), a).tolist() == [[99, -99, 50, 0, 100]]
    assert actions_to_orders(StockTradingParams(hmax=1000, lot_size=100), a).tolist() == [[900, -900, 500, 0, 1000]]
    frac = actions_to_orders(StockTradingParams(hmax=10, fractional=True), a)
    assert frac[0, 0].item() == pytest.approx(9.99)


def test_buys_in_descending_order_until_cash_runs_out() -> None:
    p = StockTradingParams(buy_cost_pct=0.0, sell_cost_pct=0.0)
    f = run(p, 1000.0, [0, 0, 0], [30, 100, 100], [10.0, 20.0, 30.0])
    # ties at 100: the higher column buys first (FinRL's flipped stable argsort): col 2 gets 1000 // 30 = 33,
    # col 1 then finds 10 left (less than one share at 20), col 0 buys one share at 10
    assert f.bought.tolist() == [[1, 0, 33]]
    assert f.cash.item() == pytest.approx(0.0)
    f = run(p, 1000.0, [0, 0, 0], [30, 100, 10], [10.0, 1.0, 30.0])
    assert f.bought.tolist() == [[30, 100, 10]] and f.cash.item() == pytest.approx(300.0)


def test_sells_first_and_fees() -> None:
    p = StockTradingParams(buy_cost_pct=0.01, sell_cost_pct=0.02)
    f = run(p, 0.0, [10, 0], [-4, 50], [100.0, 50.0])
    assert f.sold.tolist() == [[4, 0]]
    proceeds = 400 * 0.98
    bought = math.floor(proceeds / (50 * 1.01))
    assert f.bought.tolist() == [[0, bought]]
    assert f.cash.item() == pytest.approx(proceeds - 50 * bought * 1.01)
    assert f.costs.item() == pytest.approx(400 * 0.02 + 50 * bought * 0.01)
    assert f.trades.item() == 2


def test_sell_never_exceeds_holdings_and_liquidation_blocks_buys() -> None:
    p = StockTradingParams(buy_cost_pct=0.0, sell_cost_pct=0.0)
    f = run(p, 100.0, [3, 7], [-10, 10], [1.0, 1.0])
    assert f.holdings.tolist() == [[0, 17]]
    f = run(p, 100.0, [3, 7], [5, 10], [1.0, 1.0], liquidate=True)
    assert f.holdings.tolist() == [[0, 0]] and f.cash.item() == 110.0


def test_untradable_ticker_is_not_traded() -> None:
    p = StockTradingParams(buy_cost_pct=0.0, sell_cost_pct=0.0)
    f = run(p, 100.0, [3, 7], [-3, 10], [1.0, 1.0], tradable=[False, False])
    assert f.holdings.tolist() == [[3, 7]] and f.cash.item() == 100.0
    f = run(p, 100.0, [3, 7], [5, 10], [1.0, 1.0], tradable=[False, True], liquidate=True)
    assert f.holdings.tolist() == [[3, 0]]


def test_lot_size_min_cost_and_slippage() -> None:
    p = StockTradingParams(lot_size=100, buy_cost_pct=0.001, min_cost=5.0, slippage_bps=10.0)
    f = run(p, 25_000.0, [0], [3000], [10.0])
    px = 10.0 * 1.001
    # 25000 // (px * 1.001) = 2495 -> 2400 shares in lots; fee max(0.1% * notional, 5)
    assert f.bought.item() == 2400
    fee = max(2400 * px * 0.001, 5.0)
    assert f.cash.item() == pytest.approx(25_000 - 2400 * px - fee)
    f = run(p, 100.0, [0], [100], [0.5])  # 100 shares cost 50.05 + a 5.0 minimum fee
    assert f.bought.item() == 100 and f.costs.item() == pytest.approx(5.0)
    f = run(p, 52.0, [0], [100], [0.5])  # 50.05 + 5 > 52: not even one lot
    assert f.bought.item() == 0 and f.cash.item() == 52.0
    f = run(p, 0.0, [100], [-100], [0.02])  # the fee is capped at the notional: cash never goes negative
    assert f.cash.item() == 0.0 and f.sold.item() == 100


def test_t_plus_1_locks_shares_bought_today() -> None:
    p = StockTradingParams(t_plus_1=True, buy_cost_pct=0.0, sell_cost_pct=0.0)
    f = run(p, 0.0, [10], [-10], [1.0], locked=[6])
    assert f.sold.item() == 4
    f = run(p, 100.0, [0], [10], [1.0])
    assert f.locked.item() == 10


def test_short_selling() -> None:
    p = StockTradingParams(short_selling=True, buy_cost_pct=0.0, sell_cost_pct=0.0)
    f = run(p, 0.0, [0], [-10], [2.0])
    assert f.holdings.item() == -10 and f.cash.item() == 20.0
    f = run(p, 20.0, [-10], [0], [3.0], liquidate=True)
    assert f.holdings.item() == 0 and f.cash.item() == -10.0
    for fractional in (False, True):  # negative cash (after covering) buys nothing, and stays what it is
        f = run(StockTradingParams(short_selling=True, fractional=fractional), -10.0, [0, 0], [5, 0], [2.0, 3.0])
        assert f.bought.tolist() == [[0.0, 0.0]] and f.cash.item() == -10.0


def test_fractional_cash_limited_buy_spends_the_cash_exactly() -> None:
    p = StockTradingParams(fractional=True, buy_cost_pct=0.001, sell_cost_pct=0.0)
    f = run(p, 1000.0, [0, 0, 0], [3.0, 2.5, 0.5], [7.0, 400.0, 0.37])
    assert f.bought[0, 0].item() == 3.0  # the largest order first, in full (21.021 with fees)
    assert f.bought[0, 1].item() == pytest.approx((1000.0 - 21.021) / 400.4, rel=1e-12)  # then what the cash allows
    assert f.cash.item() == 0.0 and f.bought[0, 2].item() == 0.0  # no residue, no dust buy after it


def test_rewards() -> None:
    begin, end = T([100.0], dtype=torch.float64), T([110.0], dtype=torch.float64)
    z = torch.zeros(1, dtype=torch.float64)
    assert compute_reward("asset_change", begin, end, z, z, reward_scaling=0.5, sharpe_eta=0.1).reward.item() == 5.0
    lr = compute_reward("log_return", begin, end, z, z, reward_scaling=0.5, sharpe_eta=0.1).reward.item()
    assert lr == pytest.approx(math.log(1.1))
    a, b = T([0.01], dtype=torch.float64), T([0.0005], dtype=torch.float64)
    out = compute_reward("differential_sharpe", begin, end, a, b, reward_scaling=1.0, sharpe_eta=0.1)
    r = 0.1
    expect = (0.0005 * (r - 0.01) - 0.5 * 0.01 * (r * r - 0.0005)) / (0.0005 - 0.0001) ** 1.5
    assert out.reward.item() == pytest.approx(expect)
    assert out.sharpe_a.item() == pytest.approx(0.01 + 0.1 * (r - 0.01))
    zero_var = compute_reward("differential_sharpe", begin, end, z, z, reward_scaling=1.0, sharpe_eta=0.1)
    assert zero_var.reward.item() == 0.0


def test_observation_layout(small_market) -> None:
    p = StockTradingParams(observe_risk=True, observe_valid=True, scales=ObservationScales(price=0.5, risk=0.1))
    m = make_stock_market(p, small_market)
    n, k = small_market.num_tickers, len(small_market.feature_fields)
    assert stock_observation_size(p, m) == 1 + 2 * n + k * n + 1 + n
    names = stock_observation_names(p, m)
    assert names[0] == "cash" and names[1] == f"close:{small_market.tickers[0]}" and names[-1].startswith("valid:")
    t = T([7])
    obs = stock_observation(p, m, t, T([2e6], dtype=torch.float64), torch.full((1, n), 50.0, dtype=torch.float64))
    assert obs.shape == (1, len(names))
    row = dict(zip(names, obs[0].tolist(), strict=True))
    tic = small_market.tickers[1]
    assert row["cash"] == pytest.approx(2.0)  # cash / initial_amount
    assert row[f"close:{tic}"] == pytest.approx(0.5 * small_market.field("close")[7, 1])
    assert row[f"holdings:{tic}"] == pytest.approx(0.5)  # shares / hmax
    assert row[f"f1:{tic}"] == pytest.approx(small_market.field("f1")[7, 1])
    assert row["turbulence"] == pytest.approx(0.1 * small_market.market("turbulence")[7])


def test_params_validation() -> None:
    with pytest.raises(ConfigError, match="lot_size"):
        StockTradingParams(lot_size=0)
    with pytest.raises(ConfigError, match="execution"):
        StockTradingParams(execution="open")  # type: ignore[arg-type]


def test_target_weights_mode() -> None:
    from finrl_lite.envs.actions import target_weights_to_orders

    p = StockTradingParams(action_mode="target_weights", lot_size=10)
    orders = target_weights_to_orders(
        p,
        T([[0.5, 0.25, 0.9, -1.0]], dtype=torch.float64),
        T([1000.0], dtype=torch.float64),
        T([[0.0, 20.0, 0.0, 5.0]], dtype=torch.float64),
        T([[10.0, 10.0, 10.0, 10.0]], dtype=torch.float64),
        T([[True, True, False, True]]),
    )
    # value 1250; weights sum 1.65 -> divided by 1.65; untradable ticker 2 keeps its (zero) holdings
    w = [0.5 / 1.65, 0.25 / 1.65]
    expect = [math.trunc(w[0] * 1250 / 10 / 10) * 10, math.trunc((w[1] * 1250 / 10 - 20) / 10) * 10, 0, -0.0]
    assert orders[0, :3].tolist() == expect[:3] and orders[0, 3].item() == 0.0  # 5 shares: less than a lot


def test_target_weights_env_reaches_weights(small_market) -> None:
    from finrl_lite.envs.stock_trading import StockTradingVecEnv

    params = StockTradingParams(action_mode="target_weights", buy_cost_pct=0.0, sell_cost_pct=0.0, random_start=False)
    env = StockTradingVecEnv(small_market, params, num_envs=1, seed=0)
    assert env.action_low == 0.0
    env.reset()
    _, _, _, _, info = env.step(torch.tensor([[0.25, 0.25, 0.25, 0.0]]))
    price = small_market.field("open")[1]
    held_value = info["holdings"][0].numpy() * price
    np.testing.assert_allclose(held_value[:3], 0.25e6, rtol=0.01)
    assert held_value[3] == 0.0
