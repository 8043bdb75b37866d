"""The native agents' dense-layer products, by oneDNN on CPU where torch has it.

torch's CPU ``addmm``/``mm`` call MKL, whose float32 kernels on AMD processors use AVX2 only; oneDNN, which torch
also ships (``torch.backends.mkldnn``), picks its kernels from the instruction set alone. On the AVX-512 AMD EPYC
machines we measured, oneDNN's float32 products ran the native PPO's widest layer (8,192 x 291 by 291 x 128) in
under half MKL's time. Same float32 arithmetic (accumulation order aside), so the results agree to rounding;
``tests/agents/test_ppo_gradients.py`` runs the written-out gradient both ways.

Elsewhere (an accelerator, a torch without oneDNN, or :data:`USE_ONEDNN` set False) these are ``torch.addmm`` and
``torch.mm``. The op used, ``torch.ops.mkldnn._linear_pointwise``, is the one torch's own CPU compiler emits for
linear layers; it is checked on a small product at first use and not used if it fails or disagrees.
"""

from __future__ import annotations

import logging

import torch

__all__ = ["USE_ONEDNN", "linear", "linear_input_grad", "linear_weight_grad"]

logger = logging.getLogger(__name__)

USE_ONEDNN = True
"""Use oneDNN on CPU when it works (set False to compare with MKL)."""
_works: bool | None = None


_MIN_MACS = 1 << 21
"""Smaller products go to MKL: oneDNN's fixed cost per call (about 10 us) is larger than what it saves there."""


def _onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    global _works
    if not USE_ONEDNN or x.device.type != "cpu" or x.dtype != torch.float32 or x.numel() * weight.shape[0] < _MIN_MACS:
        return False
    if _works is None:
        _works = _probe()
    return _works


def _probe() -> bool:
    """Whether oneDNN's linear runs here and agrees with ``addmm`` on a small product."""
    if not torch.backends.mkldnn.is_available():
        return False
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(shape, generator=g) for shape in ((37, 19), (5, 19), (5,)))
    try:
        y = torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
    except (AttributeError, RuntimeError) as err:
        logger.debug("oneDNN linear unavailable (%s); native agents use torch.addmm", err)
        return False
    return bool(torch.allclose(y, torch.addmm(b, x, w.t()), rtol=1e-5, atol=1e-5))


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ weight.T + bias`` (``[B, in] x [out, in] -> [B, out]``)."""
    if _onednn(x, weight):
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    return x.mm(weight.t()) if bias is None else torch.addmm(bias, x, weight.t())


def linear_input_grad(grad_out: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``grad_out @ weight``: the gradient of :func:`linear` with respect to its input."""
    return linear(grad_out, weight.t())


def linear_weight_grad(grad_out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``grad_out.T @ x``: the gradient of :func:`linear` with respect to its weight."""
    return linear(grad_out.t(), x.t())
