"""Native PPO: GAE against a hand computation, a tiny-budget run, save/load, determinism, exact resume, diagnostics."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from finrl_lite.agents.base import rollout_lengths
from finrl_lite.agents.native.ppo import NativePPO, PPOConfig, RunningNorm, compute_gae, explained_variance


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


def test_policy_density_and_entropy_match_torch_normal() -> None:
    agent = NativePPO(None, PPOConfig(seed=2, init_log_std=-0.7), obs_size=3, action_size=4)
    with torch.no_grad():
        agent.policy.log_std.copy_(torch.tensor([-0.7, 0.0, 0.3, -2.0]))
    feats = torch.randn(6, 3)
    mean = agent.policy.action_mean(feats)
    action = agent.policy.sample(mean, agent.generator)
    normal = torch.distributions.Normal(mean, agent.policy.log_std.exp().expand_as(mean))
    torch.testing.assert_close(agent.policy.log_prob(mean, action), normal.log_prob(action).sum(-1))
    torch.testing.assert_close(agent.policy.entropy().expand(6), normal.entropy().sum(-1))
    log_std = agent.policy.log_std.detach().clone().requires_grad_()
    normal = torch.distributions.Normal(mean.detach(), log_std.exp().expand_as(mean))
    normal.log_prob(action.detach()).sum(-1).mean().backward()
    agent.policy.log_prob(mean.detach(), action.detach()).mean().backward()
    torch.testing.assert_close(agent.policy.log_std.grad, log_std.grad)  # the same gradient for the log-std


def test_running_norm_is_accurate_for_float32_columns_with_a_large_mean_and_a_small_spread() -> None:
    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([1e-3, 1.0, 1e3], dtype=torch.float64)
    x = (torch.randn(4096, 3, generator=g, dtype=torch.float64) * scale + torch.tensor([5e3, 5.0, 5e-3])).to(torch.float32)
    norm = RunningNorm(3)
    norm.count.zero_()  # no prior: the running statistics are the batch's
    norm.update(x)
    exact = x.to(torch.float64)
    torch.testing.assert_close(norm.mean, exact.mean(0), rtol=1e-12, atol=0)
    torch.testing.assert_close(norm.var, exact.var(0, unbiased=False), rtol=1e-6, atol=0)


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


def test_building_and_training_leave_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    NativePPO(_TargetEnv(), PPOConfig(num_steps=8, seed=3)).learn(8 * 8 * 2)
    assert torch.equal(torch.get_rng_state(), before)


def test_skipping_the_bootstrap_on_steps_without_truncation_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from finrl_lite.agents.native import ppo

    needed: list[bool] = []
    original = ppo._bootstrap_needed

    def counted(truncated: torch.Tensor) -> bool:
        needed.append(original(truncated))
        return needed[-1]

    monkeypatch.setattr(ppo, "_bootstrap_needed", counted)
    skipping = NativePPO(_TargetEnv(), PPOConfig(num_steps=8, seed=3)).learn(8 * 8 * 3)
    assert needed.count(True) == 24 // 5 and needed.count(False) == 24 - 24 // 5  # episodes of 5 steps
    monkeypatch.setattr(ppo, "_bootstrap_needed", lambda truncated: True)
    always = NativePPO(_TargetEnv(), PPOConfig(num_steps=8, seed=3)).learn(8 * 8 * 3)
    for a, b in zip(skipping.policy.state_dict().values(), always.policy.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


class _Interrupt(Exception):
    pass


def test_interrupted_learn_resumes_exactly(tmp_path: Path) -> None:
    cfg = PPOConfig(num_steps=8, seed=2, learning_rate=1e-3)
    straight, lrs = NativePPO(_TargetEnv(), cfg), []
    straight.learn(8 * 8 * 4, callback=lambda p: lrs.append(p.extra["learning_rate"]))
    assert lrs == pytest.approx([1e-3, 0.75e-3, 0.5e-3, 0.25e-3])

    env = _TargetEnv()
    agent = NativePPO(env, cfg)

    def interrupt(p) -> None:  # noqa: ANN001
        if p.steps == 8 * 8 * 2:
            agent.save(tmp_path / "checkpoint.pt", training_state=True)
            raise _Interrupt

    with pytest.raises(_Interrupt):
        agent.learn(8 * 8 * 4, callback=interrupt)
    env_copy = _TargetEnv()
    env_copy.t = env.t.clone()  # the env's own snapshot
    resumed, resumed_lrs = NativePPO.load(tmp_path / "checkpoint.pt", env=env_copy), []
    assert resumed.num_timesteps == 128 and resumed.schedule_horizon == 256
    resumed.learn(256 - resumed.num_timesteps, callback=lambda p: resumed_lrs.append(p.extra["learning_rate"]))
    assert resumed_lrs == lrs[2:]
    for a, b in zip(resumed.policy.state_dict().values(), straight.policy.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # weights and the running normalisation
    assert resumed.recent_returns == straight.recent_returns
    assert torch.equal(resumed.generator.get_state(), straight.generator.get_state())
    lean = torch.load(straight.save(tmp_path / "model.pt"), weights_only=True)
    assert "training_state" not in lean and lean["num_timesteps"] == 256


def test_budget_asked_is_the_budget_learned() -> None:
    """A budget smaller than one rollout is one shorter rollout; a larger one ends with a shorter rollout."""
    assert rollout_lengths(4096, 128, 2048) == [32]  # SB3 PPO's default rollout on the quick start's 128 envs
    assert rollout_lengths(512, 256, 32) == [2]
    assert rollout_lengths(100, 8, 8) == [8, 5] and rollout_lengths(128, 8, 8) == [8, 8] and rollout_lengths(0, 8, 8) == []
    seen: list[tuple[int, int]] = []
    agent = NativePPO(_TargetEnv(), PPOConfig(num_steps=8, seed=0, learning_rate=1e-3))
    agent.learn(100, callback=lambda p: seen.append((p.steps, p.total_steps)))
    assert seen == [(64, 104), (104, 104)] and agent.num_timesteps == 104  # 100 rounded up to whole batched steps
    short = NativePPO(_TargetEnv(), PPOConfig(num_steps=64, seed=0)).learn(16)
    assert short.num_timesteps == 16  # not a whole rollout of 64 x 8 steps


def test_interrupted_learn_with_a_shorter_last_rollout_resumes_exactly(tmp_path: Path) -> None:
    cfg = PPOConfig(num_steps=8, seed=2, learning_rate=1e-3)
    straight = NativePPO(_TargetEnv(), cfg).learn(100)
    env = _TargetEnv()
    agent = NativePPO(env, cfg)

    def interrupt(p) -> None:  # noqa: ANN001
        agent.save(tmp_path / "checkpoint.pt", training_state=True)
        raise _Interrupt

    with pytest.raises(_Interrupt):
        agent.learn(100, callback=interrupt)
    env_copy = _TargetEnv()
    env_copy.t = env.t.clone()
    resumed = NativePPO.load(tmp_path / "checkpoint.pt", env=env_copy)
    resumed.learn(100 - resumed.num_timesteps)  # the rest of the budget: the same shorter last rollout
    assert resumed.num_timesteps == straight.num_timesteps == 104
    for a, b in zip(resumed.policy.state_dict().values(), straight.policy.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_explained_variance_by_hand() -> None:
    values, returns = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.5, 2.0, 2.5, 5.0])
    # Var(returns) = 7.25 / 4; returns - values = [0.5, 0, -0.5, 1] with Var = 1.25 / 4 (population variances)
    assert float(explained_variance(values, returns)) == pytest.approx(1.0 - 1.25 / 7.25)
    y, y_hat = returns.numpy(), values.numpy()
    assert float(explained_variance(values, returns)) == pytest.approx(1.0 - np.var(y - y_hat) / np.var(y))  # CleanRL's
    assert float(explained_variance(returns, returns)) == 1.0
    assert math.isnan(float(explained_variance(values, torch.full((4,), 2.0))))  # constant returns


def test_update_diagnostics_and_target_kl(caplog: pytest.LogCaptureFixture) -> None:
    cfg = PPOConfig(num_steps=16, update_epochs=4, learning_rate=3e-3, seed=1)
    seen: list[dict[str, float]] = []
    with caplog.at_level(logging.INFO, logger="finrl_lite.agents.native.ppo"):
        NativePPO(_TargetEnv(), cfg).learn(8 * 16 * 4, callback=lambda p: seen.append(p.extra))
    assert len(seen) == 4 and "approx-KL" in caplog.text and "explained variance" in caplog.text
    for extra in seen:
        assert extra["epochs"] == 4
        assert 0.0 <= extra["clip_fraction"] <= 1.0 and extra["approx_kl"] >= 0.0
        assert math.isfinite(extra["explained_variance"]) and extra["explained_variance"] <= 1.0
    assert max(e["clip_fraction"] for e in seen) > 0.0 and max(e["approx_kl"] for e in seen) > 0.0

    early: list[dict[str, float]] = []
    target = 1e-6
    NativePPO(_TargetEnv(), PPOConfig(**{**cfg.__dict__, "target_kl": target})).learn(
        8 * 16 * 4, callback=lambda p: early.append(p.extra)
    )
    assert [e["epochs"] for e in early] == [1, 1, 1, 1]  # stopped after the first epoch each time
    assert all(e["approx_kl"] > target for e in early)  # the number that stopped it
