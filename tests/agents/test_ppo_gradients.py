"""The hand-written gradient of native PPO's loss against autograd on CleanRL's loss written with torch ops."""

from __future__ import annotations

import pytest
import torch

from finrl_lite.agents.native import matmul
from finrl_lite.agents.native.ppo import ActorCritic, PPOConfig
from finrl_lite.agents.native.ppo_gradients import Minibatch, ppo_gradients


def _reference_loss(policy: ActorCritic, b: Minibatch, cfg: PPOConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """CleanRL's PPO loss for a Gaussian policy, differentiated by autograd, and its statistics."""
    new_logp = policy.log_prob(policy.action_mean(b.obs), b.actions)
    log_ratio = new_logp - b.log_probs
    ratio = log_ratio.exp()
    approx_kl = ((ratio - 1.0) - log_ratio).mean()
    clip_fraction = ((ratio - 1.0).abs() > cfg.clip_coef).float().mean()
    adv = b.advantages
    if cfg.norm_adv and adv.numel() > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
    new_val = policy.value(b.obs)
    if cfg.clip_vloss:
        clipped = b.values + (new_val - b.values).clamp(-cfg.clip_coef, cfg.clip_coef)
        v_loss = 0.5 * torch.max((new_val - b.returns) ** 2, (clipped - b.returns) ** 2).mean()
    else:
        v_loss = 0.5 * ((new_val - b.returns) ** 2).mean()
    entropy = policy.entropy()
    loss = pg_loss - cfg.ent_coef * entropy + cfg.vf_coef * v_loss
    return loss, torch.stack([pg_loss, v_loss, entropy, approx_kl, clip_fraction]).detach()


def _batch(policy: ActorCritic, n: int, obs_size: int, action_size: int, seed: int, device: str = "cpu") -> Minibatch:
    """Rows whose old log-densities and values are spread around the current ones, so that both clippings bind on
    some rows and not on others."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, obs_size, generator=g).to(device)
    actions = (torch.randn(n, action_size, generator=g) * 0.6).to(device)
    with torch.no_grad():
        log_probs = policy.log_prob(policy.action_mean(obs), actions) + (torch.randn(n, generator=g) * 0.3).to(device)
        values = policy.value(obs) + (torch.randn(n, generator=g) * 0.3).to(device)
    advantages = (torch.randn(n, generator=g) + 0.2).to(device)
    return Minibatch(obs, actions, log_probs, values, advantages, values + torch.randn(n, generator=g).to(device))


@pytest.fixture(params=["onednn", "torch", "cuda"])
def device(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every product of the written-out passes by oneDNN (even the small ones), all by ``torch.addmm``/``mm`` on the
    CPU, or on the GPU."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if request.param == "onednn":
        if not matmul._probe():
            pytest.skip("torch has no working oneDNN linear here")
        monkeypatch.setattr(matmul, "_MIN_MACS", 0)
        assert matmul._onednn(torch.ones(1, 1), torch.ones(1, 1))
    elif request.param == "torch":
        monkeypatch.setattr(matmul, "USE_ONEDNN", False)
    return "cuda" if request.param == "cuda" else "cpu"


@pytest.mark.parametrize(
    "cfg",
    [
        PPOConfig(ent_coef=0.01),
        PPOConfig(hidden_sizes=(16, 8, 12), clip_vloss=False, norm_adv=False, clip_coef=0.1, vf_coef=0.7),
        PPOConfig(hidden_sizes=(5,), ent_coef=0.1),
        PPOConfig(hidden_sizes=()),
    ],
    ids=["default", "three-layers-unclipped-value", "one-layer", "linear"],
)
def test_gradients_match_autograd_on_the_clipped_loss(cfg: PPOConfig, device: str) -> None:
    obs_size, action_size = 11, 3
    policy = ActorCritic(obs_size, action_size, cfg).to(device)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())).to(device) * 0.1)
    batch = _batch(policy, 512, obs_size, action_size, seed=3, device=device)
    loss, expected_stats = _reference_loss(policy, batch, cfg)
    expected = dict(_named_grads(policy, loss))

    stats = ppo_gradients(policy, batch, cfg)

    torch.testing.assert_close(stats, expected_stats, rtol=1e-5, atol=1e-6)
    assert 0.05 < float(stats[4]) < 0.95  # the policy's clipping binds on some rows only
    for name, p in policy.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-6, msg=name)


def _named_grads(policy: ActorCritic, loss: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    names, params = zip(*policy.named_parameters(), strict=True)
    return list(zip(names, torch.autograd.grad(loss, params), strict=True))


def test_value_clipping_binds_on_some_rows() -> None:
    """The batch above exercises the clipped value branch: its gradient is zero on rows where it binds."""
    cfg = PPOConfig()
    policy = ActorCritic(11, 3, cfg)
    batch = _batch(policy, 512, 11, 3, seed=3)
    with torch.no_grad():
        change = (policy.value(batch.obs) - batch.values).abs()
    assert 0.05 < float((change > cfg.clip_coef).float().mean()) < 0.95
