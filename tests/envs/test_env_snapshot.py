"""`BatchedEnv.state_dict` / `load_state_dict`: a restored environment continues exactly as the original."""

from __future__ import annotations

import pytest
import torch

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs import PortfolioAllocationVecEnv, PortfolioParams
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.envs.synthetic import default_market
from finrl_lite.errors import ConfigError


def _actions(env, steps: int) -> list[torch.Tensor]:  # noqa: ANN001
    gen = torch.Generator().manual_seed(11)
    return [torch.rand(env.num_envs, env.action_size, generator=gen, dtype=torch.float64) * 2 - 1 for _ in range(steps)]


def _rollout(env, actions: list[torch.Tensor]) -> list[torch.Tensor]:  # noqa: ANN001
    out = []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out += [obs, reward, terminated, truncated, info["final_obs"]]
    return out


def _make(kind: str, market: MarketData, step_mode: str, seed: int = 0):  # noqa: ANN202
    if kind == "portfolio":
        return PortfolioAllocationVecEnv(market, PortfolioParams(episode_length=7, lookback=5), num_envs=3, seed=seed)
    params = StockTradingParams(episode_length=7, random_start=True, hmax=10)
    return StockTradingVecEnv(market, params, num_envs=3, seed=seed, step_mode=step_mode)


@pytest.mark.parametrize(("kind", "step_mode"), [("stock", "eager"), ("stock", "fused"), ("portfolio", "eager")])
def test_restored_env_continues_identically(small_market: MarketData, kind: str, step_mode: str) -> None:
    if step_mode == "fused":
        pytest.importorskip("numba")
    env = _make(kind, small_market, step_mode)
    env.reset(seed=4)
    _rollout(env, _actions(env, 5))
    snapshot = env.state_dict()
    assert all(t.device.type == "cpu" for t in snapshot["state"].values())
    actions = _actions(env, 20)  # crosses several autoresets (episodes of 7 bars, random starts)
    expected = _rollout(env, actions)

    fresh = _make(kind, small_market, step_mode, seed=99)  # another seed, never reset: the snapshot sets both
    fresh.load_state_dict(snapshot)
    for got, want in zip(_rollout(fresh, actions), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    env.load_state_dict(snapshot)  # back in time on the same instance
    for got, want in zip(_rollout(env, actions), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_snapshot_before_reset_and_mismatches(small_market: MarketData) -> None:
    env = _make("stock", small_market, "eager")
    blank = env.state_dict()
    assert blank["state"] is None
    env.reset()
    env.load_state_dict(blank)
    with pytest.raises(ConfigError, match="call reset"):
        env.step(torch.zeros(3, env.action_size))

    env.reset(seed=1)
    snapshot = env.state_dict()
    other = StockTradingVecEnv(small_market, StockTradingParams(episode_length=7), num_envs=2, seed=0)
    with pytest.raises(ConfigError, match="holds 3 environments; this one has 2"):
        other.load_state_dict(snapshot)
    narrow = default_market(num_tickers=2, num_dates=60, num_features=2, seed=3)
    with pytest.raises(
        ConfigError, match=r"field 'holdings' is torch.float64 \(3, 4\); this environment's is torch.float64 \(3, 2\)"
    ):
        _make("stock", narrow, "eager").load_state_dict(snapshot)
    portfolio = _make("portfolio", small_market, "eager")
    with pytest.raises(ConfigError, match="state fields"):
        portfolio.load_state_dict(snapshot)
    with pytest.raises(ConfigError, match="taken on cuda"):
        env.load_state_dict({**snapshot, "device": "cuda"})
