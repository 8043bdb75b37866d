"""The full-information Double DQN: targets by hand, learning every action at once, exact save and load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from finrl_lite.agents.native.ddqn import DDQNConfig
from finrl_lite.agents.native.full_information import (
    FullInformationBatch,
    FullInformationBuffer,
    FullInformationDQN,
    full_information_targets,
)
from finrl_lite.envs.melo.config import MeloEnvConfig, MeloSimConfig
from finrl_lite.envs.melo.env import MeloVecEnv
from finrl_lite.errors import ConfigError


def test_targets_by_hand(linear: Callable[[list[list[float]], list[float]], nn.Linear]) -> None:
    online = linear([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    target = linear([[2.0, 0.0], [0.0, -1.0]], [0.0, 0.0])
    batch = FullInformationBatch(
        obs=torch.zeros(1, 2),
        next_obs=torch.tensor([[5.0, 1.0]]),
        rewards=torch.tensor([[1.0, 2.0]]),
        next_values=torch.tensor([[0.5, 3.0]]),  # entry 0 of the next observation after action 0 / 1
        terminated=torch.zeros(1),
    )
    y = full_information_targets(online, target, batch, gamma=0.5, column=0)
    # after action 0: s' = [0.5, 1], online Q = [0.5, 1] -> a* = 1, Q_target = -1 -> y = 1 + 0.5 * -1 = 0.5
    # after action 1: s' = [3, 1],   online Q = [3, 1]   -> a* = 0, Q_target = 6  -> y = 2 + 0.5 * 6 = 5
    assert torch.allclose(y, torch.tensor([[0.5, 5.0]]))
    assert torch.equal(full_information_targets(online, target, batch, gamma=0.0, column=0), batch.rewards)
    done = batch._replace(terminated=torch.ones(1))
    assert torch.equal(full_information_targets(online, target, done, gamma=0.5, column=0), batch.rewards)


class _FullInformationBandit:
    """A batched contextual bandit that reports every action's reward: action k pays ``obs[:, 0] * (k - 1)``."""

    num_actions = 3
    observation_size = 2
    action_size, action_low, action_high = 1, 0.0, 2.0
    action_obs_column = 1

    def __init__(self, num_envs: int = 16) -> None:
        self.num_envs, self.device = num_envs, torch.device("cpu")
        self.gen = torch.Generator().manual_seed(0)
        self.obs = self._draw()

    def _draw(self) -> Tensor:
        return torch.randn(self.num_envs, 2, generator=self.gen)

    def reset(self, seed: int | None = None) -> tuple[Tensor, dict[str, Any]]:
        return self.obs, {}

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        every = self.obs[:, :1] * torch.tensor([[-1.0, 0.0, 1.0]])
        reward = every.gather(1, action.unsqueeze(1)).squeeze(1)
        final, self.obs = self.obs, self._draw()
        done = torch.ones(self.num_envs, dtype=torch.bool)
        info = {"final_obs": final, "action_rewards": every, "action_next_values": final[:, 1:].expand(-1, 3)}
        return self.obs, reward, done, torch.zeros_like(done), info


def test_learns_every_action_from_every_transition() -> None:
    """Fitting all three actions' rewards, the Q-values approach them, also for actions never taken (epsilon 0)."""
    cfg = DDQNConfig(
        total_steps=60,
        hidden=(32,),
        batch_size=64,
        train_frequency=5,
        gradient_steps=20,
        learning_rate=3e-3,
        eps_start=0.0,
        eps_end=0.0,
    )
    agent = FullInformationDQN(2, 3, cfg)
    assert agent.cfg.gamma > 0 and agent._empty_buffer().fields == ("obs", "next_obs", "rewards", "next_values", "terminated")
    history = agent.learn(_FullInformationBandit())
    assert len(history) == 12 and agent.buffer is not None and agent.buffer.size == 60 * 16
    obs = torch.tensor([[1.5, 0.0], [-1.0, 0.3]])
    q = agent.q(obs)
    assert torch.allclose(q, obs[:, :1] * torch.tensor([[-1.0, 0.0, 1.0]]), atol=0.2)
    assert agent.act(obs).tolist() == [2, 0]


def test_refuses_an_env_without_every_actions_outcome() -> None:
    env = MeloVecEnv(MeloSimConfig(num_envs=1, periods_per_day=4), seed=0)
    agent = FullInformationDQN(env.observation_size, env.num_actions, DDQNConfig(total_steps=2, batch_size=4))
    with pytest.raises(ConfigError, match="counterfactual=True"):
        agent.learn(env)


def test_buffer_wraps_and_refuses_another_shape() -> None:
    buf = FullInformationBuffer(5, 2, 3, torch.device("cpu"))
    for start in (0, 3):
        x = torch.arange(start, start + 3, dtype=torch.float32)
        buf.add(
            FullInformationBatch(
                x.view(3, 1).expand(3, 2), x.view(3, 1).expand(3, 2), x.view(3, 1).expand(3, 3), x.view(3, 1).expand(3, 3), x
            )
        )
    assert buf.size == 5 and buf.pos == 1 and sorted(buf.terminated.tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    other = FullInformationBuffer(5, 2, 4, torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"does not fit capacity 5: rewards rows \(3,\), here \(4,\)"):
        other.load_state_dict(buf.state_dict())
    lean = FullInformationBuffer(5, 2, 3, torch.device("cpu"), with_next=False)  # gamma = 0 needs no next state
    lean.load_state_dict(buf.state_dict())
    assert "next_obs" not in lean.fields and set(lean.state_dict()) == {"pos", "size", "obs", "rewards", "terminated"}
    assert torch.equal(lean.sample(4, torch.Generator().manual_seed(0)).next_values, torch.zeros(4, 0))
    with pytest.raises(ConfigError, match="next_obs rows missing"):
        buf.load_state_dict(lean.state_dict())


def test_save_and_load_continue_exactly(tmp_path: Path) -> None:
    sim = MeloSimConfig(num_envs=1, periods_per_day=6)
    env_cfg = MeloEnvConfig(action_mode="grid", reward_mode="pooled", observe_regime=True, observe_stats_at="baseline")
    cfg = DDQNConfig(total_steps=24, hidden=(8,), batch_size=16, train_frequency=6, gradient_steps=2, gamma=0.5, seed=3)

    def fresh() -> tuple[MeloVecEnv, FullInformationDQN]:
        env = MeloVecEnv(sim, env_cfg, seed=4, counterfactual=True)
        return env, FullInformationDQN(env.observation_size, env.num_actions, cfg)

    env, whole = fresh()
    whole.learn(env, seed=4)
    env, half = fresh()

    def stop_at_half(summary: dict[str, float]) -> None:
        if summary["step"] >= 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        half.learn(env, seed=4, callback=stop_at_half)
    half.save(tmp_path / "a.pt", training_state=True)
    snapshot = env.state_dict()
    env2, _ = fresh()
    env2.load_state_dict(snapshot)
    resumed = FullInformationDQN.load(tmp_path / "a.pt")
    assert isinstance(resumed.buffer, FullInformationBuffer) and resumed.buffer.size == 12 * 3
    resumed.learn(env2, total_steps=12)
    for p, q in zip(whole.q.parameters(), resumed.q.parameters(), strict=True):
        assert torch.equal(p, q)


def test_learning_rate_decays_linearly_over_the_schedule() -> None:
    cfg = DDQNConfig(total_steps=10, learning_rate=1e-3, learning_rate_final=1e-4, hidden=(4,), batch_size=4, train_frequency=5)
    agent = FullInformationDQN(2, 3, cfg)
    assert agent.learning_rate() == pytest.approx(1e-3)
    agent.num_steps, agent.horizon = 5, 10
    assert agent.learning_rate() == pytest.approx(5.5e-4)
    seen: list[float] = []
    agent.learn(_FullInformationBandit(), total_steps=10, callback=lambda s: seen.append(agent.optimizer.param_groups[0]["lr"]))
    assert seen == pytest.approx([1e-3 + (10 / 15) * (1e-4 - 1e-3), 1e-4])  # rounds end at steps 10 and 15 of horizon 15
    constant = FullInformationDQN(2, 3, DDQNConfig(learning_rate=2e-3))
    constant.num_steps = 99
    assert constant.learning_rate() == 2e-3
