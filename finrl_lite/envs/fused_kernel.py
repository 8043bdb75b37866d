"""The numba kernel of the fused stock-trading step (see :mod:`finrl_lite.envs.fused_step`).

:func:`step_range` is the whole step of a range of environments, each on its own: orders, sells, buys in
priority order, valuation, reward, autoreset and the observation rows, statement for statement the rules
of the torch core (:mod:`~finrl_lite.envs.actions`, :mod:`~finrl_lite.envs.simulator`,
:mod:`~finrl_lite.envs.rewards`, :mod:`~finrl_lite.envs.observation`); :func:`step_batch` runs chunks
of the batch in parallel. The environment body sits inline in the loop on purpose: a per-environment
function call would copy the ~25 array structs of its arguments every time. Data-dependent branches are
written branch-free where a random action makes them unpredictable. Accounting is float64; arrays come in
as numpy views of the torch tensors, grouped in NamedTuples.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numba
import numpy as np

from finrl_lite.envs.market import hash_uniform
from finrl_lite.envs.stock_state import StockTradingState

__all__ = ["KernelInfo", "KernelParams", "step_batch", "step_range", "unpack_outputs"]

_TINY = 1e-12
njit = numba.njit(cache=True, nogil=True, error_model="numpy")  # IEEE results, no ZeroDivisionError checks


class KernelParams(NamedTuple):
    """:class:`~finrl_lite.envs.params.StockTradingParams` and the start range as scalars (numba specialises on types)."""

    hmax: float
    initial_amount: float
    buy_cost_pct: float
    sell_cost_pct: float
    min_cost: float
    slippage: float
    lot_size: float
    fractional: bool
    short_selling: bool
    t_plus_1: bool
    next_open: bool
    target_weights: bool
    has_threshold: bool
    threshold: float
    reward: int  # 0 asset_change, 1 log_return, 2 differential_sharpe
    reward_scaling: float
    sharpe_eta: float
    ruin_level: float
    cash_scale: float
    holdings_scale: float
    episode_length: int  # -1: to the end of the data
    first_start: int
    last_start: int
    autoreset: bool
    final_obs: bool


class KernelInfo(NamedTuple):
    """Per-environment outputs of a step besides the next state and the observations."""

    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    portfolio_value: np.ndarray
    cash: np.ndarray
    holdings: np.ndarray
    costs: np.ndarray
    total_costs: np.ndarray
    turnover: np.ndarray
    trades: np.ndarray
    turbulent: np.ndarray


hash_draw = njit(hash_uniform)


@njit
def floor_div(a: float, b: float) -> float:
    """Python's ``a // b`` for ``a >= 0, b > 0`` (what FinRL and ``torch.div(rounding_mode="floor")`` compute).

    ``floor(a / b)`` is the exact floor unless the rounded quotient landed on an integer from just below;
    then ``a - q * b`` is within a few ulps of 0 and CPython's slower fmod-based ``//`` (numba's) decides.
    """
    q = np.floor(a / b)
    if a - q * b > a * 1e-15:
        return q
    return a // b


@njit
def clip_action(x: float, low: float, high: float) -> float:
    """``x`` clipped to ``[low, high]``, NaN as 0 (``nan_to_num(0).clamp`` in the torch core)."""
    if x != x:
        return 0.0
    return min(max(x, low), high)


@njit
def whole_lots(p: KernelParams, shares: float, toward_zero: bool) -> float:
    """``shares`` in whole lots, rounded toward zero (orders: FinRL's ``astype(int)``) or down (what cash affords)."""
    if p.fractional:
        return shares
    lots = shares / p.lot_size
    return (np.trunc(lots) if toward_zero else np.floor(lots)) * p.lot_size  # floats: math's give int64


@njit
def episode_start(p: KernelParams, key: int, episode: int) -> int:
    span = p.last_start - p.first_start + 1
    return p.first_start + hash_draw(key, episode) % span


@njit
def write_obs(p: KernelParams, obs: Any, b: int, table: Any, t: int, cash: float, holdings: Any) -> None:
    """Row ``b`` of ``obs``: bar ``t``'s row of the observation table, then cash and holdings."""
    n = holdings.shape[0]
    for j in range(obs.shape[1]):
        obs[b, j] = table[t, j]
    obs[b, 0] = cash * p.cash_scale
    for i in range(n):
        obs[b, 1 + n + i] = holdings[i] * p.holdings_scale


@njit
def unpack_outputs(s, f64, i64, flags, planes, t_plus_1):  # noqa: ANN001, ANN201
    """The packed outputs as the next state and the info, row by row: the one definition of the layout.

    ``f64 [11, B]``, ``i64 [5, B]``, ``flags [3, B]`` and ``planes [2 or 3, B, N]`` (the locked plane only
    with T+1); the key, and the locked shares without T+1 (always zero), are the input state's. Plain
    indexing, so :func:`fused_step` runs the same function on the torch tensors (``.py_func``).
    """
    out = StockTradingState(
        t=i64[0],
        end=i64[1],
        cash=f64[0],
        holdings=planes[0],
        locked=planes[2] if t_plus_1 else s.locked,
        value=f64[1],
        sharpe_a=f64[2],
        sharpe_b=f64[3],
        total_costs=f64[4],
        steps=i64[2],
        episode=i64[3],
        key=s.key,
    )
    info = KernelInfo(
        reward=f64[5],
        terminated=flags[0],
        truncated=flags[1],
        portfolio_value=f64[6],
        cash=f64[7],
        holdings=planes[1],
        costs=f64[8],
        total_costs=f64[9],
        turnover=f64[10],
        trades=i64[4],
        turbulent=flags[2],
    )
    return out, info


@njit
def step_range(start, stop, p, mk, s, action, packed, obs, final):  # noqa: ANN001, PLR0912, PLR0915
    """Step environments ``start`` to ``stop - 1`` (plain serial code; :func:`step_batch` runs chunks in parallel)."""
    open_, close, valid, risk, day, table = mk
    out, info = unpack_outputs(s, packed[0], packed[1], packed[2], packed[3], p.t_plus_1)
    n = close.shape[1]
    # per-call scratch rows: they stay in L1 whatever the batch size
    orders = np.empty(n)  # signed orders of the tradable tickers
    bought = np.empty(n)  # shares bought per ticker
    wanted = np.empty(n)  # the positive orders, compacted
    column = np.empty(n, dtype=np.int64)  # their tickers
    rank = np.empty(n, dtype=np.int64)  # tickers in buy priority
    last_bar = close.shape[0] - 1
    fill_px = open_ if p.next_open else close  # indexed, not sliced: a row view per environment costs
    for b in range(start, stop):
        t = s.t[b]
        t_next = min(t + 1, last_bar)
        fill = t_next if p.next_open else t
        turbulent = p.has_threshold and risk[t] >= p.threshold
        same_day = True
        if p.t_plus_1:
            same_day = day[fill] == day[max(fill - 1, 0)]
        holdings = out.holdings[b]
        cash = s.cash[b]

        # ---- orders (tradable tickers only)
        if p.target_weights:
            wsum = 0.0
            pv = 0.0
            for i in range(n):
                wsum += clip_action(action[b, i], 0.0, 1.0)
                pv += s.holdings[b, i] * fill_px[fill, i]
            pv = cash + pv
            denom = max(wsum, 1.0)
            for i in range(n):
                h = s.holdings[b, i]
                a = action[b, i]
                if valid[fill, i] and fill_px[fill, i] > 0.0 and a == a:  # NaN weight: no order, keep the shares
                    w = clip_action(a, 0.0, 1.0) / denom
                    orders[i] = whole_lots(p, w * pv / fill_px[fill, i] - h, True)
                else:
                    orders[i] = 0.0
        else:
            for i in range(n):
                orders[i] = (
                    whole_lots(p, clip_action(action[b, i], -1.0, 1.0) * p.hmax, True)
                    if valid[fill, i] and fill_px[fill, i] > 0.0
                    else 0.0
                )

        # ---- sells, all at once
        proceeds = 0.0
        fees = 0.0
        sell_notional = 0.0
        trades = 0
        for i in range(n):
            tradable = valid[fill, i] and fill_px[fill, i] > 0.0
            held = s.holdings[b, i]
            locked = s.locked[b, i] if (p.t_plus_1 and same_day) else 0.0
            sellable = max(held - locked if p.t_plus_1 else held, 0.0)
            if turbulent:
                sold = sellable if tradable else 0.0
            else:
                want = max(-orders[i], 0.0)
                sold = want if p.short_selling else min(want, sellable)
            value = (fill_px[fill, i] * (1.0 - p.slippage) if p.slippage else fill_px[fill, i]) * sold
            if p.min_cost > 0.0:
                fee = min(max(value * p.sell_cost_pct, p.min_cost), value) if sold > 0.0 else 0.0
                proceeds += value - fee
            else:
                fee = value * p.sell_cost_pct
                proceeds += value * (1.0 - p.sell_cost_pct)
            fees += fee
            sell_notional += value
            trades += sold > 0.0
            holdings[i] = held - sold
            bought[i] = 0.0
            if p.t_plus_1:
                out.locked[b, i] = locked  # shares bought earlier today (0 on a new day); today's buys are added below
        cash = cash + proceeds

        # ---- buys, in descending order of the order (ties: higher column first), cash-limited
        m = 0
        if not turbulent:
            for i in range(n):  # compact the buys, branch-free (a random sign mispredicts half the time)
                wanted[m] = orders[i]
                column[m] = i
                m += orders[i] > 0.0
        for a in range(m):  # rank by counting: branch-free, vectorisable, no sort
            ahead = 0
            for j in range(m):
                ahead += (wanted[j] > wanted[a]) | ((wanted[j] == wanted[a]) & (j > a))
            rank[ahead] = column[a]
        buy_notional = 0.0
        for k in range(m):
            i = rank[k]
            price = fill_px[fill, i] * (1.0 + p.slippage) if p.slippage else fill_px[fill, i]
            unit = price * (1.0 + p.buy_cost_pct)
            if unit <= 0.0:
                unit = 1.0
            if p.fractional:
                avail = max(cash, 0.0) / unit
            elif cash >= orders[i] * unit * (1.0 + 1e-15):
                avail = orders[i]  # the cash covers the order even after rounding: no division on the cash chain
            else:
                avail = floor_div(max(cash, 0.0), unit)
            if p.min_cost > 0.0:
                avail = min(avail, max((cash - p.min_cost) / price, 0.0))
            if p.lot_size > 1.0 or p.min_cost > 0.0:
                avail = whole_lots(p, avail, False)
            got = min(avail, orders[i])
            value = price * got
            if p.min_cost > 0.0:
                fee = max(value * p.buy_cost_pct, p.min_cost) if got > 0.0 else 0.0
                cash = cash - (value + fee)
                fees += fee
            else:
                cash = cash - value * (1.0 + p.buy_cost_pct)
            if p.fractional and got > 0.0:
                cash = 0.0 if avail < orders[i] else max(cash, 0.0)  # a cash-limited buy spends the cash exactly
            bought[i] = got
            holdings[i] += got
            buy_notional += value
        if p.min_cost <= 0.0:
            fees += buy_notional * p.buy_cost_pct

        if p.short_selling and turbulent:  # liquidation also covers short positions
            cover_total = 0.0
            cover_fees = 0.0
            for i in range(n):
                if valid[fill, i] and fill_px[fill, i] > 0.0 and holdings[i] < 0.0:
                    price = fill_px[fill, i] * (1.0 + p.slippage) if p.slippage else fill_px[fill, i]
                    value = price * -holdings[i]
                    cover_total += value + value * p.buy_cost_pct
                    cover_fees += value * p.buy_cost_pct
                    buy_notional += value
                    bought[i] += -holdings[i]
                    holdings[i] = 0.0
            cash = cash - cover_total
            fees += cover_fees
        for i in range(n):
            trades += bought[i] > 0.0
            if p.t_plus_1:
                out.locked[b, i] += bought[i]

        # ---- valuation, reward, episode flags
        held_value = 0.0
        for i in range(n):
            held_value += holdings[i] * close[t_next, i]
        value = cash + held_value
        begin = s.value[b]
        sharpe_a = s.sharpe_a[b]
        sharpe_b = s.sharpe_b[b]
        if p.reward == 0:
            reward = (value - begin) * p.reward_scaling
        elif p.reward == 1:
            reward = math.log(max(value, _TINY) / max(begin, _TINY))
        else:
            ret = value / max(begin, _TINY) - 1.0
            delta_a = ret - sharpe_a
            delta_b = ret * ret - sharpe_b
            var = sharpe_b - sharpe_a * sharpe_a
            reward = (sharpe_b * delta_a - 0.5 * sharpe_a * delta_b) / var**1.5 if var > _TINY else 0.0
            sharpe_a = sharpe_a + p.sharpe_eta * delta_a
            sharpe_b = sharpe_b + p.sharpe_eta * delta_b
        terminated = value <= p.ruin_level
        truncated = t_next >= s.end[b] and not terminated
        total_costs = s.total_costs[b] + fees

        info.portfolio_value[b] = value
        info.cash[b] = cash
        for i in range(n):  # explicit loops: numba's slice assignment costs more than the copy itself
            info.holdings[b, i] = holdings[i]
        info.costs[b] = fees
        info.total_costs[b] = total_costs
        info.turnover[b] = (sell_notional + buy_notional) / max(begin, _TINY)
        info.trades[b] = trades
        info.turbulent[b] = turbulent
        info.reward[b] = reward
        info.terminated[b] = terminated
        info.truncated[b] = truncated
        if p.final_obs or not p.autoreset:
            write_obs(p, final, b, table, t_next, cash, holdings)

        if p.autoreset and (terminated or truncated):
            start = episode_start(p, s.key[b], s.episode[b] + 1)
            out.t[b] = start
            out.end[b] = last_bar if p.episode_length < 0 else start + p.episode_length
            out.cash[b] = p.initial_amount
            for i in range(n):
                holdings[i] = 0.0
                if p.t_plus_1:
                    out.locked[b, i] = 0.0
            out.value[b] = p.initial_amount
            out.sharpe_a[b] = 0.0
            out.sharpe_b[b] = 0.0
            out.total_costs[b] = 0.0
            out.steps[b] = 0
            out.episode[b] = s.episode[b] + 1
        else:
            out.t[b] = t_next
            out.end[b] = s.end[b]
            out.cash[b] = cash
            out.value[b] = value
            out.sharpe_a[b] = sharpe_a
            out.sharpe_b[b] = sharpe_b
            out.total_costs[b] = total_costs
            out.steps[b] = s.steps[b] + 1
            out.episode[b] = s.episode[b]
        if p.autoreset and p.final_obs and not (terminated or truncated):
            for j in range(obs.shape[1]):  # the same observation: copy the row just written (in L1)
                obs[b, j] = final[b, j]
        elif p.autoreset:
            write_obs(p, obs, b, table, out.t[b], out.cash[b], holdings)


@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def step_batch(num_chunks, p, mk, s, action, packed, obs, final):  # noqa: ANN001
    """Step every environment: ``num_chunks`` contiguous chunks on ``numba.set_num_threads`` threads.

    The parallel loop runs over chunks, not environments, so the environment body stays ordinary serial
    code (numba's parfor rewriting of a body this size is where its bugs live) and the call that passes
    ~25 array structs happens once per chunk.
    """
    size = s.t.shape[0]
    for c in numba.prange(num_chunks):
        step_range(c * size // num_chunks, (c + 1) * size // num_chunks, p, mk, s, action, packed, obs, final)
