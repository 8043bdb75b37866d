"""The native Double DQN behind the Agent interface on the stock-trading env."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from finrl_lite.agents.factory import load_agent, make_agent, save_agent
from finrl_lite.agents.native.ddqn import ReplayBuffer
from finrl_lite.agents.native.trading_ddqn import NativeDDQNAgent
from finrl_lite.config import load_config
from finrl_lite.data_processors import DataProcessor
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _env(seed: int = 0) -> StockTradingVecEnv:
    dp = DataProcessor("synthetic", num_tickers=3, seed=2)
    market = dp.to_market_data(dp.add_indicators(dp.clean(dp.download([], "2019-01-01", "2019-12-31")), ["macd"]))
    return StockTradingVecEnv(market, StockTradingParams(episode_length=20), num_envs=8, seed=seed)


def _config(params: str = "{batch_size: 16, buffer_size: 500, train_frequency: 2}"):  # noqa: ANN202
    return load_config(REPO / "configs" / "ddqn.yaml", [f"agent.params={params}"])


def test_tiny_budget_predict_save_load(tmp_path: Path) -> None:
    env = _env()
    cfg = _config()
    agent = make_agent(cfg, env, seed=0)
    seen = []
    agent.learn(160, callback=lambda p: seen.append(p.steps))
    assert agent.num_timesteps == 160 and seen[-1] == 160  # type: ignore[attr-defined]
    obs = torch.rand(5, env.observation_size, dtype=torch.float64)
    action = agent.predict(obs)
    assert action.shape == (5, 3) and set(action.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert (action.abs().sum(1) <= 1).all()  # one trade per step at most
    save_agent(agent, cfg.agent, tmp_path / "m")
    loaded = load_agent(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(obs.numpy()), action.numpy())


def test_building_and_training_leave_the_global_rng_alone() -> None:
    torch.manual_seed(7)
    before = torch.get_rng_state()
    make_agent(_config(), _env(), seed=0).learn(64)
    assert torch.equal(torch.get_rng_state(), before)


class _Interrupt(Exception):
    pass


def test_interrupted_learn_resumes_exactly(tmp_path: Path) -> None:
    # 30 batched steps (240 / 8 envs) in rounds of 3; epsilon decays over the first half, buffer wraps (100 < 240)
    cfg = _config("{batch_size: 16, buffer_size: 100, train_frequency: 3, gradient_steps: 2, eps_fraction: 0.5}")
    straight, epsilons = make_agent(cfg, _env(), seed=0), []
    straight.learn(240, callback=lambda p: epsilons.append(p.extra["epsilon"]))
    assert epsilons[-1] == pytest.approx(cfg.agent.params.get("eps_end", 0.05))

    env = _env()
    agent = make_agent(cfg, env, seed=0)

    def interrupt(p) -> None:  # noqa: ANN001
        if p.steps >= 96:
            save_agent(agent, cfg.agent, tmp_path / "checkpoint", training_state=True)
            torch.save(env.state_dict(), tmp_path / "env.pt")
            raise _Interrupt

    with pytest.raises(_Interrupt):
        agent.learn(240, callback=interrupt)
    env_copy = _env(seed=5)
    env_copy.load_state_dict(torch.load(tmp_path / "env.pt", weights_only=True))
    resumed, resumed_epsilons = load_agent(tmp_path / "checkpoint", env=env_copy), []
    assert resumed.num_timesteps == 96  # type: ignore[attr-defined]
    resumed.learn(240 - 96, callback=lambda p: resumed_epsilons.append(p.extra["epsilon"]))
    assert resumed_epsilons == epsilons[-len(resumed_epsilons) :]
    a, b = resumed.ddqn, straight.ddqn  # type: ignore[attr-defined]
    for net in ("q", "q_target"):
        for x, y in zip(getattr(a, net).state_dict().values(), getattr(b, net).state_dict().values(), strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert (a.gradient_updates, a.num_steps, a.buffer.pos, a.buffer.size) == (b.gradient_updates, 30, b.buffer.pos, 100)
    assert torch.equal(a.buffer.obs, b.buffer.obs) and torch.equal(a.generator.get_state(), b.generator.get_state())
    lean = torch.load(straight.save(tmp_path / "model.pt"), weights_only=True)
    assert "training_state" not in lean and lean["num_transitions"] == 240


def test_replay_buffer_state_round_trip_and_mismatch() -> None:
    buf = ReplayBuffer(5, 2, torch.device("cpu"))
    for start in (0, 3, 6):
        x = torch.arange(start, start + 3, dtype=torch.float32)
        buf.add(torch.stack([x, -x], 1), x.long(), x, torch.stack([x, x], 1), torch.zeros(3))
    copy = ReplayBuffer(5, 2, torch.device("cpu"))
    copy.load_state_dict(buf.state_dict())
    assert (copy.pos, copy.size) == (buf.pos, buf.size) == (4, 5)
    for field in ("obs", "next_obs", "action", "reward", "terminated"):
        assert torch.equal(getattr(copy, field), getattr(buf, field))
    partial = ReplayBuffer(5, 2, torch.device("cpu"))
    partial.add(torch.ones(2, 2), torch.ones(2, dtype=torch.int64), torch.ones(2), torch.ones(2, 2), torch.zeros(2))
    assert partial.state_dict()["obs"].shape == (2, 2)  # only the filled rows are saved
    with pytest.raises(ConfigError, match="does not fit capacity 3"):
        ReplayBuffer(3, 2, torch.device("cpu")).load_state_dict(buf.state_dict())
    with pytest.raises(ConfigError, match=r"width \(2,\) does not fit capacity 5, width \(4,\)"):
        ReplayBuffer(5, 4, torch.device("cpu")).load_state_dict(buf.state_dict())


def test_a_model_without_training_state_resets_the_env_on_learn(tmp_path: Path) -> None:
    agent = make_agent(_config(), _env(), seed=0)
    agent.learn(32)
    save_agent(agent, _config().agent, tmp_path / "m")
    loaded = load_agent(tmp_path / "m", env=_env())
    assert isinstance(loaded, NativeDDQNAgent) and loaded.ddqn.buffer is None and loaded.num_timesteps == 32
    loaded.learn(32)  # a fresh env: reset, new buffer
    assert loaded.num_timesteps == 64 and loaded.ddqn.buffer is not None and loaded.ddqn.buffer.size == 32
