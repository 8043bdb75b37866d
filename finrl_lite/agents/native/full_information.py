"""Double DQN fitted on the outcome of every action (full-information targets).

A simulator that runs every action on the same randomness (common random numbers) can report, for each
transition, the reward each action would have earned. :class:`FullInformationDQN` stores them all and fits
every output of the Q-network at once::

    y[a] = r[a] + gamma * (1 - terminated) * Q_target(s'_a, argmax_b Q_online(s'_a, b))
    loss = mean over the batch and the actions of (Q(s, a) - y[a])^2

where ``s'_a`` is the next observation after action ``a``. The environment's ``info`` must hold
``action_rewards [B, A]`` and ``action_next_values [B, A]``, and the environment the attribute
``action_obs_column``: the next observation after action ``a`` is the observed next observation with that
entry set to ``action_next_values[:, a]`` (the rest must not depend on the action). With ``gamma = 0`` the
next observations are not used and the fit is a regression of every action's reward on the observation.

One action's reward per transition is one noisy sample of one column of Q; here every column gets a sample
of the same draw of the world, so differences between actions are learned with far less noise. It needs a
simulator: a live log shows only the action taken. Acting, exploration, target updates, the schedule and
checkpoints are those of :class:`~finrl_lite.agents.native.ddqn.DoubleDQN`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from finrl_lite.agents.native.ddqn import DoubleDQN
from finrl_lite.agents.native.ring import TransitionRing
from finrl_lite.envs.base import TorchVecEnv
from finrl_lite.errors import ConfigError

__all__ = ["FullInformationBatch", "FullInformationBuffer", "FullInformationDQN", "full_information_targets"]

_FIELDS = ("obs", "next_obs", "rewards", "next_values", "terminated")


class FullInformationBatch(NamedTuple):
    """A batch of full-information transitions.

    Attributes:
        obs: ``[N, D]`` observations.
        next_obs: ``[N, D]`` next observations as observed (the final one where an episode was truncated).
        rewards: ``[N, A]`` the reward of every action.
        next_values: ``[N, A]`` entry ``column`` of the next observation after every action.
        terminated: ``[N]`` 1.0 where the episode terminated.
    """

    obs: Tensor
    next_obs: Tensor
    rewards: Tensor
    next_values: Tensor
    terminated: Tensor


class FullInformationBuffer(TransitionRing):
    """Ring buffer of full-information transitions on a torch device.

    Args:
        capacity: Transitions kept.
        obs_size: Observation width.
        num_actions: Number of actions.
        device: Where the storage lives.
        with_next: Store the next observations and values (needed when ``gamma > 0``); without them a transition
            takes about half the memory and a batch holds empty ``[N, 0]`` tensors in their place.
    """

    obs: Tensor
    rewards: Tensor

    def __init__(self, capacity: int, obs_size: int, num_actions: int, device: torch.device, with_next: bool = True) -> None:
        width = {"obs": (obs_size,), "next_obs": (obs_size,), "rewards": (num_actions,), "next_values": (num_actions,)}
        kept = _FIELDS if with_next else ("obs", "rewards", "terminated")
        super().__init__(
            capacity, {name: (width.get(name, ()), torch.float32) for name in kept}, device, "full-information replay"
        )

    def add(self, batch: FullInformationBatch) -> None:
        """Append ``N`` transitions (wrapping around; the newest kept when ``N`` exceeds the capacity)."""
        self.append(batch._asdict())

    def sample(self, batch_size: int, generator: torch.Generator) -> FullInformationBatch:
        """Uniform sample with replacement (absent fields as empty ``[N, 0]`` tensors)."""
        idx = self.sample_index(batch_size, generator)
        empty = torch.zeros(batch_size, 0, device=self.device)
        return FullInformationBatch(*(getattr(self, name)[idx] if name in self.fields else empty for name in _FIELDS))


def full_information_targets(
    online: nn.Module, target: nn.Module, batch: FullInformationBatch, gamma: float, column: int
) -> Tensor:
    """``[N, A]`` Double DQN targets of every action (see the module docstring)."""
    if gamma == 0.0:
        return batch.rewards
    with torch.no_grad():
        n, a = batch.rewards.shape
        next_obs = batch.next_obs.unsqueeze(1).repeat(1, a, 1)
        next_obs[:, :, column] = batch.next_values
        flat = next_obs.view(n * a, -1)
        best = online(flat).argmax(dim=1, keepdim=True)
        next_q = target(flat).gather(1, best).view(n, a)
        return batch.rewards + gamma * (1.0 - batch.terminated).unsqueeze(1) * next_q


class FullInformationDQN(DoubleDQN):
    """Double DQN whose every transition carries every action's reward and next observation.

    Args:
        obs_size: Observation width.
        num_actions: Number of discrete actions.
        config: Hyper-parameters (:class:`~finrl_lite.agents.native.ddqn.DDQNConfig`).
        device: Device of the networks and the replay buffer.
    """

    column = 0
    """Observation entry through which the action changes the next observation (the environment's ``action_obs_column``)."""

    def _empty_buffer(self) -> FullInformationBuffer:
        return FullInformationBuffer(self.cfg.buffer_size, self.obs_size, self.num_actions, self.device, self.cfg.gamma > 0.0)

    def _remember(
        self, env: TorchVecEnv, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor, terminated: Tensor, info: dict
    ) -> None:
        if info.get("action_rewards") is None:
            raise ConfigError(
                f"{type(env).__name__} reports no action_rewards: full-information training needs an environment that "
                "simulates every action (for M-ELO: MeloVecEnv(..., counterfactual=True))"
            )
        self.column = int(getattr(env, "action_obs_column", 0))
        self.buffer.add(
            FullInformationBatch(obs, next_obs, info["action_rewards"], info["action_next_values"], terminated.float())
        )

    def loss(self, batch: FullInformationBatch) -> Tensor:  # type: ignore[override]
        """The loss over every action of a batch against the full-information targets."""
        y = full_information_targets(self.q, self.q_target, batch, self.cfg.gamma, self.column)
        q = self.q(batch.obs)
        return nn.functional.smooth_l1_loss(q, y) if self.cfg.huber else nn.functional.mse_loss(q, y)
