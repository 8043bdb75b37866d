"""The gradient of native PPO's minibatch loss, written out: the actor-critic's backward pass by hand.

On CPU the update is most of a native PPO run, and its matrix products already run near the cores' peak; what
autograd adds around them is not arithmetic. Written out, the actor's and the critic's first layers (the wide
ones, over the whole observation) are one matrix product forward and one backward, each tanh backward is one
fused kernel, and no graph is recorded.

The loss is CleanRL's: ``policy_loss - ent_coef * entropy + vf_coef * value_loss`` with the clipped surrogate, the
value loss clipped like the policy when ``clip_vloss``, and advantages normalised per minibatch when ``norm_adv``.
Where the clipping binds, the gradient is autograd's subgradient of ``torch.maximum`` and ``clamp``;
``tests/agents/test_ppo_gradients.py`` checks every parameter's gradient against autograd on that loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import nn

from finrl_lite.agents.native.matmul import linear, linear_input_grad, linear_weight_grad
from finrl_lite.agents.native.tanh import tanh

if TYPE_CHECKING:
    from finrl_lite.agents.native.ppo import ActorCritic, PPOConfig

__all__ = ["ForwardPass", "Minibatch", "forward_pass", "ppo_gradients"]


@dataclass
class Minibatch:
    """Rows of a rollout: the normalised observations, actions, log-densities and values seen when acting, and the
    advantages and returns."""

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


def _linears(net: nn.Sequential) -> list[nn.Linear]:
    return [m for m in net if isinstance(m, nn.Linear)]


class ForwardPass(NamedTuple):
    """The actor-critic's outputs on a batch, with the activations its backward pass reads."""

    first: torch.Tensor
    """Both first layers' output after the activation: the actor's columns, then the critic's."""
    inputs: tuple[list[torch.Tensor], list[torch.Tensor]]
    """``inputs[k][i]``: the input of layer ``i + 1`` of the actor (``k = 0``) or the critic (``k = 1``)."""
    mean: torch.Tensor
    value: torch.Tensor


def forward_pass(policy: ActorCritic, obs: torch.Tensor) -> ForwardPass:
    """The action means and values of normalised observations; the actor's and the critic's first layers (the widest
    matrix products) are one product over the observations."""
    nets = _linears(policy.actor), _linears(policy.critic)
    first = [net[0] for net in nets]
    z = linear(obs, torch.cat([m.weight for m in first]), torch.cat([m.bias for m in first]))
    hidden = len(nets[0]) > 1  # the actor and the critic have the same hidden sizes
    first_out = tanh(z) if hidden else z
    heads = first_out.split([m.out_features for m in first], dim=1)
    inputs: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
    outputs = []
    for net, head, layer_inputs in zip(nets, heads, inputs, strict=True):
        x = head
        for i, layer in enumerate(net[1:], start=1):
            layer_inputs.append(x)
            x = linear(x, layer.weight, layer.bias)
            if i < len(net) - 1:
                x = tanh(x)
        outputs.append(x)
    return ForwardPass(first_out, inputs, outputs[0], outputs[1].squeeze(-1))


def _backward(net: list[nn.Linear], inputs: list[torch.Tensor], grad_out: torch.Tensor) -> torch.Tensor:
    """Set the gradients of ``net``'s layers after the first; return the gradient at the first layer's output."""
    g = grad_out
    for layer, x in zip(reversed(net[1:]), reversed(inputs), strict=True):
        layer.weight.grad = g.t().mm(x)  # MKL: faster than oneDNN for these narrow layers
        layer.bias.grad = g.sum(0)
        g = linear_input_grad(g, layer.weight)
        if x is not inputs[0]:
            g = torch.ops.aten.tanh_backward(g, x)
    return g


@torch.no_grad()
def ppo_gradients(policy: ActorCritic, batch: Minibatch, cfg: PPOConfig) -> torch.Tensor:
    """Set every parameter's ``.grad`` to the gradient of PPO's loss on ``batch`` (see the module docstring).

    Returns:
        ``[policy_loss, value_loss, entropy, approx_kl, clip_fraction]`` on the device.
    """
    n, eps = batch.obs.shape[0], cfg.clip_coef
    first_out, inputs, mean, value = forward_pass(policy, batch.obs)

    # policy: the clipped surrogate, through the Gaussian log-density
    diff = batch.actions - mean
    scaled = diff * torch.exp(-2.0 * policy.log_std)  # (a - mean) / variance: d log-density / d mean
    squares = diff * scaled  # d log-density / d log-std is squares - 1
    log_ratio = policy.log_prob_of_squares(squares) - batch.log_probs
    ratio = log_ratio.exp()
    approx_kl = ((ratio - 1.0) - log_ratio).mean()
    clip_fraction = ((ratio - 1.0).abs() > eps).to(ratio.dtype).mean()
    adv = batch.advantages
    if cfg.norm_adv and n > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    unclipped, clipped = -adv * ratio, -adv * ratio.clamp(1.0 - eps, 1.0 + eps)
    policy_loss = torch.maximum(unclipped, clipped).mean()
    # where the clipped term is the larger one its clamp binds (else the two are equal): no gradient there
    d_log_prob = torch.where(unclipped >= clipped, -adv, 0.0) * ratio / n
    d_mean = d_log_prob.unsqueeze(-1) * scaled
    policy.log_std.grad = (d_log_prob.unsqueeze(-1) * squares).sum(0) - d_log_prob.sum() - cfg.ent_coef
    entropy = policy.entropy()

    # value: the squared error, clipped around the value seen when acting
    error = value - batch.returns
    if cfg.clip_vloss:
        change = value - batch.values
        clipped_error = batch.values + change.clamp(-eps, eps) - batch.returns
        squared, clipped_squared = error.square(), clipped_error.square()
        value_loss = 0.5 * torch.maximum(squared, clipped_squared).mean()
        d_value = torch.where(squared >= clipped_squared, error, torch.where(change.abs() <= eps, clipped_error, 0.0))
    else:
        value_loss = 0.5 * error.square().mean()
        d_value = error
    d_value = d_value * (cfg.vf_coef / n)

    actor, critic = _linears(policy.actor), _linears(policy.critic)
    d_first = torch.cat([_backward(actor, inputs[0], d_mean), _backward(critic, inputs[1], d_value.unsqueeze(-1))], dim=1)
    if len(actor) > 1:
        d_first = torch.ops.aten.tanh_backward(d_first, first_out)
    weight_grad, bias_grad = linear_weight_grad(d_first, batch.obs), d_first.sum(0)
    sizes = [actor[0].out_features, critic[0].out_features]
    for layer, w, b in zip((actor[0], critic[0]), weight_grad.split(sizes), bias_grad.split(sizes), strict=True):
        layer.weight.grad, layer.bias.grad = w, b
    return torch.stack([policy_loss, value_loss, entropy, approx_kl, clip_fraction])
