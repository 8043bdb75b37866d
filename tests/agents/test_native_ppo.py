"""Native PPO: GAE against a hand computation, a tiny-budget run, save/load, determinism."""

from __future__ import annotations

from pathlib import Path

import torch

from finrl_lite.agents.native.ppo import NativePPO, PPOConfig, RunningNorm, compute_gae


def test_gae_matches_hand_computation() -> None:
    gamma, lam = 0.9, 0.8
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[0.5], [1.0], [1.5]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])  # the episode ends after step 1
    next_value = torch.tensor([2.0])
    adv, ret = compute_gae(rewards, values, dones, next_value, gamma, lam)
    d2 = 2.0 + gamma * 2.0 - 1.5
    a2 = d2
    d1 = 0.0 + 0.0 - 1.0  # terminal: no bootstrap
    a1 = d1
    d0 = 1.0 + gamma * 1.0 - 0.5
    a0 = d0 + gamma * lam * a1
    torch.testing.assert_close(adv, torch.tensor([[a0], [a1], [a2]]))
    torch.testing.assert_close(ret, adv + values)


def test_running_norm_matches_batch_statistics() -> None:
    x = torch.randn(1000, 3, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.1]) + 3.0
    norm = RunningNorm(3)
    for chunk in x.split(100):
        norm.update(chunk)
    torch.testing.assert_close(norm.mean, x.mean(0), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(norm.var, x.var(0, unbiased=False), rtol=1e-3, atol=1e-6)


class _TargetEnv:
    """A tiny batched torch env: reward is -|action - 0.5|, episodes of 5 steps (truncated)."""

    observation_size, action_size = 2, 1

    def __init__(self, num_envs: int = 8) -> None:
        self.num_envs, self.device = num_envs, torch.device("cpu")
        self.t = torch.zeros(num_envs)

    def reset(self, seed: int | None = None):  # noqa: ANN201
        self.t = torch.zeros(self.num_envs)
        return self._obs(), {}

    def _obs(self) -> torch.Tensor:
        return torch.stack([self.t / 5.0, torch.ones_like(self.t)], dim=1)

    def step(self, action: torch.Tensor):  # noqa: ANN201
        reward = -(action[:, 0] - 0.5).abs()
        self.t += 1
        truncated = self.t >= 5
        final = self._obs()
        self.t = torch.where(truncated, torch.zeros_like(self.t), self.t)
        return self._obs(), reward, torch.zeros_like(truncated), truncated, {"final_obs": final}


def test_tiny_budget_learns_the_target_action(tmp_path: Path) -> None:
    cfg = PPOConfig(num_steps=16, learning_rate=3e-3, seed=1, init_log_std=-1.0)
    agent = NativePPO(_TargetEnv(), cfg)
    seen = []
    agent.learn(8 * 16 * 60, callback=lambda p: seen.append(p.episode_return))
    action = agent.predict(torch.tensor([[0.0, 1.0]]))
    assert abs(float(action[0, 0]) - 0.5) < 0.15
    assert seen[-1] > seen[2]
    path = agent.save(tmp_path / "ppo.pt")
    loaded = NativePPO.load(path)
    obs = torch.rand(4, 2)
    torch.testing.assert_close(loaded.predict(obs), agent.predict(obs), rtol=0, atol=0)


def test_same_seed_same_weights() -> None:
    runs = []
    for _ in range(2):
        agent = NativePPO(_TargetEnv(), PPOConfig(num_steps=8, seed=3)).learn(8 * 8 * 3)
        runs.append(torch.cat([p.detach().flatten() for p in agent.policy.parameters()]))
    assert torch.equal(runs[0], runs[1])
