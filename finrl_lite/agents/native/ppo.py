"""Native on-device PPO for Box actions, readable top to bottom (CleanRL style).

Observations, actions, rewards and the rollout buffer stay on the environment's device: the agent
reads the torch environment core directly and never goes through numpy.

The environment is any batched torch environment with ``num_envs``, ``observation_size``,
``action_size``, ``device``, ``reset(seed) -> (obs, info)`` and ``step(action) -> (obs, reward,
terminated, truncated, info)`` with same-step autoreset, where ``info["final_obs"]`` holds the last
observation of an episode that just ended (so a truncated episode is bootstrapped from it).

Algorithm (Schulman et al., 2017): Gaussian policy with a state-independent log-std, actions clipped
to ``[-1, 1]`` when sent to the environment; GAE(lambda); advantages normalised per minibatch; clipped
surrogate objective, clipped value loss optional, entropy bonus; running observation normalisation;
optional early stop of the epochs when the approximate KL divergence passes ``target_kl`` (CleanRL).
The minibatch loss's gradient is written out in :mod:`~finrl_lite.agents.native.ppo_gradients` (checked against
autograd), its products by oneDNN on CPU (:mod:`~finrl_lite.agents.native.matmul`).

Exact resume: the learning rate anneals over the global step (see :meth:`NativePPO.learn`), and
``save(path, training_state=True)`` adds the current observation and episode returns to the weights,
optimizer, normalisation, counters and generator state, so that training continues exactly from it
given the environment's own snapshot (``BatchedEnv.state_dict``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from finrl_lite.agents.base import ProgressCallback, TrainProgress, rollout_lengths
from finrl_lite.agents.divergence import all_finite, check_diverged
from finrl_lite.agents.hyperparameters import NATIVE_PPO, check_hyperparameters
from finrl_lite.agents.native.ppo_gradients import Minibatch, forward_pass, ppo_gradients
from finrl_lite.agents.native.rng import generator_state, load_generator_state, seeded_init
from finrl_lite.agents.native.tanh import Tanh
from finrl_lite.io import atomic_path

__all__ = ["PPOConfig", "NativePPO", "RunningNorm", "compute_gae", "explained_variance"]

logger = logging.getLogger(__name__)


@dataclass
class PPOConfig:
    """Hyper-parameters of :class:`NativePPO`."""

    num_steps: int = 64
    """Rollout length per environment between updates."""
    learning_rate: float = 3e-4
    """Adam learning rate (annealed linearly to 0 when ``anneal_lr``)."""
    anneal_lr: bool = True
    """Anneal the learning rate over the training budget."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    num_minibatches: int = 4
    """Minibatches per epoch."""
    update_epochs: int = 4
    """Epochs over each rollout."""
    clip_coef: float = 0.2
    """Surrogate clipping coefficient."""
    clip_vloss: bool = True
    """Clip the value loss like the policy (PPO2 / CleanRL)."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Gradient clipping norm."""
    target_kl: float | None = None
    """Stop an update's epochs early once the approximate KL divergence of an epoch's last minibatch exceeds it
    (CleanRL); None: always run ``update_epochs``. Setting it costs one host read per epoch."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    norm_obs: bool = True
    """Running mean/std normalisation of observations (statistics of observations seen in training)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and the critic."""
    init_log_std: float = -0.5
    """Initial log standard deviation of the Gaussian policy."""
    seed: int = 0
    """Seed of the network initialisation and action sampling."""


_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_RECENT = 100
"""Episode returns kept for the progress report."""
_STATS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "explained_variance")
"""Per-iteration numbers of :meth:`NativePPO._update`, in the order of its tensor."""


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over a rollout.

    Args:
        rewards: ``[T, B]`` rewards (already including the bootstrap of truncated episodes).
        values: ``[T, B]`` value estimates of the observations the actions were taken in.
        dones: ``[T, B]`` 1.0 where the episode ended at that step (no bootstrapping across it).
        next_value: ``[B]`` value of the observation after the last step.

    Returns:
        ``(advantages, returns)``, each ``[T, B]``.
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(steps)):
        following = next_value if t == steps - 1 else values[t + 1]
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * following * not_done - values[t]
        last = delta + gamma * gae_lambda * not_done * last
        advantages[t] = last
    return advantages, advantages + values


class RunningNorm(nn.Module):
    """Running mean / variance of observations (parallel-variance update), kept as buffers."""

    def __init__(self, size: int, clip: float = 10.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("var", torch.ones(size, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))
        self.clip = clip

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        # two passes in float64 (mean, then centred squares): more accurate than torch.var_mean in float32, and its
        # Welford reduction over dim 0 is several times slower on CPU
        n = x.shape[0]
        batch_mean = x.mean(dim=0, dtype=torch.float64)
        batch_var = (x - batch_mean).square_().mean(dim=0)  # x - batch_mean is float64
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.var.copy_((self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The clipped normalised float32 observations (written into ``out`` when given)."""
        mean, inv_std = self.mean.to(torch.float32), torch.rsqrt(self.var + 1e-8).to(torch.float32)
        return torch.sub(x.to(torch.float32), mean, out=out).mul_(inv_std).clamp_(-self.clip, self.clip)


def _mlp(sizes: list[int], out_gain: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        nn.init.orthogonal_(linear.weight, out_gain if last else math.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(Tanh())
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Gaussian actor and value critic, with the observation normaliser in front of both."""

    def __init__(self, obs_size: int, action_size: int, cfg: PPOConfig) -> None:
        super().__init__()
        hidden = list(cfg.hidden_sizes)
        self.norm = RunningNorm(obs_size)
        self.use_norm = cfg.norm_obs
        self.actor = _mlp([obs_size, *hidden, action_size], 0.01)
        self.critic = _mlp([obs_size, *hidden, 1], 1.0)
        self.log_std = nn.Parameter(torch.full((action_size,), cfg.init_log_std))

    def features(self, obs: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised float32 network input (what the rollout buffer stores; written into ``out`` when given)."""
        if self.use_norm:
            return self.norm(obs, out)
        return obs.to(torch.float32) if out is None else out.copy_(obs)

    def value(self, feats: torch.Tensor) -> torch.Tensor:
        return self.critic(feats).squeeze(-1)

    def action_mean(self, feats: torch.Tensor) -> torch.Tensor:
        """Mean of the Gaussian policy (its standard deviation is ``log_std.exp()``, the same for every state)."""
        return self.actor(feats)

    def sample(self, mean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """An action drawn around ``mean``."""
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        return mean + self.log_std.exp() * noise

    def log_prob(self, mean: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Log-density of ``action`` under the policy, summed over the action dimensions (``torch.distributions.Normal``'s
        density, written on the ``[A]`` log-std so that nothing is expanded to the batch)."""
        return self.log_prob_of_squares((action - mean).square() * torch.exp(-2.0 * self.log_std))

    def log_prob_of_squares(self, squares: torch.Tensor) -> torch.Tensor:
        """:meth:`log_prob` from ``squares = (action - mean) ** 2 / variance``."""
        return -0.5 * squares.sum(-1) - (self.log_std.sum() + self.log_std.numel() * _LOG_SQRT_2PI)

    def entropy(self) -> torch.Tensor:
        """Entropy of the policy, summed over the action dimensions (the same in every state)."""
        return (0.5 + _LOG_SQRT_2PI + self.log_std).sum()


class NativePPO:
    """PPO that trains on a batched torch environment without leaving its device.

    Args:
        env: batched torch environment (see the module docstring); may be None for a loaded model used
            only to predict.
        config: hyper-parameters.
    """

    def __init__(
        self, env: Any, config: PPOConfig | None = None, *, obs_size: int | None = None, action_size: int | None = None
    ) -> None:
        self.config = config or PPOConfig()
        self.env = env
        self.device = torch.device(env.device) if env is not None else torch.device("cpu")
        obs_size = obs_size or env.observation_size
        action_size = action_size or env.action_size
        with seeded_init(self.config.seed):  # the caller's global RNG is left as it was
            self.policy = ActorCritic(obs_size, action_size, self.config).to(self.device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), fused=True, lr=self.config.learning_rate, eps=1e-5)
        self.generator = torch.Generator(device=self.device)  # action sampling and minibatch order
        self.generator.manual_seed(self.config.seed)
        self.num_timesteps = 0
        self.schedule_horizon = 0
        """Global step at which the learning rate reaches 0 (set by :meth:`learn`)."""
        self._obs: torch.Tensor | None = None
        self._episode_returns: torch.Tensor | None = None
        self.recent_returns: list[float] = []

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def predict(self, obs: Any, deterministic: bool = True) -> Any:
        """Actions in ``[-1, 1]`` for a batch of observations (numpy in, numpy out; torch in, torch out)."""
        is_numpy = isinstance(obs, np.ndarray)
        x = torch.as_tensor(obs, device=self.device)
        if x.dim() == 1:
            x = x.unsqueeze(0)
        mean = self.policy.action_mean(self.policy.features(x))
        action = (mean if deterministic else self.policy.sample(mean, self.generator)).clamp(-1.0, 1.0)
        return action.cpu().numpy() if is_numpy else action

    # ------------------------------------------------------------------ learning
    def learning_rate(self) -> float:
        """Learning rate of the next iteration: annealed linearly over the global step when ``anneal_lr``."""
        cfg = self.config
        if not cfg.anneal_lr or self.schedule_horizon <= 0:
            return cfg.learning_rate
        return cfg.learning_rate * max(1.0 - self.num_timesteps / self.schedule_horizon, 0.0)

    def learn(self, total_timesteps: int, callback: ProgressCallback | None = None) -> NativePPO:
        """Train for ``total_timesteps`` more environment steps (rounded up to whole batched steps).

        Rollouts are ``num_steps`` batched steps while they fit the budget; the rest of the budget (all of it when it
        is smaller than one rollout) is one shorter rollout, so no more than ``num_envs - 1`` steps past the budget
        are learned. The schedule spans this call's budget counted on from the global step, as SB3's
        ``reset_num_timesteps=False``: ``schedule_horizon = num_timesteps + rounded budget``, and the learning
        rate of an iteration is ``learning_rate * (1 - num_timesteps / schedule_horizon)``. Learning the rest of
        an interrupted budget from a checkpoint therefore continues the very same schedule.

        The environment is reset on the first call only; later calls (and a model loaded with its training
        state) continue from the current observation.

        Raises:
            TrainingError: after the first iteration whose losses or network weights (or observation normalisation) are
                not finite; checked in the iteration's one host read, before the callback (so no checkpoint of a
                diverged model is written).
        """
        cfg, env, dev = self.config, self.env, self.device
        b, steps = env.num_envs, cfg.num_steps
        rollouts = rollout_lengths(int(total_timesteps), b, steps)
        self.schedule_horizon = self.num_timesteps + sum(rollouts) * b
        obs_buf = torch.zeros((steps, b, env.observation_size), device=dev, dtype=torch.float32)
        act_buf = torch.zeros((steps, b, env.action_size), device=dev)
        logp_buf = torch.zeros((steps, b), device=dev)
        rew_buf = torch.zeros((steps, b), device=dev)
        done_buf = torch.zeros((steps, b), device=dev)
        val_buf = torch.zeros((steps, b), device=dev)
        finished = torch.zeros((steps, b), device=dev)

        if self._obs is None:
            self._obs, _ = env.reset(seed=cfg.seed)
            self._episode_returns = torch.zeros(b, device=dev)
        obs = self._obs
        start_time, start_steps = time.perf_counter(), self.num_timesteps
        for length in rollouts:
            lr = self.learning_rate()
            self.optimizer.param_groups[0]["lr"] = lr
            for t in range(length):
                if cfg.norm_obs:
                    self.policy.norm.update(obs)
                with torch.no_grad():
                    feats = self.policy.features(obs, out=obs_buf[t])
                    _, _, mean, val_buf[t] = forward_pass(self.policy, feats)
                    action = self.policy.sample(mean, self.generator)
                    act_buf[t], logp_buf[t] = action, self.policy.log_prob(mean, action)
                obs, reward, terminated, truncated, info = env.step(action.clamp(-1.0, 1.0))
                reward = reward.to(torch.float32)
                self._episode_returns += reward
                if _bootstrap_needed(truncated):
                    with torch.no_grad():  # bootstrap a time-limit truncation from the episode's last observation
                        final_value = self.policy.value(self.policy.features(info["final_obs"]))
                        reward = reward + cfg.gamma * final_value * truncated.to(torch.float32)
                done = (terminated | truncated).to(torch.float32)
                rew_buf[t], done_buf[t] = reward, done
                finished[t] = torch.where(done.bool(), self._episode_returns, torch.nan)
                self._episode_returns = self._episode_returns * (1.0 - done)
            with torch.no_grad():
                next_value = self.policy.value(self.policy.features(obs))
            n = length  # a shorter last rollout uses the first rows of the buffers
            advantages, returns = compute_gae(rew_buf[:n], val_buf[:n], done_buf[:n], next_value, cfg.gamma, cfg.gae_lambda)
            minibatch = max(n * b // cfg.num_minibatches, 1)
            stats, epochs = self._update(obs_buf[:n], act_buf[:n], logp_buf[:n], advantages, returns, val_buf[:n], minibatch)
            self.num_timesteps += length * b
            self._obs = obs

            finite = all_finite(self.policy).to(stats.dtype).unsqueeze(0)  # weights and normalisation, on the device
            numbers = torch.cat([stats, finite, _latest_finite(finished[:length].flatten(), _RECENT)]).tolist()  # the host read
            weights_finite = numbers.pop(len(_STATS)) == 1.0
            check_diverged("native PPO", self.num_timesteps, dict(zip(_STATS[:4], numbers[:4], strict=True)), weights_finite)
            ended = [x for x in reversed(numbers[len(_STATS) :]) if not math.isnan(x)]
            self.recent_returns = (self.recent_returns + ended)[-_RECENT:]
            extra = dict(zip(_STATS, numbers[: len(_STATS)], strict=True)) | {"learning_rate": lr, "epochs": float(epochs)}
            episode_return = float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")
            logger.info(
                "ppo step %d/%d lr %.3g return %.4g | policy loss %.4g value loss %.4g entropy %.4g "
                "approx-KL %.3g clip fraction %.3f explained variance %.3f epochs %d",
                self.num_timesteps,
                self.schedule_horizon,
                lr,
                episode_return,
                *(extra[name] for name in _STATS),
                epochs,
            )
            if callback is not None:
                elapsed = max(time.perf_counter() - start_time, 1e-9)
                progress = TrainProgress(
                    steps=self.num_timesteps,
                    total_steps=self.schedule_horizon,
                    steps_per_second=(self.num_timesteps - start_steps) / elapsed,
                    episode_return=episode_return,
                    extra=extra,
                )
                if callback(progress) is False:
                    break
        return self

    def _update(
        self,
        obs_buf: torch.Tensor,
        act_buf: torch.Tensor,
        logp_buf: torch.Tensor,
        advantages: torch.Tensor,
        returns: torch.Tensor,
        val_buf: torch.Tensor,
        minibatch: int,
    ) -> tuple[torch.Tensor, int]:
        """The epochs of clipped-surrogate updates on one rollout.

        Returns:
            ``(stats, epochs)``: the :data:`_STATS` as one tensor on the device (losses, entropy and clip fraction
            averaged over the minibatches; approx-KL of the last minibatch, as CleanRL logs and ``target_kl``
            compares; explained variance of the rollout's values) and the epochs run.
        """
        cfg = self.config
        flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
        # obs_buf holds the normalised features seen when acting (normalisation frozen for the update)
        columns = tuple(map(flat, (obs_buf, act_buf, logp_buf, val_buf, advantages, returns)))  # Minibatch's fields
        n, val, ret = columns[0].shape[0], columns[3], columns[5]
        rows = [torch.empty((minibatch, *x.shape[1:]), dtype=x.dtype, device=x.device) for x in columns]  # reused
        sums = torch.zeros(5, device=self.device)  # policy loss, value loss, entropy, approx-KL, clip fraction
        stats = torch.zeros(5, device=self.device)
        updates = epochs = 0
        for _ in range(cfg.update_epochs):
            # a random partition into minibatches, each minibatch's rows in memory order (the loss is a mean over
            # them): their gathers run twice as fast on CPU as in random order
            draw = torch.randperm(n, generator=self.generator, device=self.device)
            order = torch.argsort(draw // minibatch, stable=True)
            for start in range(0, n, minibatch):
                idx = order[start : start + minibatch]
                # index_select, not x[idx]: the same rows, an order of magnitude faster on CPU
                batch = Minibatch(
                    *(torch.index_select(x, 0, idx, out=r[: idx.numel()]) for x, r in zip(columns, rows, strict=True))
                )
                stats = ppo_gradients(self.policy, batch, cfg)
                nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                sums += stats
                updates += 1
            epochs += 1
            if cfg.target_kl is not None and bool(stats[3] > cfg.target_kl):  # a host read per epoch, only when set
                break
        means = sums / max(updates, 1)
        return torch.stack([means[0], means[1], means[2], stats[3], means[4], explained_variance(val, ret)]), epochs

    def set_hyperparameters(self, values: Mapping[str, float]) -> None:
        """Change hyper-parameters of :data:`~finrl_lite.agents.hyperparameters.NATIVE_PPO` from the next
        :meth:`learn` call on (population-based training's explore step). The learning rate still follows
        the annealing schedule of the next call when ``anneal_lr``; weights, optimizer moments and counters are kept.
        """
        self.config = replace(self.config, **check_hyperparameters(NATIVE_PPO, values, "native ppo"))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, training_state: bool = False) -> Path:
        """Write config, sizes, weights (normalisation included), optimizer, counters and generator state (atomic).

        Args:
            path: the file to write.
            training_state: also write what only continuing training needs: the current observation, the
                running episode returns and the recent returns (a checkpoint; the environment's own snapshot
                is stored beside it by the caller).
        """
        path = Path(path)
        payload: dict[str, Any] = {
            "algo": "native_ppo",
            "config": asdict(self.config),
            "obs_size": self.policy.critic[0].in_features,
            "action_size": self.policy.log_std.numel(),
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "num_timesteps": self.num_timesteps,
            "schedule_horizon": self.schedule_horizon,
            "generator": generator_state(self.generator),
        }
        if training_state and self._obs is not None and self._episode_returns is not None:
            payload["training_state"] = {
                "obs": self._obs.detach().cpu(),
                "episode_returns": self._episode_returns.detach().cpu(),
                "recent_returns": list(self.recent_returns),
            }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path, env: Any = None, device: str | torch.device | None = None) -> NativePPO:
        """Load a model written by :meth:`save` (attach ``env`` to continue training; with the training state
        saved, training continues from the saved observation instead of resetting ``env``)."""
        payload = torch.load(Path(path), map_location=device or "cpu", weights_only=True)
        cfg = payload["config"]
        cfg["hidden_sizes"] = tuple(cfg["hidden_sizes"])
        agent = cls(env, PPOConfig(**cfg), obs_size=payload["obs_size"], action_size=payload["action_size"])
        agent.policy.load_state_dict(payload["policy"])
        agent.optimizer.load_state_dict(payload["optimizer"])
        agent.num_timesteps = int(payload["num_timesteps"])
        agent.schedule_horizon = int(payload.get("schedule_horizon", 0))
        if "generator" in payload:
            load_generator_state(agent.generator, payload["generator"])
        if "training_state" in payload:
            state = payload["training_state"]
            agent._obs = state["obs"].to(agent.device)
            agent._episode_returns = state["episode_returns"].to(agent.device)
            agent.recent_returns = list(state["recent_returns"])
        return agent


def _bootstrap_needed(truncated: torch.Tensor) -> bool:
    """Whether a step's truncation bootstrap (a critic pass over the final observations) must be computed: always on
    an accelerator, where reading the flags would stall it; on CPU, where the read is free, only when an episode was
    truncated (most steps truncate none, and there the pass adds zero times a finite value to the rewards)."""
    return truncated.device.type != "cpu" or bool(truncated.any())


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """``1 - Var(returns - values) / Var(returns)`` (population variances; NaN when the returns are constant)."""
    var_returns = returns.var(correction=0)
    ratio = (returns - values).var(correction=0) / var_returns
    return torch.where(var_returns == 0, torch.nan, 1.0 - ratio)


def _latest_finite(x: torch.Tensor, k: int) -> torch.Tensor:
    """The last ``k`` non-NaN entries of ``x``, latest first, NaN-padded (fixed shape: no host sync)."""
    position = torch.arange(x.numel(), device=x.device)
    keys = torch.where(x.isnan(), -1, position)
    return x[keys.topk(min(k, x.numel())).indices]
