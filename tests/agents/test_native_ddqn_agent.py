"""The native Double DQN behind the Agent interface on the stock-trading env, and on tasks with a known answer."""

from __future__ import annotations

import io
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch

from finrl_lite.agents.factory import load_agent, make_agent, save_agent
from finrl_lite.agents.native.ddqn import DDQNConfig, DoubleDQN, ReplayBuffer
from finrl_lite.agents.native.trading_ddqn import NativeDDQNAgent
from finrl_lite.config import load_config
from finrl_lite.data_processors import DataProcessor
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs.base import BatchedEnv, TorchVecEnv, same_step_autoreset
from finrl_lite.envs.params import ObservationScales, StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    big = ReplayBuffer(100_000, 8, torch.device("cpu"))
    big.add(torch.ones(2, 8), torch.ones(2, dtype=torch.int64), torch.ones(2), torch.ones(2, 8), torch.zeros(2))
    written = io.BytesIO()
    torch.save(big.state_dict(), written)
    assert written.tell() < 20_000  # the two rows, not the storage behind them (about 7 MB)
    with pytest.raises(ConfigError, match="does not fit capacity 3"):
        ReplayBuffer(3, 2, torch.device("cpu")).load_state_dict(buf.state_dict())
    with pytest.raises(ConfigError, match=r"does not fit capacity 5: obs rows \(2,\), here \(4,\); next_obs rows"):
        ReplayBuffer(5, 4, torch.device("cpu")).load_state_dict(buf.state_dict())


def test_a_model_without_training_state_resets_the_env_on_learn(tmp_path: Path) -> None:
    agent = make_agent(_config(), _env(), seed=0)
    agent.learn(32)
    save_agent(agent, _config().agent, tmp_path / "m")
    loaded = load_agent(tmp_path / "m", env=_env())
    assert isinstance(loaded, NativeDDQNAgent) and loaded.ddqn.buffer is None and loaded.num_timesteps == 32
    loaded.learn(32)  # a fresh env: reset, new buffer
    assert loaded.num_timesteps == 64 and loaded.ddqn.buffer is not None and loaded.ddqn.buffer.size == 32


class _Position(NamedTuple):
    state: torch.Tensor  # [B] 0 = A, 1 = B
    steps: torch.Tensor  # [B] steps in the episode


class _Info(NamedTuple):
    final_obs: torch.Tensor


class TwoStateChain(BatchedEnv):
    """A continuing two-state MDP cut into episodes of ``horizon`` steps (time-limit truncation only).

    Action 0 ("take") pays 0.1 in A and 1 in B and leads to A; action 1 ("wait") pays 0 and leads to B.
    Episodes start in A or B at random. With discount 0.5 the optimal values solve
    ``V(A) = 0.5 V(B)``, ``V(B) = 1 + 0.5 V(A)``: ``V(A) = 2/3``, ``V(B) = 4/3``, so
    ``Q*(A) = [0.1 + V(A) / 2, V(B) / 2] = [0.4333, 0.6667]`` and ``Q*(B) = [1 + V(A) / 2, V(B) / 2] = [1.3333, 0.6667]``:
    waiting in A beats the immediate 0.1, which only bootstrapping through the truncations (from
    ``info["final_obs"]``, not from the next episode's first observation) gets right.
    """

    observation_size = 2
    num_actions = 2
    action_size, action_low, action_high = 1, 0.0, 1.0

    def __init__(self, num_envs: int, seed: int, horizon: int = 2) -> None:
        super().__init__(num_envs, "cpu", seed, "eager", autoreset=True, final_obs=True)
        self.horizon = horizon

    def _fresh(self, n: int) -> _Position:
        return _Position(torch.randint(0, 2, (n,), generator=self.generator), torch.zeros(n, dtype=torch.int64))

    def _observe(self, s: _Position) -> torch.Tensor:
        return torch.nn.functional.one_hot(s.state, 2).float()

    def _reset_state(self, keys: torch.Tensor | None) -> tuple[_Position, torch.Tensor, dict[str, torch.Tensor]]:
        s = self._fresh(self.num_envs)
        return s, self._observe(s), {}

    def _core_step(self, s: _Position, action: torch.Tensor):  # noqa: ANN202
        take = action == 0
        reward = torch.where(take, torch.where(s.state == 1, 1.0, 0.1), 0.0)
        stepped = _Position(torch.where(take, 0, 1), s.steps + 1)
        truncated = stepped.steps >= self.horizon
        state, obs, final = same_step_autoreset(stepped, truncated, lambda x: self._fresh(x.state.shape[0]), self._observe)
        return state, obs, reward, torch.zeros_like(truncated), truncated, _Info(final)


def test_double_dqn_finds_the_optimal_q_values_of_a_known_mdp() -> None:
    env = TwoStateChain(num_envs=32, seed=0)
    assert isinstance(env, TorchVecEnv)
    cfg = DDQNConfig(
        total_steps=300,
        hidden=(16,),
        gamma=0.5,
        batch_size=128,
        buffer_size=4096,
        learning_rate=1e-2,
        tau=0.1,
        target_update_interval=1,
        eps_end=0.2,
        seed=0,
        huber=False,
    )
    agent = DoubleDQN(2, 2, cfg)
    agent.learn(env, seed=0)
    q = agent.q(torch.eye(2)).detach()
    torch.testing.assert_close(q, torch.tensor([[0.1 + 1 / 3, 2 / 3], [4 / 3, 2 / 3]]), atol=0.02, rtol=0.0)
    assert agent.act(torch.eye(2)).tolist() == [1, 0]  # wait in A, take in B


def _up_and_down_market(num_dates: int = 40) -> MarketData:
    """Ticker UP gains 1% every day, DOWN loses 1%."""
    close = np.stack([100 * 1.01 ** np.arange(num_dates), 100 * 0.99 ** np.arange(num_dates)], axis=1)
    values = np.stack([close, close, close, close, np.full_like(close, 1e6)], axis=-1)
    dates = np.busday_offset("2021-01-01", np.arange(num_dates), roll="forward").astype("datetime64[ns]")
    return MarketData(
        dates=dates,
        tickers=("UP", "DOWN"),
        fields=("open", "high", "low", "close", "volume"),
        values=values,
        valid=np.ones((num_dates, 2), dtype=bool),
    )


def test_trading_ddqn_learns_to_buy_the_rising_ticker() -> None:
    market = _up_and_down_market()
    params = StockTradingParams(
        execution="close",
        episode_length=10,
        hmax=10,
        initial_amount=1e4,
        reward_scaling=1e-2,
        scales=ObservationScales(price=0.01),
    )
    env = StockTradingVecEnv(market, params, num_envs=16, seed=0)
    cfg = DDQNConfig(
        hidden=(32,), gamma=0.9, batch_size=128, buffer_size=10_000, learning_rate=3e-3, tau=0.1, eps_end=0.2, seed=0
    )
    agent = NativeDDQNAgent(env, cfg).learn(300 * env.num_envs)
    starts, _ = StockTradingVecEnv(market, params, num_envs=64, seed=1).reset()  # all cash, random start days
    action = agent.predict(starts)
    # of hold, buy or sell one ticker, buying UP is the best first move on every day
    assert torch.equal(action, torch.tensor([[1.0, 0.0]], dtype=torch.float64).expand(64, 2))
