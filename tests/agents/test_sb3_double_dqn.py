"""The Double-DQN target on a tiny batch, by hand."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from finrl_lite.agents.sb3.double_dqn import DoubleDQN, double_dqn_target


class _Table(th.nn.Module):
    """Q-values looked up from a fixed table by the (integer) observation."""

    def __init__(self, table: list[list[float]]) -> None:
        super().__init__()
        self.table = th.tensor(table)

    def forward(self, obs: th.Tensor) -> th.Tensor:
        return self.table[obs.long().view(-1)]


def _batch(discounts: th.Tensor | None) -> ReplayBufferSamples:
    return ReplayBufferSamples(
        observations=th.tensor([[0.0], [1.0]]),
        actions=th.tensor([[0], [1]]),
        next_observations=th.tensor([[1.0], [0.0]]),
        dones=th.tensor([[0.0], [1.0]]),
        rewards=th.tensor([[1.0], [2.0]]),
        discounts=discounts,
    )


def test_target_uses_online_argmax_scored_by_target_net() -> None:
    online = _Table([[0.0, 5.0, 1.0], [3.0, 0.0, 9.0]])  # argmax: s0 -> a1, s1 -> a2
    target = _Table([[7.0, 2.0, 0.0], [1.0, 4.0, 6.0]])  # max would pick 7 (s0) / 6 (s1)
    y = double_dqn_target(online, target, _batch(None), gamma=0.9)
    # sample 0: next state 1, online argmax a2, target value 6 -> 1 + 0.9 * 6; sample 1 is terminal.
    th.testing.assert_close(y, th.tensor([[1.0 + 0.9 * 6.0], [2.0]]))
    batch = _batch(th.tensor([[0.81], [0.81]]))._replace(next_observations=th.tensor([[0.0], [0.0]]))
    y2 = double_dqn_target(online, target, batch, gamma=0.9)
    # next state 0: online argmax a1, target Q = 2 (vanilla DQN would take 7); n-step discount 0.81
    th.testing.assert_close(y2, th.tensor([[1.0 + 0.81 * 2.0], [2.0]]))


def test_double_dqn_smoke_and_save_load(tmp_path) -> None:
    env = gym.make("CartPole-v1")
    model = DoubleDQN("MlpPolicy", env, learning_starts=50, train_freq=4, learning_rate=1e-2, seed=0, device="cpu")
    model.learn(300)
    assert model._n_updates > 0
    model.save(tmp_path / "ddqn.zip")
    loaded = DoubleDQN.load(tmp_path / "ddqn.zip", device="cpu")
    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    assert isinstance(loaded, DQN)
