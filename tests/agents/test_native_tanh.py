"""The native agents' tanh: numpy's values on CPU, torch's gradient formula, torch.tanh elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from finrl_lite.agents.native.tanh import Tanh


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_are_tanh_to_within_two_ulp(dtype: torch.dtype) -> None:
    x = torch.cat(
        [torch.linspace(-20, 20, 100_001, dtype=dtype), torch.randn(10_000, dtype=dtype) * 1e-4, torch.zeros(1, dtype=dtype)]
    )
    exact = torch.tanh(x.to(torch.float64))
    ulp = torch.from_numpy(np.spacing(np.abs(exact.to(dtype).numpy()))).to(torch.float64)
    y = Tanh()(x)
    assert y.dtype == dtype and y.shape == x.shape
    assert float(((y.to(torch.float64) - exact).abs() / ulp).max()) <= 2.0
    assert float(y[-1]) == 0.0 and torch.equal(Tanh()(torch.tensor([-torch.inf, torch.inf])), torch.tensor([-1.0, 1.0]))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-8, 8, allow_nan=False), min_size=1, max_size=12))
def test_gradient_is_that_of_tanh(values: list[float]) -> None:
    x = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(Tanh(), (x,))
    grad = torch.randn(len(values), dtype=torch.float64)
    (ours,) = torch.autograd.grad(Tanh()(x), x, grad)
    (reference,) = torch.autograd.grad(torch.tanh(x), x, grad)
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-15)


def test_a_dtype_numpy_lacks_goes_to_torch_and_strided_inputs_work() -> None:
    x = torch.randn(5, 3, dtype=torch.bfloat16)
    assert torch.equal(Tanh()(x), torch.tanh(x))
    wide = torch.randn(4, 6)
    torch.testing.assert_close(Tanh()(wide[:, ::2]), torch.tanh(wide[:, ::2]))
    for shape in [(), (0,), (0, 3)]:  # a 0-d input (numpy returns a scalar for it) and empty ones
        x = torch.full(shape, 0.5)
        torch.testing.assert_close(Tanh()(x), torch.tanh(x))
    assert list(Tanh().state_dict()) == []  # no parameters: checkpoints of the networks are unchanged
