"""Fused CPU step of the stock-trading environment: same inputs and outputs as
:func:`finrl_lite.envs.stock_trading.step`, computed by one compiled kernel.

Why: the torch core is the reference and the GPU path, but on a CPU each of its ~300 batched ops (29
tickers) is a pass over memory, and the buy rule needs a sort, so a step of thousands of environments is
bound by memory traffic. The kernel (:mod:`finrl_lite.envs.fused_kernel`, numba) does the whole step of one
environment in registers and runs the environments in parallel on torch's intra-op thread count. It is
compiled on first use (a few seconds, then cached on disk) and tested equal to the torch core across its
options. Accounting is float64 only: float32 accounting is for GPU speed runs, where the torch core runs.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

import torch

from finrl_lite.envs.market import EnvMarket
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.recycling import TensorRecycler
from finrl_lite.envs.stock_state import StepInfo, StockTradingState
from finrl_lite.errors import ConfigError, MissingDependencyError

__all__ = ["check_fused_supported", "fused_step"]

_REWARDS = {"asset_change": 0, "log_return": 1, "differential_sharpe": 2}
_SERIAL_BELOW = 64  # smaller batches run on the calling thread (waking the others costs more than they save)
_CHUNKS_PER_THREAD = 4  # a few chunks per thread even out a slow or preempted thread


_MARKET_VIEWS: weakref.WeakKeyDictionary[EnvMarket, tuple[tuple[int, ...], tuple[Any, ...]]] = weakref.WeakKeyDictionary()


def _market_views(market: EnvMarket) -> tuple[Any, ...]:
    """Numpy views of the market tensors the kernel reads, made once per market (remade if a tensor moved,
    as ``share_memory_()`` does in place)."""
    assert market.obs_table is not None
    tensors = (market.open, market.close, market.data.valid, market.risk, market.day, market.obs_table)
    pointers = tuple(x.data_ptr() for x in tensors)
    cached = _MARKET_VIEWS.get(market)
    if cached is None or cached[0] != pointers:
        cached = (pointers, tuple(x.numpy() for x in tensors))
        _MARKET_VIEWS[market] = cached
    return cached[1]


def _kernel() -> Any:
    try:
        from finrl_lite.envs import fused_kernel
    except ImportError as exc:
        raise MissingDependencyError("step_mode='fused' needs numba: pip install numba") from exc
    return fused_kernel


def check_fused_supported(params: StockTradingParams, device: torch.device) -> None:
    """Raise :class:`ConfigError` (or :class:`MissingDependencyError`) when the fused step cannot run."""
    if device.type != "cpu":
        raise ConfigError(f"step_mode='fused' is a CPU kernel; the device is {device} (use 'eager', 'compile' or 'cuda_graph')")
    if params.dtype != torch.float64:
        raise ConfigError("step_mode='fused' accounts in float64; float32 accounting runs with step_mode='eager' or 'compile'")
    _kernel()


@functools.lru_cache(maxsize=64)
def _kernel_params(params: StockTradingParams, first_start: int, last_start: int, autoreset: bool, final_obs: bool) -> Any:
    """The kernel's scalars (built once per settings, not every step)."""
    return _kernel().KernelParams(
        hmax=float(params.hmax),
        initial_amount=float(params.initial_amount),
        buy_cost_pct=float(params.buy_cost_pct),
        sell_cost_pct=float(params.sell_cost_pct),
        min_cost=float(params.min_cost),
        slippage=params.slippage_bps * 1e-4,
        lot_size=float(params.lot_size),
        fractional=params.fractional,
        short_selling=params.short_selling,
        t_plus_1=params.t_plus_1,
        next_open=params.execution == "next_open",
        target_weights=params.action_mode == "target_weights",
        has_threshold=params.turbulence_threshold is not None,
        threshold=float(params.turbulence_threshold) if params.turbulence_threshold is not None else 0.0,
        reward=_REWARDS[params.reward],
        reward_scaling=float(params.reward_scaling),
        sharpe_eta=float(params.sharpe_eta),
        ruin_level=params.ruin_fraction * params.initial_amount,
        cash_scale=float(params.cash_scale),
        holdings_scale=float(params.holdings_scale),
        episode_length=-1 if params.episode_length is None else int(params.episode_length),
        first_start=first_start,
        last_start=last_start,
        autoreset=autoreset,
        final_obs=final_obs,
    )


def fused_step(
    state: StockTradingState,
    action: torch.Tensor,
    params: StockTradingParams,
    market: EnvMarket,
    *,
    autoreset: bool = True,
    final_obs: bool = True,
    recycler: TensorRecycler | None = None,
) -> tuple[StockTradingState, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, StepInfo]:
    """:func:`finrl_lite.envs.stock_trading.step` on the CPU, fused (same arguments, same outputs).

    ``recycler`` is an environment's pool of output memory, kept across steps (see
    :mod:`finrl_lite.envs.recycling`): a returned tensor is never written again while anything
    references it. Without one, every output is freshly allocated. The ``[B]`` outputs are rows of a few
    packed tensors, so keeping one of them (rewards in a list, say) keeps its whole pack: clone to keep
    less.
    """
    kernel = _kernel()
    if market.obs_table is None:
        raise ValueError("market has no observation table: build it with attach_observation_table")
    b, n = state.holdings.shape
    if tuple(action.shape) != (b, n):  # the kernel indexes without bounds checks
        raise ValueError(f"action has shape {tuple(action.shape)}; the fused step needs ({b}, {n})")
    empty = recycler.empty if recycler is not None else TensorRecycler(depth=0).empty
    f64 = torch.float64
    action = action.to(f64).contiguous()
    # four allocations instead of ~23: a step's cost at small batches is mostly Python per tensor
    packed = (
        empty((11, b), f64),
        empty((5, b), torch.int64),
        empty((3, b), torch.bool),
        empty((3 if params.t_plus_1 else 2, b, n), f64),
    )
    table = market.obs_table
    obs = empty((b, table.shape[1]), table.dtype)
    last = empty((b, table.shape[1]), table.dtype) if (final_obs and autoreset) else obs
    args = (
        _kernel_params(params, market.first_start, market.last_start, autoreset, final_obs),
        _market_views(market),
        StockTradingState(*[x.contiguous().numpy() for x in state]),
        action.detach().numpy(),
        tuple(x.numpy() for x in packed),
        obs.numpy(),
        last.numpy(),
    )
    threads = min(torch.get_num_threads(), kernel.numba.config.NUMBA_NUM_THREADS)
    if b < _SERIAL_BELOW or threads <= 1:
        kernel.step_range(0, b, *args)
    else:
        kernel.numba.set_num_threads(threads)
        kernel.step_batch(threads * _CHUNKS_PER_THREAD, *args)
    new, out = kernel.unpack_outputs.py_func(state, *packed, params.t_plus_1)
    info = StepInfo(
        portfolio_value=out.portfolio_value,
        cash=out.cash,
        holdings=out.holdings,
        costs=out.costs,
        total_costs=out.total_costs,
        turnover=out.turnover,
        trades=out.trades,
        turbulent=out.turbulent,
        final_obs=last,
    )
    return new, obs, out.reward, out.terminated, out.truncated, info
