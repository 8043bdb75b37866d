"""Environments refuse what they cannot run: non-finite actions (unless told they mean "hold"), a device the machine
does not have, a batch that cannot fit in memory; and they release their memory on close()."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs import base
from finrl_lite.envs.adapters import GymEnv, GymVectorEnv, SB3VecEnv
from finrl_lite.envs.base import STEP_WORKING_SETS
from finrl_lite.envs.melo.env import MeloVecEnv
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.portfolio import PortfolioAllocationVecEnv
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.errors import ConfigError


@pytest.mark.parametrize("step_mode", ["eager", "fused"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_action_is_an_error_naming_the_row(small_market: MarketData, step_mode: str, bad: float) -> None:
    env = StockTradingVecEnv(small_market, num_envs=3, seed=0, step_mode=step_mode)
    env.reset()
    action = torch.full((3, small_market.num_tickers), 0.1)
    env.step(action)
    action[2, 1] = bad
    before = env.state
    with pytest.raises(ConfigError, match=rf"action of environment row 2 is not finite \(\[0\.1.*{bad}.*nan_actions='hold'"):
        env.step(action)
    assert env.state is before  # nothing stepped
    action[0, 0] = bad
    with pytest.raises(ConfigError, match=r"row 0 is not finite .*\(and 1 other row\(s\): \[2\]\)"):
        env.step(action.numpy())  # numpy in: checked on the host before it moves


def test_nan_means_hold_only_behind_the_option(small_market: MarketData) -> None:
    actions = np.full((3, small_market.num_tickers), 0.2)
    actions[1] = np.nan
    hold = StockTradingVecEnv(small_market, StockTradingParams(nan_actions="hold"), num_envs=3, seed=0, step_mode="eager")
    hold.reset()
    _, _, _, _, info = hold.step(actions)
    assert bool((info["trades"][1] == 0).all()) and bool((info["trades"][0] > 0).all())
    with pytest.raises(ConfigError, match="nan_actions must be 'error' or 'hold'"):
        StockTradingParams(nan_actions="ignore")  # type: ignore[arg-type]


def test_the_adapters_and_the_portfolio_env_refuse_non_finite_actions_too(small_market: MarketData) -> None:
    vec = SB3VecEnv(StockTradingVecEnv(small_market, num_envs=2, seed=0))
    vec.reset()
    with pytest.raises(ConfigError, match="row 1 is not finite"):
        vec.step(np.array([[0.0] * small_market.num_tickers, [np.nan] * small_market.num_tickers], dtype=np.float32))
    gym_vec = GymVectorEnv(PortfolioAllocationVecEnv(small_market, num_envs=2, seed=0))
    gym_vec.reset(seed=0)
    scores = np.zeros((2, small_market.num_tickers + 1), dtype=np.float32)
    scores[0, 0] = np.nan
    with pytest.raises(ConfigError, match="PortfolioAllocationVecEnv: the action of environment row 0 is not finite"):
        gym_vec.step(scores)


def test_device_actions_are_checked_without_a_sync_per_step(small_market: MarketData, monkeypatch: pytest.MonkeyPatch) -> None:
    """The accelerator path (simulated on the CPU): non-finite rows accumulate on the device and are read every
    DEFERRED_ACTION_CHECKS steps, in state_dict and in close."""
    monkeypatch.setattr(base, "_on_host", lambda action: False)
    monkeypatch.setattr(base, "DEFERRED_ACTION_CHECKS", 4)
    reads: list[int] = []
    original = base.BatchedEnv.check_actions

    def counted(self: base.BatchedEnv) -> None:
        reads.append(self._steps_since_action_check)
        original(self)

    monkeypatch.setattr(base.BatchedEnv, "check_actions", counted)
    env = StockTradingVecEnv(small_market, num_envs=3, seed=0, step_mode="eager")
    env.reset()
    good = torch.full((3, small_market.num_tickers), 0.1)
    bad = good.clone()
    bad[1, 0] = torch.nan
    for _ in range(3):
        env.step(good)
    assert reads == []  # no host read yet
    env.step(good)
    assert reads == [4]  # the fourth step reads the mask once
    env.step(bad)  # not raised yet: the row is marked on the device
    with pytest.raises(ConfigError, match=r"row 1 is not finite in one of the last steps"):
        for _ in range(3):
            env.step(good)
    env.step(bad)
    with pytest.raises(ConfigError, match="row 1 is not finite"):
        env.state_dict()
    env.step(bad)
    with pytest.raises(ConfigError, match="row 1 is not finite"):
        env.close()
    assert env.state is None  # closed all the same


def test_close_releases_the_batch_and_refuses_to_step(small_market: MarketData) -> None:
    env = StockTradingVecEnv(small_market, num_envs=2, seed=0)
    env.reset()
    env.close()
    env.close()  # twice is harmless
    assert env.state is None and env.market is None
    with pytest.raises(ConfigError, match="StockTradingVecEnv is closed"):
        env.step(torch.zeros(2, small_market.num_tickers))
    with pytest.raises(ConfigError, match="is closed"):
        env.reset()
    with PortfolioAllocationVecEnv(small_market, num_envs=2, seed=0) as portfolio:
        portfolio.reset()
    assert portfolio.market is None
    melo = MeloVecEnv(seed=0)
    melo.close()
    assert melo.tables is None and melo.state is None
    for adapter in (
        SB3VecEnv(StockTradingVecEnv(small_market, num_envs=2)),
        GymVectorEnv(StockTradingVecEnv(small_market, num_envs=2)),
        GymEnv(StockTradingVecEnv(small_market, num_envs=1, autoreset=False)),
    ):
        adapter.close()
        assert adapter.env._closed  # type: ignore[attr-defined]


def test_a_device_the_machine_lacks_is_a_clear_error(small_market: MarketData) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match=r"device 'cuda': no CUDA GPU is usable here: torch .* torch\.cuda\.is_available\(\)"):
        StockTradingVecEnv(small_market, num_envs=2, device="cuda")
    with pytest.raises(ConfigError, match=r"device 'cuda:1': no CUDA GPU"):
        PortfolioAllocationVecEnv(small_market, num_envs=2, device="cuda:1")
    with pytest.raises(ConfigError, match=r"device 'gpu' is not a torch device"):
        MeloVecEnv(device="gpu")


def test_a_batch_that_cannot_fit_is_refused_before_it_is_allocated(
    small_market: MarketData, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = StockTradingVecEnv(small_market, num_envs=1, seed=0)
    one.reset()
    per_env = sum(x.element_size() * x.numel() for x in one.state) + one.reset()[0].element_size() * one.observation_size
    assert one.memory_estimate() == per_env * STEP_WORKING_SETS
    big = StockTradingVecEnv(small_market, num_envs=1_000_000, seed=0)
    assert big.memory_estimate() == 1_000_000 * one.memory_estimate()
    with pytest.raises(
        ConfigError, match=r"StockTradingVecEnv with num_envs=1000000 needs about .* GiB on cpu, more than the 1\.0 GiB"
    ):
        big.check_memory(available=2**30)
    monkeypatch.setattr("finrl_lite.envs.resources.available_memory", lambda device: 2**20)
    with pytest.raises(ConfigError, match=r"needs about .* more than the 1\.0 MiB available; lower env\.num_envs"):
        big.reset()
    assert big.state is None
    melo = MeloVecEnv(seed=0)
    drawn = melo.generator.get_state()
    assert melo.memory_estimate() > 0 and torch.equal(melo.generator.get_state(), drawn)  # estimating draws nothing
    monkeypatch.setattr("finrl_lite.envs.resources.available_memory", lambda device: melo.memory_estimate() - 1)
    with pytest.raises(ConfigError, match=f"MeloVecEnv with num_envs={melo.num_envs} needs about"):
        MeloVecEnv(seed=0)  # checked at construction, where its batch is allocated
