"""Native on-device Double DQN, readable top to bottom (CleanRL style).

It trains on any :class:`~finrl_lite.envs.base.TorchVecEnv` with discrete actions (``num_actions``):
the observations arrive as tensors on the environment's device, the replay buffer lives on that device,
and nothing goes through numpy. Each of the ``num_envs`` rows of the environment is one independent
decision stream; every env step adds ``num_envs`` transitions.

The schedule is a loop of rounds: collect ``train_frequency`` env steps (epsilon-greedy), then take
``gradient_steps`` gradient steps on batches sampled from the buffer. ``train_frequency=1,
gradient_steps=1`` is the classic online DQN; ``train_frequency=<steps in a day>`` with many gradient
steps is the "collect a day of experience for every symbol, then update on sampled batches" schedule
of Nasdaq's Dynamic M-ELO.

Double DQN target (van Hasselt et al., 2016)::

    a* = argmax_a Q_online(s', a)
    y  = r + gamma * (1 - terminated) * Q_target(s', a*)

(vanilla DQN would use ``max_a Q_target(s', a)``). Truncated episodes bootstrap from the final
observation (``info["final_obs"]``). Target network: Polyak averaging ``theta_target <- tau * theta +
(1 - tau) * theta_target`` every ``target_update_interval`` gradient steps (``tau = 1`` is a hard copy).

Exact resume: epsilon follows the global step over the schedule horizon (see :meth:`DoubleDQN.learn`),
and ``save(path, training_state=True)`` adds the replay buffer and the current observation to the
networks, optimizer, counters and generator state, so that training continues exactly from it given
the environment's own snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from finrl_lite.agents.divergence import all_finite, check_diverged
from finrl_lite.agents.native.ring import TransitionRing
from finrl_lite.agents.native.rng import generator_state, load_generator_state, seeded_init
from finrl_lite.envs.base import TorchVecEnv
from finrl_lite.errors import ConfigError
from finrl_lite.io import atomic_path

__all__ = [
    "DDQNConfig",
    "DoubleDQN",
    "QNetwork",
    "ReplayBatch",
    "ReplayBuffer",
    "double_dqn_targets",
    "linear_epsilon",
]

logger = logging.getLogger(__name__)


@dataclass
class DDQNConfig:
    """Double DQN hyper-parameters (units: env steps are batched steps of all ``num_envs`` rows)."""

    total_steps: int = 10_000
    """Batched environment steps of a :meth:`DoubleDQN.learn` call that names no budget."""
    hidden: Sequence[int] = field(default_factory=lambda: (128, 128))
    """Hidden layer widths of the Q-network (ReLU MLP)."""
    learning_rate: float = 5e-4
    """Adam learning rate."""
    learning_rate_final: float | None = None
    """Learning rate at the end of the schedule horizon, reached linearly from ``learning_rate``; None keeps it constant."""
    gamma: float = 0.99
    """Discount factor."""
    buffer_size: int = 100_000
    """Replay capacity in transitions (rows x steps)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    tau: float = 1.0
    """Target update rate: 1.0 hard copy, < 1 Polyak (soft) averaging."""
    target_update_interval: int = 500
    """Gradient steps between target updates."""
    eps_start: float = 1.0
    """Initial epsilon of epsilon-greedy exploration."""
    eps_end: float = 0.05
    """Final epsilon."""
    eps_fraction: float = 0.5
    """Fraction of the schedule horizon (the training budget) over which epsilon decays linearly."""
    learning_starts: int = 0
    """Batched env steps collected before the first gradient step."""
    train_frequency: int = 1
    """Batched env steps per round (collect, then update)."""
    gradient_steps: int = 1
    """Gradient steps per round."""
    max_grad_norm: float = 10.0
    """Clip of the global gradient norm."""
    huber: bool = True
    """Smooth-L1 (Huber) loss as SB3; False: mean squared error as CleanRL."""
    seed: int = 0
    """Seed of the network initialisation, exploration and replay sampling."""


def _linear(start: float, end: float, step: float, span: float) -> float:
    """``start`` moving linearly to ``end`` over ``span`` steps, then ``end``."""
    return start + min(1.0, step / span) * (end - start)


def linear_epsilon(step: int, cfg: DDQNConfig, horizon: int | None = None) -> float:
    """Epsilon after ``step`` batched env steps: linear from ``eps_start`` to ``eps_end`` over the first
    ``eps_fraction`` of ``horizon`` batched steps (``cfg.total_steps`` when None)."""
    decay = max(1.0, cfg.eps_fraction * (cfg.total_steps if horizon is None else horizon))
    return _linear(cfg.eps_start, cfg.eps_end, step, decay)


class QNetwork(nn.Module):
    """MLP from an observation to one Q-value per action."""

    def __init__(self, obs_size: int, num_actions: int, hidden: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = obs_size
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, num_actions))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: Tensor) -> Tensor:
        """``[N, obs_size]`` -> ``[N, num_actions]``."""
        return self.net(obs)


class ReplayBatch(NamedTuple):
    """A batch of transitions (all on the buffer's device)."""

    obs: Tensor
    action: Tensor
    reward: Tensor
    next_obs: Tensor
    terminated: Tensor


class ReplayBuffer(TransitionRing):
    """Ring buffer of transitions on a torch device.

    Args:
        capacity: Transitions kept.
        obs_size: Observation width.
        device: Where the storage lives (the environment's device).
        dtype: Observation dtype.
    """

    obs: Tensor
    next_obs: Tensor
    action: Tensor
    reward: Tensor
    terminated: Tensor

    def __init__(self, capacity: int, obs_size: int, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        fields = {
            "obs": ((obs_size,), dtype),
            "next_obs": ((obs_size,), dtype),
            "action": ((), torch.int64),
            "reward": ((), dtype),
            "terminated": ((), dtype),
        }
        super().__init__(capacity, fields, device, "replay buffer")

    def add(self, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor, terminated: Tensor) -> None:
        """Append ``N`` transitions (wrapping around; host-side index arithmetic only)."""
        self.append({"obs": obs, "next_obs": next_obs, "action": action, "reward": reward, "terminated": terminated})

    def sample(self, batch_size: int, generator: torch.Generator) -> ReplayBatch:
        """Uniform sample with replacement."""
        idx = self.sample_index(batch_size, generator)
        return ReplayBatch(self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx], self.terminated[idx])


def double_dqn_targets(online: nn.Module, target: nn.Module, batch: ReplayBatch, gamma: float) -> Tensor:
    """Double DQN targets ``r + gamma (1 - terminated) Q_target(s', argmax_a Q_online(s', a))``."""
    with torch.no_grad():
        next_action = online(batch.next_obs).argmax(dim=1, keepdim=True)
        next_q = target(batch.next_obs).gather(1, next_action).squeeze(1)
        return batch.reward + gamma * (1.0 - batch.terminated) * next_q


class DoubleDQN:
    """Double DQN agent: online and target Q-networks, replay buffer, epsilon-greedy acting.

    Args:
        obs_size: Observation width.
        num_actions: Number of discrete actions.
        config: Hyper-parameters.
        device: Device of the networks and the replay buffer.
    """

    def __init__(
        self, obs_size: int, num_actions: int, config: DDQNConfig | None = None, device: torch.device | str = "cpu"
    ) -> None:
        self.cfg = config or DDQNConfig()
        self.device = torch.device(device)
        self.obs_size, self.num_actions = obs_size, num_actions
        with seeded_init(self.cfg.seed):  # the caller's global RNG is left as it was
            self.q = QNetwork(obs_size, num_actions, self.cfg.hidden).to(self.device)
            self.q_target = QNetwork(obs_size, num_actions, self.cfg.hidden).to(self.device)
        self.q_target.load_state_dict(self.q.state_dict())
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=self.cfg.learning_rate)
        self.generator = torch.Generator(device=self.device)  # exploration and replay sampling
        self.generator.manual_seed(self.cfg.seed + 1)
        self.buffer: ReplayBuffer | None = None
        self.gradient_updates = 0
        self.num_steps = 0
        """Batched environment steps learned from, over every :meth:`learn` call."""
        self.num_transitions = 0
        """Transitions collected (``num_envs`` per batched step)."""
        self.horizon = 0
        """Global batched step at which the current schedule ends (set by :meth:`learn`)."""
        self._obs: Tensor | None = None

    # ------------------------------------------------------------------ acting

    def epsilon(self) -> float:
        """Exploration rate of the next step (the global step on the current schedule)."""
        return linear_epsilon(self.num_steps, self.cfg, self.horizon or None)

    @torch.no_grad()
    def act(self, obs: Tensor, epsilon: float = 0.0) -> Tensor:
        """Epsilon-greedy actions ``[N]`` for observations ``[N, obs_size]`` (greedy when epsilon is 0)."""
        greedy = self.q(obs.to(self.device, torch.float32)).argmax(dim=1)
        if epsilon <= 0.0:
            return greedy
        n = obs.shape[0]
        explore = torch.rand(n, generator=self.generator, device=self.device) < epsilon
        random = torch.randint(0, self.num_actions, (n,), generator=self.generator, device=self.device)
        return torch.where(explore, random, greedy)

    # ------------------------------------------------------------------ learning

    def loss(self, batch: ReplayBatch) -> Tensor:
        """The TD loss of a batch against the Double DQN targets (Huber or mean squared error)."""
        y = double_dqn_targets(self.q, self.q_target, batch, self.cfg.gamma)
        q = self.q(batch.obs).gather(1, batch.action.unsqueeze(1)).squeeze(1)
        return nn.functional.smooth_l1_loss(q, y) if self.cfg.huber else nn.functional.mse_loss(q, y)

    def learning_rate(self) -> float:
        """Learning rate of the next gradient step (the global step on the current schedule)."""
        cfg = self.cfg
        if cfg.learning_rate_final is None:
            return cfg.learning_rate
        return _linear(cfg.learning_rate, cfg.learning_rate_final, self.num_steps, max(self.horizon or cfg.total_steps, 1))

    def update(self, batch: ReplayBatch) -> Tensor:
        """One gradient step on a batch; returns the loss (a tensor, no host sync)."""
        if self.cfg.learning_rate_final is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = self.learning_rate()
        loss = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.q.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        self.gradient_updates += 1
        if self.gradient_updates % self.cfg.target_update_interval == 0:
            self.update_target()
        return loss.detach()

    @torch.no_grad()
    def update_target(self) -> None:
        """Polyak update ``target <- tau * online + (1 - tau) * target`` (hard copy when tau is 1)."""
        for p_t, p in zip(self.q_target.parameters(), self.q.parameters(), strict=False):
            p_t.lerp_(p, self.cfg.tau)

    def _empty_buffer(self) -> Any:
        """A new replay buffer (subclasses that store more per transition override it with :meth:`_remember`)."""
        return ReplayBuffer(self.cfg.buffer_size, self.obs_size, self.device)

    def _remember(
        self, env: TorchVecEnv, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor, terminated: Tensor, info: dict
    ) -> None:
        """Store one batched step's transitions (``next_obs`` is the final observation where truncated)."""
        self.buffer.add(obs, action, reward, next_obs, terminated)

    def learn(
        self,
        env: TorchVecEnv,
        seed: int | None = None,
        callback: Callable[[dict[str, float]], None] | None = None,
        total_steps: int | None = None,
    ) -> list[dict[str, float]]:
        """Train on ``env`` for ``total_steps`` more batched steps (``config.total_steps`` when None).

        The schedule spans this call's budget counted on from the global step, as SB3's
        ``reset_num_timesteps=False``: ``horizon = num_steps + total_steps`` and epsilon follows ``num_steps``
        over it. A checkpoint taken from ``callback`` falls between rounds (``train_frequency`` steps, then the
        updates), so learning the rest of an interrupted budget from it continues the same schedule.

        Args:
            env: A torch vector environment with ``num_actions`` discrete actions (same-step autoreset,
                ``info["final_obs"]``); reset on the first call only (later calls and a model loaded with its
                training state continue from the current observation).
            seed: Passed to ``env.reset``.
            callback: Called after every round with that round's summary (``step``, ``epsilon``,
                ``mean_reward``, ``loss``); it may raise to stop training.
            total_steps: Batched env steps to learn from.

        Returns:
            One summary dict per round (the host reads the round's numbers once per round).

        Raises:
            TrainingError: after the first round whose loss or Q-network weights are not finite (checked in that one
                host read, before the callback).
        """
        cfg = self.cfg
        if env.num_actions != self.num_actions or env.observation_size != self.obs_size:
            raise ConfigError(
                f"the environment has {env.num_actions} discrete actions and observations of size {env.observation_size}; "
                f"this agent was built for {self.num_actions} and {self.obs_size}"
            )
        self.horizon = self.num_steps + (cfg.total_steps if total_steps is None else total_steps)
        if self.buffer is None:
            self.buffer = self._empty_buffer()
        if self._obs is None:
            obs, _ = env.reset(seed=seed)
            self._obs = obs.to(self.device, torch.float32)
        history: list[dict[str, float]] = []
        while self.num_steps < self.horizon:
            # 1. collect train_frequency batched steps
            reward_sum = torch.zeros((), device=self.device)
            n_round = min(cfg.train_frequency, self.horizon - self.num_steps)
            for _ in range(n_round):
                obs = self._obs
                action = self.act(obs, self.epsilon())
                next_obs, reward, terminated, truncated, info = env.step(action)
                next_obs = next_obs.to(self.device, torch.float32)
                boot_obs = torch.where(truncated.unsqueeze(1), info["final_obs"].to(next_obs), next_obs)
                self._remember(env, obs, action, reward, boot_obs, terminated, info)
                reward_sum = reward_sum + reward.float().mean()
                self._obs = next_obs
                self.num_steps += 1
                self.num_transitions += obs.shape[0]
            # 2. update on sampled batches
            loss = torch.zeros((), device=self.device)
            if self.num_steps >= cfg.learning_starts and self.buffer.size >= cfg.batch_size:
                for _ in range(cfg.gradient_steps):
                    loss = self.update(self.buffer.sample(cfg.batch_size, self.generator))
            finite = all_finite(self.q).to(reward_sum.dtype)
            reward_total, loss_value, weights_finite = torch.stack([reward_sum, loss.to(reward_sum.dtype), finite]).tolist()
            check_diverged("native DDQN", self.num_transitions, {"loss": loss_value}, weights_finite == 1.0)  # the host read
            summary = {
                "step": float(self.num_steps),
                "epsilon": self.epsilon(),
                "mean_reward": reward_total / n_round,
                "loss": loss_value,
            }
            history.append(summary)
            logger.info(
                "ddqn step %d/%d eps %.3f mean reward %.4f loss %.4f",
                self.num_steps,
                self.horizon,
                summary["epsilon"],
                summary["mean_reward"],
                summary["loss"],
            )
            if callback is not None:
                callback(summary)
        return history

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path, training_state: bool = False) -> None:
        """Write the networks, optimizer, config, counters and generator state to ``path`` (torch.save; atomic).

        Args:
            path: the file to write.
            training_state: also write the replay buffer and the current observation (a checkpoint to continue
                training exactly; the environment's own snapshot is stored beside it by the caller).
        """
        payload: dict[str, Any] = {
            "config": asdict(self.cfg) | {"hidden": list(self.cfg.hidden)},
            "obs_size": self.obs_size,
            "num_actions": self.num_actions,
            "q": self.q.state_dict(),
            "q_target": self.q_target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "gradient_updates": self.gradient_updates,
            "num_steps": self.num_steps,
            "num_transitions": self.num_transitions,
            "horizon": self.horizon,
            "generator": generator_state(self.generator),
        }
        if training_state and self._obs is not None and self.buffer is not None:
            payload["training_state"] = {"obs": self._obs.cpu(), "buffer": self.buffer.state_dict()}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> DoubleDQN:
        """Load an agent written by :meth:`save` (with its training state when it was saved)."""
        payload = torch.load(path, map_location="cpu", weights_only=True)
        agent = cls(payload["obs_size"], payload["num_actions"], DDQNConfig(**payload["config"]), device=device)
        agent.q.load_state_dict(payload["q"])
        agent.q_target.load_state_dict(payload["q_target"])
        agent.optimizer.load_state_dict(payload["optimizer"])
        agent.gradient_updates = payload["gradient_updates"]
        agent.num_steps = int(payload.get("num_steps", 0))
        agent.num_transitions = int(payload.get("num_transitions", 0))
        agent.horizon = int(payload.get("horizon", 0))
        if "generator" in payload:
            load_generator_state(agent.generator, payload["generator"])
        if "training_state" in payload:
            state = payload["training_state"]
            agent._obs = state["obs"].to(agent.device)
            agent.buffer = agent._empty_buffer()
            agent.buffer.load_state_dict(state["buffer"])
        return agent
