"""The CUDA path (skipped without a GPU): every env steps on the GPU without a host sync and gives the CPU's
numbers, the native agents learn there, and a training run with ``env.device=cuda`` back-tests on the CPU."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from finrl_lite.agents.native.ddqn import DDQNConfig, DoubleDQN
from finrl_lite.agents.native.ppo import NativePPO, PPOConfig
from finrl_lite.cli import app
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs import PortfolioAllocationVecEnv, PortfolioParams, StockTradingParams, StockTradingVecEnv
from finrl_lite.envs.melo.config import MeloSimConfig
from finrl_lite.envs.melo.env import MeloVecEnv

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@contextmanager
def no_host_sync() -> Iterator[None]:
    """Any operation inside that makes the host wait for the GPU raises."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def _rollout(env, actions: list[torch.Tensor]) -> list[torch.Tensor]:  # noqa: ANN001
    obs, _ = env.reset(seed=list(range(env.num_envs)))  # explicit keys: the same episode starts on every device
    out = [obs]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action.to(env.device))
        out += [obs, reward, terminated, truncated, info["final_obs"]]
    return [x.cpu() for x in out]


def _random_actions(num_envs: int, size: int, steps: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.rand(num_envs, size, generator=gen, dtype=torch.float64) * 2 - 1 for _ in range(steps)]


@pytest.fixture(scope="module")
def market() -> MarketData:
    from finrl_lite.envs.synthetic import default_market

    return default_market(num_tickers=4, num_dates=60, num_features=2, seed=3)


def _assert_gpu_steps_without_a_sync_and_match_the_cpu(make_env, steps: int) -> None:  # noqa: ANN001
    """``make_env(device)`` on the GPU: steps under the sync check, then the CPU's trajectory with the same keys."""
    cpu_env, gpu_env = make_env("cpu"), make_env("cuda")
    actions = _random_actions(cpu_env.num_envs, cpu_env.action_size, steps)  # several episodes: autoreset included
    cpu = _rollout(cpu_env, actions)
    gpu_env.reset(seed=3)
    on_gpu = [action.cuda() for action in actions]
    with no_host_sync():
        for action in on_gpu:
            gpu_env.step(action)
    gpu = _rollout(gpu_env, actions)
    for a, b in zip(cpu, gpu, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("lot_size", [1, 10])
def test_stock_trading_steps_on_the_gpu_without_a_host_sync_and_matches_the_cpu(market: MarketData, lot_size: int) -> None:
    params = StockTradingParams(episode_length=9, turbulence_threshold=15.0, lot_size=lot_size, slippage_bps=3.0)
    _assert_gpu_steps_without_a_sync_and_match_the_cpu(
        lambda device: StockTradingVecEnv(market, params, num_envs=32, device=device, step_mode="eager"), 25
    )


def test_portfolio_steps_on_the_gpu_without_a_host_sync_and_matches_the_cpu(market: MarketData) -> None:
    params = PortfolioParams(episode_length=7, lookback=5)
    _assert_gpu_steps_without_a_sync_and_match_the_cpu(
        lambda device: PortfolioAllocationVecEnv(market, params, num_envs=16, device=device), 20
    )


def test_melo_steps_on_the_gpu_without_a_host_sync() -> None:
    sim = MeloSimConfig(num_envs=4, num_symbols=3, periods_per_day=12)
    env = MeloVecEnv(sim, seed=1, device="cuda")
    obs, _ = env.reset(seed=1)
    actions = [torch.full((env.num_envs,), t % env.num_actions, device="cuda") for t in range(30)]
    with no_host_sync():
        for action in actions:  # past the end of a day: the autoreset is sync-free too
            obs, reward, terminated, truncated, info = env.step(action)
    assert obs.device.type == "cuda" and obs.shape == (env.num_envs, env.observation_size)
    assert bool(torch.isfinite(obs).all()) and bool(torch.isfinite(reward).all())


def test_native_ppo_learns_on_the_gpu_and_its_checkpoint_loads_on_the_cpu(market: MarketData, tmp_path: Path) -> None:
    env = StockTradingVecEnv(market, StockTradingParams(episode_length=9), num_envs=64, device="cuda")
    agent = NativePPO(env, PPOConfig(num_steps=8, num_minibatches=4, update_epochs=2, seed=0))
    agent.learn(2048)
    assert agent.num_timesteps >= 2048
    assert all(p.device.type == "cuda" and bool(torch.isfinite(p).all()) for p in agent.policy.parameters())
    agent.save(tmp_path / "ppo.pt")
    cpu_agent = NativePPO.load(tmp_path / "ppo.pt", env=None)
    obs, _ = env.reset(seed=0)
    gpu_action = agent.predict(obs, deterministic=True)
    cpu_action = cpu_agent.predict(obs.cpu(), deterministic=True)
    torch.testing.assert_close(gpu_action.cpu(), cpu_action, rtol=1e-5, atol=1e-5)


def test_native_ddqn_learns_on_the_gpu() -> None:
    env = MeloVecEnv(MeloSimConfig(num_envs=8, num_symbols=2, periods_per_day=10), seed=0, device="cuda")
    config = DDQNConfig(learning_starts=16, batch_size=32, seed=0)
    agent = DoubleDQN(env.observation_size, env.num_actions, config, device="cuda")
    rounds = agent.learn(env, seed=0, total_steps=64)
    assert rounds and all(torch.isfinite(torch.tensor(r["loss"])) for r in rounds if "loss" in r)
    assert agent.num_steps >= 64


def test_a_quickstart_run_on_cuda_trains_and_backtests(tmp_path: Path) -> None:
    runner = CliRunner()
    run = tmp_path / "run"
    sets = ["env.device=cuda", "train.total_timesteps=4096", "train.seeds=[0]", f"data.cache.dir={tmp_path / 'cache'}"]
    args = ["train", "--config", str(CONFIGS / "quickstart.yaml"), "--out", str(run)]
    result = runner.invoke(app, [*args, *(a for s in sets for a in ("--set", s))])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "seed_0" / "progress.json").read_text())["done"]
    result = runner.invoke(app, ["backtest", str(run), "--split", "test"])
    assert result.exit_code == 0, result.output
    assert "agent" in json.loads((run / "backtest_test.json").read_text())["test"]
