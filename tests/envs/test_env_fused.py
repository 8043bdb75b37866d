"""The fused CPU step equals the torch core on every option; ``auto`` picks it only where it applies; the
recycled output memory is never written while anything still references it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from _scenarios import scenarios
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.recycling import TensorRecycler
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.envs.synthetic import default_market
from finrl_lite.errors import ConfigError

INT_KEYS = ("trades", "turbulent")


def trajectory(env: StockTradingVecEnv, actions: np.ndarray, seeds: list[int]) -> list[dict[str, torch.Tensor]]:
    obs, _ = env.reset(seed=seeds)
    out = [{"obs": obs.clone()}]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(torch.from_numpy(a))
        assert env.state is not None
        record = {"obs": obs, "reward": reward, "terminated": terminated, "truncated": truncated, **info}
        record.update({f"state.{k}": v for k, v in env.state._asdict().items()})
        out.append({k: v.clone() for k, v in record.items()})
    return out


def assert_same_trajectory(
    eager: list[dict[str, torch.Tensor]], fused: list[dict[str, torch.Tensor]], money: float, fractional: bool = False
) -> None:
    """Integers, flags, holdings and bars exactly; money to rounding (sums run in another order).

    Fractional shares: a buy that leaves a one-ulp cash residue lets the next ticker buy ~1e-13 shares,
    and that residue depends on the order of the sums, so holdings compare to 1e-9 shares and trade
    counts are not compared.
    """
    # Money compares on the scale of the largest sum the episode reached: a cash-limited buy against 1e20 of short
    # proceeds (hmax=1e19) leaves a residue of one float64 step at that size (16384), whichever order sums run in.
    notional = max(
        [money]
        + [
            float(r[key].abs().max())
            for r in eager
            for key in ("cash", "portfolio_value", "state.cash", "state.value")
            if key in r
        ]
    )
    for k, (a, b) in enumerate(zip(eager, fused, strict=True)):
        assert a.keys() == b.keys()
        for key in a:
            x, y = a[key], b[key]
            assert x.dtype == y.dtype and x.shape == y.shape, (k, key)
            if fractional and ("holdings" in key or key == "trades"):
                if key != "trades":
                    torch.testing.assert_close(y, x, rtol=1e-9, atol=1e-9, msg=f"step {k}, {key}")
            elif "holdings" in key and x.dtype.is_floating_point and float(x.abs().max()) >= 2.0**53:
                # whole shares beyond 2**53 (hmax=1e19) are not exact floats: the sums' order shows in the last bits
                torch.testing.assert_close(y, x, rtol=1e-9, atol=0.0, msg=f"step {k}, {key}")
            elif not x.dtype.is_floating_point or "holdings" in key or key in INT_KEYS:
                assert torch.equal(x, y), (k, key, x, y)
            else:
                torch.testing.assert_close(y, x, rtol=1e-9, atol=1e-9 * notional, msg=f"step {k}, {key}")


def intraday(market: MarketData, bars_per_day: int) -> MarketData:
    """The same bars relabelled ``bars_per_day`` to a day (T+1 then locks shares within a day)."""
    hours = np.arange(bars_per_day).astype("timedelta64[h]") + np.timedelta64(10, "h")
    dates = [
        np.datetime64("2024-01-01") + np.timedelta64(i // bars_per_day, "D") + hours[i % bars_per_day]
        for i in range(market.num_dates)
    ]
    return replace(market, dates=np.array(dates).astype("datetime64[ns]"), interval="1h")


@st.composite
def fused_scenarios(draw: st.DrawFn) -> tuple[MarketData, StockTradingParams, np.ndarray]:
    market, params, actions = draw(scenarios())
    bars_per_day = draw(st.sampled_from([1, 3]))
    if bars_per_day > 1:
        market = intraday(market, bars_per_day)
    params = replace(
        params,
        short_selling=draw(st.booleans()),
        action_mode=draw(st.sampled_from(["shares", "target_weights"])),
        observe_risk=draw(st.booleans()),
        observe_valid=draw(st.booleans()),
        ruin_fraction=draw(st.sampled_from([0.0, 0.9])),
        obs_dtype=draw(st.sampled_from([None, torch.float32])),
        random_start=draw(st.booleans()),
        hmax=draw(st.sampled_from([params.hmax, 1e19])),  # orders beyond int64 stay floats
    )
    return market, params, actions


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(fused_scenarios(), st.booleans(), st.booleans())
def test_fused_equals_torch_core(
    scenario: tuple[MarketData, StockTradingParams, np.ndarray], autoreset: bool, final_obs: bool
) -> None:
    market, params, actions = scenario
    if params.action_mode == "target_weights":
        actions = np.where(actions < -1.0, np.nan, np.abs(actions))  # NaN: keep the ticker's shares
        params = replace(params, nan_actions="hold")
    seeds = [1, 2, 3]
    runs = {
        mode: trajectory(
            StockTradingVecEnv(market, params, num_envs=3, step_mode=mode, autoreset=autoreset, final_obs=final_obs),
            actions,
            seeds,
        )
        for mode in ("eager", "fused")
    }
    assert_same_trajectory(runs["eager"], runs["fused"], params.initial_amount, params.fractional)


def test_fused_equals_torch_core_on_a_large_parallel_batch() -> None:
    """Hundreds of environments run in parallel chunks; 1 and 2 threads give bitwise the same numbers."""
    market = default_market(num_tickers=6, num_dates=120, num_features=2, seed=9, ragged=True)
    params = StockTradingParams(episode_length=15, turbulence_threshold=12.0, min_cost=1.0, t_plus_1=True, initial_amount=2e4)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(40, 300, market.num_tickers))
    seeds = list(range(300))
    eager = trajectory(StockTradingVecEnv(market, params, num_envs=300, step_mode="eager"), actions, seeds)
    threads = torch.get_num_threads()
    try:
        fused = {}
        for count in (1, 2):
            torch.set_num_threads(count)
            fused[count] = trajectory(StockTradingVecEnv(market, params, num_envs=300, step_mode="fused"), actions, seeds)
    finally:
        torch.set_num_threads(threads)
    assert_same_trajectory(eager, fused[2], params.initial_amount)
    for a, b in zip(fused[1], fused[2], strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert sum(int(x["truncated"].sum()) for x in eager[1:]) > 300  # many autoresets


def test_auto_picks_fused_only_on_cpu_with_float64_accounting(small_market: MarketData) -> None:
    assert StockTradingVecEnv(small_market, num_envs=2).step_mode == "fused"
    f32 = StockTradingParams(dtype=torch.float32)
    assert StockTradingVecEnv(small_market, f32, num_envs=2).step_mode == "eager"
    with pytest.raises(ConfigError, match="float64"):
        StockTradingVecEnv(small_market, f32, num_envs=2, step_mode="fused")
    with pytest.raises(ConfigError, match="CPU kernel"):
        StockTradingVecEnv(small_market, num_envs=2, device="meta", step_mode="fused")


def test_outputs_held_by_the_caller_are_never_overwritten() -> None:
    market = default_market(num_tickers=8, num_dates=60, num_features=4, seed=1)
    env = StockTradingVecEnv(market, StockTradingParams(episode_length=3), num_envs=2048, seed=0)  # obs > 256 KiB
    env.reset()
    action = torch.full((2048, 8), 0.3)
    kept_obs, _, _, _, kept_info = env.step(action)
    view = kept_info["final_obs"][5]
    copies = (kept_obs.clone(), view.clone())
    seen = set()
    for _ in range(6):
        obs, _, _, _, info = env.step(action)
        seen.add(obs.data_ptr())
        del obs, info
    assert torch.equal(kept_obs, copies[0]) and torch.equal(view, copies[1])
    assert kept_obs.data_ptr() not in seen
    assert len(seen) <= 2  # dropped outputs were recycled


def test_recycler_reuses_only_unreferenced_storage() -> None:
    recycler = TensorRecycler(min_bytes=1024)
    first = recycler.empty((64, 64), torch.float32)
    ptr = first.data_ptr()
    second = recycler.empty((64, 64), torch.float32)
    assert second.data_ptr() != ptr  # first is still held
    as_numpy = first.numpy()
    del first
    assert recycler.empty((64, 64), torch.float32).data_ptr() != ptr  # a numpy view still holds it
    del as_numpy
    again = recycler.empty((64, 64), torch.float32)
    assert again.data_ptr() == ptr and again.shape == (64, 64) and again.is_contiguous()
    row = again[3]
    del again
    assert recycler.empty((64, 64), torch.float32).data_ptr() != ptr  # a view of it is alive
    del row
    small = recycler.empty((4,), torch.float32)
    assert small.shape == (4,)  # below min_bytes: plain allocation


def test_config_step_mode_reaches_the_environment(small_market: MarketData) -> None:
    from finrl_lite.config import PortfolioEnvConfig, StockTradingEnvConfig
    from finrl_lite.train.environment import make_env

    assert make_env(StockTradingEnvConfig(num_envs=4, episode_length=20), small_market).step_mode == "fused"
    assert make_env(StockTradingEnvConfig(num_envs=4, episode_length=20, step_mode="eager"), small_market).step_mode == "eager"
    portfolio = PortfolioEnvConfig(num_envs=4, episode_length=20)
    assert make_env(portfolio, small_market).step_mode == "eager"  # no fused kernel: auto falls back


def test_nan_actions_count_as_zero_in_both_cores(small_market: MarketData) -> None:
    params = StockTradingParams(episode_length=6, nan_actions="hold")
    actions = np.random.default_rng(3).uniform(0, 1, size=(12, 4, small_market.num_tickers))
    actions[actions > 0.7] = np.nan
    zeroed = np.nan_to_num(actions, nan=0.0)
    runs = [
        trajectory(StockTradingVecEnv(small_market, params, num_envs=4, step_mode=mode), a, [0, 1, 2, 3])
        for mode, a in (("eager", actions), ("fused", actions), ("eager", zeroed))
    ]
    assert_same_trajectory(runs[0], runs[1], params.initial_amount)
    assert_same_trajectory(runs[0], runs[2], params.initial_amount)
    assert all(bool(torch.isfinite(x["cash"]).all()) for x in runs[1][1:])


@pytest.mark.parametrize("fractional", [False, True])
def test_nan_target_weights_keep_the_holdings_in_both_cores(small_market: MarketData, fractional: bool) -> None:
    """A NaN target weight is no order: the ticker keeps its shares (a NaN row holds the whole portfolio)."""
    params = StockTradingParams(
        action_mode="target_weights", episode_length=6, fractional=fractional, min_cost=5.0, nan_actions="hold"
    )
    actions = np.random.default_rng(3).uniform(0, 0.3, size=(12, 4, small_market.num_tickers))
    actions[np.random.default_rng(4).uniform(size=actions.shape) > 0.6] = np.nan
    actions[2] = np.nan  # whole rows: hold
    runs = [
        trajectory(StockTradingVecEnv(small_market, params, num_envs=4, step_mode=mode), actions, [0, 1, 2, 3])
        for mode in ("eager", "fused")
    ]
    assert_same_trajectory(runs[0], runs[1], params.initial_amount, fractional)
    for k in range(1, len(actions)):  # step k starts from the (possibly just reset) state after step k - 1
        keep = torch.from_numpy(np.isnan(actions[k]))
        assert torch.equal(runs[0][k + 1]["holdings"][keep], runs[0][k]["state.holdings"][keep])
    assert bool((runs[0][3]["costs"] == 0).all()) and bool((runs[0][3]["trades"] == 0).all())  # the NaN row: no trade
    assert sum(int(x["trades"].sum()) for x in runs[0][1:]) > 20  # the finite weights do trade


def test_actions_of_another_shape_are_refused(small_market: MarketData) -> None:
    env = StockTradingVecEnv(small_market, num_envs=3, seed=0)
    env.reset()
    for shape in [(3, 1), (1, small_market.num_tickers), (small_market.num_tickers,), (4, small_market.num_tickers)]:
        with pytest.raises(ConfigError, match="action has shape"):
            env.step(torch.zeros(shape))


def test_recycler_keeps_held_storage_objects_and_shared_memory() -> None:
    recycler = TensorRecycler(min_bytes=1024)
    first = recycler.empty((64, 64), torch.float32)
    ptr = first.data_ptr()
    storage = first.untyped_storage()  # the very object the pool keeps
    del first
    assert recycler.empty((64, 64), torch.float32).data_ptr() != ptr
    del storage
    shared = recycler.empty((64, 64), torch.float32)
    assert shared.data_ptr() == ptr
    shared.share_memory_()  # what torch.multiprocessing does before sending it: in place
    ptr = shared.data_ptr()
    del shared
    assert all(recycler.empty((64, 64), torch.float32).data_ptr() != ptr for _ in range(3))


def test_market_moved_to_shared_memory_is_read_where_it_now_lives(small_market: MarketData) -> None:
    params = StockTradingParams(execution="close", episode_length=8)
    envs = {mode: StockTradingVecEnv(small_market, params, num_envs=2, seed=0, step_mode=mode) for mode in ("eager", "fused")}
    action = torch.full((2, small_market.num_tickers), 0.4)
    for env in envs.values():
        env.reset(seed=[1, 2])
        env.step(action)
        for tensor in (env.market.open, env.market.close, env.market.obs_table):
            tensor.share_memory_()  # in place: new memory, the old block freed
    out = {mode: env.step(action) for mode, env in envs.items()}
    assert torch.equal(out["eager"][1], out["fused"][1]) and torch.equal(out["eager"][0], out["fused"][0])
