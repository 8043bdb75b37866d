"""Double DQN for stable-baselines3.

SB3's ``DQN`` is vanilla DQN: its target takes ``max_a Q_target(s', a)``. Double DQN (van Hasselt et
al., 2016) picks the next action with the online network and scores it with the target network:
``y = r + (1 - done) * discount * Q_target(s', argmax_a Q_online(s', a))``. With SB3 2.9's n-step
replay, ``discount`` is the per-sample ``discounts`` field (gamma ** steps actually taken), else gamma.
"""

from __future__ import annotations

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3 import DQN
from stable_baselines3.common.type_aliases import ReplayBufferSamples

__all__ = ["DoubleDQN", "double_dqn_target"]


def double_dqn_target(q_net: th.nn.Module, q_net_target: th.nn.Module, batch: ReplayBufferSamples, gamma: float) -> th.Tensor:
    """The Double-DQN TD target ``[batch, 1]`` of a replay batch (no gradient)."""
    discounts = batch.discounts if batch.discounts is not None else gamma
    with th.no_grad():
        next_actions = q_net(batch.next_observations).argmax(dim=1, keepdim=True)
        next_q = th.gather(q_net_target(batch.next_observations), dim=1, index=next_actions)
        return batch.rewards + (1 - batch.dones) * discounts * next_q


class DoubleDQN(DQN):
    """SB3 ``DQN`` with the Double-DQN target; every other behaviour (exploration, target updates) is SB3's."""

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = []
        for _ in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            target = double_dqn_target(self.q_net, self.q_net_target, batch, self.gamma)
            current = th.gather(self.q_net(batch.observations), dim=1, index=batch.actions.long())
            loss = F.smooth_l1_loss(current, target)
            losses.append(loss.item())
            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(losses)))
