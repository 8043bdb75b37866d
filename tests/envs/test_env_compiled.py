"""Captured / compiled steps give the same numbers as eager (CUDA graphs need a GPU; skipped without one)."""

from __future__ import annotations

import pytest
import torch

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs import PortfolioAllocationVecEnv, PortfolioParams, StockTradingParams, StockTradingVecEnv
from finrl_lite.errors import ConfigError

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _trajectory(env: StockTradingVecEnv | PortfolioAllocationVecEnv, steps: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)  # on the CPU, and explicit episode keys: the same run on every device
    obs, _ = env.reset(seed=[7 + i for i in range(env.num_envs)])
    out = [obs.clone()]
    for _ in range(steps):
        action = (torch.rand(env.num_envs, env.action_size, generator=gen, dtype=torch.float64) * 2 - 1).to(env.device)
        obs, reward, terminated, truncated, info = env.step(action)
        out += [obs.clone(), reward.clone(), terminated.clone(), truncated.clone(), info["final_obs"].clone()]
    return out


def _assert_same(a: list[torch.Tensor], b: list[torch.Tensor], exact: bool) -> None:
    for x, y in zip(a, b, strict=True):
        if exact or x.dtype == torch.bool:
            assert torch.equal(x, y)
        else:
            torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-9)


def test_cuda_graph_mode_needs_cuda(small_market: MarketData) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ConfigError, match="CUDA"):
        StockTradingVecEnv(small_market, num_envs=2, step_mode="cuda_graph")


@pytest.mark.slow
def test_compiled_step_matches_eager_on_cpu() -> None:
    from finrl_lite.envs.synthetic import default_market

    market = default_market(num_tickers=3, num_dates=40, num_features=1, seed=1)
    params = StockTradingParams(episode_length=6, turbulence_threshold=15.0)
    eager = _trajectory(StockTradingVecEnv(market, params, num_envs=8), 14)
    compiled = _trajectory(StockTradingVecEnv(market, params, num_envs=8, step_mode="compile"), 14)
    _assert_same(eager, compiled, exact=False)


@cuda
@pytest.mark.parametrize("mode", ["cuda_graph", "compile"])
def test_cuda_modes_match_eager(small_market: MarketData, mode: str) -> None:
    params = StockTradingParams(episode_length=6, turbulence_threshold=15.0, lot_size=10)
    eager = _trajectory(StockTradingVecEnv(small_market, params, num_envs=64, device="cuda"), 20)
    other = _trajectory(StockTradingVecEnv(small_market, params, num_envs=64, device="cuda", step_mode=mode), 20)
    _assert_same(eager, other, exact=mode == "cuda_graph")
    cpu = _trajectory(StockTradingVecEnv(small_market, params, num_envs=64), 20)
    _assert_same([x.cpu() for x in eager], cpu, exact=False)


@cuda
def test_cuda_graph_portfolio_matches_eager(small_market: MarketData) -> None:
    params = PortfolioParams(episode_length=6, lookback=5)
    eager = _trajectory(PortfolioAllocationVecEnv(small_market, params, num_envs=32, device="cuda"), 15)
    graph = _trajectory(PortfolioAllocationVecEnv(small_market, params, num_envs=32, device="cuda", step_mode="cuda_graph"), 15)
    _assert_same(eager, graph, exact=True)
