"""The native Double DQN: target formula on a tiny batch, target updates, schedule, buffer, smoke runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from finrl_lite.agents.native.ddqn import (
    DDQNConfig,
    DoubleDQN,
    ReplayBatch,
    ReplayBuffer,
    double_dqn_targets,
    linear_epsilon,
)
from finrl_lite.envs.base import TorchVecEnv
from finrl_lite.envs.melo.config import MeloSimConfig
from finrl_lite.envs.melo.env import MeloVecEnv
from finrl_lite.errors import ConfigError


def test_double_dqn_target_by_hand(linear: Callable[[list[list[float]], list[float]], nn.Linear]) -> None:
    online = linear([[1, 0], [0, 1], [1, 1]], [0, 0, 0])
    target = linear([[2, 0], [0, 3], [-1, -1]], [0.5, 0, 0])
    batch = ReplayBatch(
        obs=torch.zeros(2, 2),
        action=torch.zeros(2, dtype=torch.int64),
        reward=torch.tensor([1.0, 0.5]),
        next_obs=torch.tensor([[1.0, 2.0], [3.0, -1.0]]),
        terminated=torch.tensor([0.0, 1.0]),
    )
    y = double_dqn_targets(online, target, batch, gamma=0.9)
    # s'1: online Q = [1, 2, 3] -> a* = 2, Q_target(s'1, 2) = -3   => y = 1 + 0.9 * -3 = -1.7
    #      (vanilla DQN would bootstrap from max Q_target = 6)
    # s'2: terminated                                               => y = 0.5
    assert torch.allclose(y, torch.tensor([-1.7, 0.5]))


def test_soft_and_hard_target_updates() -> None:
    agent = DoubleDQN(3, 2, DDQNConfig(hidden=(4,), tau=0.25, seed=1))
    with torch.no_grad():
        for p in agent.q.parameters():
            p.fill_(1.0)
        for p in agent.q_target.parameters():
            p.fill_(0.0)
    agent.update_target()
    assert all(torch.allclose(p, torch.full_like(p, 0.25)) for p in agent.q_target.parameters())
    agent.cfg.tau = 1.0
    agent.update_target()
    assert all(torch.equal(p, q) for p, q in zip(agent.q_target.parameters(), agent.q.parameters(), strict=False))


def test_epsilon_schedule() -> None:
    cfg = DDQNConfig(total_steps=100, eps_start=1.0, eps_end=0.1, eps_fraction=0.5)
    assert linear_epsilon(0, cfg) == 1.0
    assert linear_epsilon(25, cfg) == pytest.approx(0.55)
    assert linear_epsilon(50, cfg) == pytest.approx(0.1) and linear_epsilon(99, cfg) == pytest.approx(0.1)


def test_replay_buffer_wraps_around() -> None:
    buf = ReplayBuffer(5, 1, torch.device("cpu"))
    for start in (0, 3):
        x = torch.arange(start, start + 3, dtype=torch.float32)
        buf.add(x.view(3, 1), x.long(), x, x.view(3, 1), torch.zeros(3))
    assert buf.size == 5 and buf.pos == 1
    assert sorted(buf.reward.tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    batch = buf.sample(64, torch.Generator().manual_seed(0))
    assert set(batch.reward.tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


class _Bandit:
    """A batched contextual bandit (a ``TorchVecEnv``): the rewarding action is the sign of the first observation."""

    num_actions = 2
    observation_size = 2
    action_size, action_low, action_high = 1, 0.0, 1.0

    def __init__(self, num_envs: int = 32) -> None:
        self.num_envs = num_envs
        self.device = torch.device("cpu")
        self.gen = torch.Generator().manual_seed(0)
        self.obs = self._draw()

    def _draw(self) -> Tensor:
        return torch.randn(self.num_envs, 2, generator=self.gen)

    def reset(self, seed: int | None = None) -> tuple[Tensor, dict[str, Any]]:
        return self.obs, {}

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        reward = (action == (self.obs[:, 0] > 0).long()).float()
        final = self.obs
        self.obs = self._draw()
        done = torch.ones(self.num_envs, dtype=torch.bool)
        return self.obs, reward, done, torch.zeros_like(done), {"final_obs": final}


def test_learns_a_contextual_bandit() -> None:
    cfg = DDQNConfig(
        total_steps=150,
        hidden=(32,),
        batch_size=64,
        train_frequency=5,
        gradient_steps=10,
        tau=0.05,
        target_update_interval=1,
        learning_rate=3e-3,
        eps_fraction=0.3,
        seed=0,
    )
    env = _Bandit()
    assert isinstance(env, TorchVecEnv)
    agent = DoubleDQN(2, 2, cfg)
    history = agent.learn(env)
    assert len(history) == 30
    obs = torch.randn(512, 2, generator=torch.Generator().manual_seed(9))
    accuracy = (agent.act(obs) == (obs[:, 0] > 0).long()).float().mean()
    assert accuracy > 0.9


def test_melo_smoke_is_deterministic(tmp_path: Any) -> None:
    def train() -> DoubleDQN:
        env = MeloVecEnv(MeloSimConfig(num_envs=2, periods_per_day=10), seed=4)
        cfg = DDQNConfig(
            total_steps=30,
            hidden=(16,),
            batch_size=16,
            train_frequency=10,
            gradient_steps=3,
            tau=0.1,
            target_update_interval=1,
            seed=5,
        )
        agent = DoubleDQN(env.observation_size, env.num_actions, cfg)
        agent.learn(env, seed=4)
        return agent

    a, b = train(), train()
    assert all(torch.equal(p, q) for p, q in zip(a.q.parameters(), b.q.parameters(), strict=False))
    assert a.gradient_updates == 9 and a.buffer is not None and a.buffer.size == 30 * 6
    a.save(tmp_path / "m.pt")
    c = DoubleDQN.load(tmp_path / "m.pt")
    assert all(torch.equal(p, q) for p, q in zip(a.q.parameters(), c.q.parameters(), strict=False))
    assert c.cfg.hidden == [16] or tuple(c.cfg.hidden) == (16,)


def test_learn_refuses_an_env_of_another_shape() -> None:
    env = MeloVecEnv(MeloSimConfig(num_envs=1, periods_per_day=5), seed=0)
    with pytest.raises(ConfigError, match="5 discrete actions"):
        DoubleDQN(env.observation_size, 3).learn(env)
    with pytest.raises(ConfigError, match="observations of size"):
        DoubleDQN(env.observation_size + 1, env.num_actions).learn(env)
