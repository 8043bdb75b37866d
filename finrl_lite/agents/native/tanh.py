"""The tanh activation of the native agents' networks, computed by numpy's vectorised tanh on CPU.

torch's CPU tanh kernel (torch 2.13) costs about 2 ns per float32 element, 4x its own ``exp`` and 13x numpy's
SIMD ``np.tanh`` on the same machine: in the native PPO it was 13% of an update and a fifth of a rollout's
torch time. On CPU, :class:`Tanh` therefore takes the values from numpy and the gradient from torch's own
``tanh_backward`` (``grad * (1 - y**2)``, what autograd does for ``torch.tanh``); elsewhere (an accelerator, a
dtype numpy lacks) it is ``torch.tanh``. numpy's float32 tanh is within 1.4 ulp of the exact value (torch's
within 0.5): the same function, rounded a little differently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["Tanh", "tanh"]

_NUMPY_DTYPES = (torch.float32, torch.float64)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """``torch.tanh(x)`` without autograd, by numpy's kernel on CPU (see the module docstring)."""
    if x.device.type == "cpu" and x.dtype in _NUMPY_DTYPES:
        return torch.from_numpy(np.asarray(np.tanh(x.detach().numpy())))  # asarray: numpy returns a scalar for 0-d input
    return torch.tanh(x)


class _NumpyTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


class Tanh(nn.Module):
    """``nn.Tanh`` with numpy's kernel on CPU (see the module docstring); no parameters, so state dicts are unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype in _NUMPY_DTYPES:
            return _NumpyTanh.apply(x)
        return torch.tanh(x)
