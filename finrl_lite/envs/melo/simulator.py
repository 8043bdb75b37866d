"""Batched torch simulator of Nasdaq M-ELO midpoint matching, one 30-second period at a time.

Every tensor has a leading batch dimension ``B`` = (environment x symbol) rows. A period is simulated in
two pure steps, so that the same order flow can be matched under several holding periods (common random
numbers: the agent's h, the baseline h0, a static grid, the legacy 10 ms):

1. :func:`sample_period` draws the period's exogenous randomness: the regime switch, the midpoint moves,
   and the M-ELO orders (:class:`PeriodFlow`). It does not depend on the holding period.
2. :func:`match_period` matches that flow under holding periods ``h [B, H]`` and returns
   :class:`PeriodStats` of shape ``[B, H]``.

Model (times in seconds from the period start, ``T`` = 30 s):

* **Midpoint**: moves of plus or minus one tick (``move_bps``, calibrated) as a Poisson process with
  intensity ``moves_per_period * regime_rate[regime] * u(time of day) / T``. The moves that informed
  orders trade ahead of are explicit (time, direction); the remaining background moves are symmetric,
  and for markouts only their net count over a window matters: for a fill at ``t`` the background part of
  ``mid(t + 1 s) - mid(t)`` and of ``mid(t + 5 s) - mid(t + 1 s)`` are Skellam draws (difference of two
  Poisson counts), exact in law for each fill; overlapping windows of different fills are drawn
  independently (an approximation). Draws are made for ``noise_events`` fill events per period and row
  (the n-th fill uses draw n; fills beyond the last draw reuse it); both counterparties share it.
* **Uninformed orders**: Poisson arrivals, uniform in the period, random side; a share are short-lived
  (exponential lifetime of ``short_life_ms``) and leave if not filled, the rest live ``long_life_s`` on
  average. All orders leave at the period end (no carry-over).
* **Short-horizon informed orders**: each is tied to an explicit move: it arrives an exponential lead
  time ``L`` (mean ``informed_lead_ms``, per regime) before the move, on the side that profits, and is
  cancelled when the move prints. It can only trade if ``L > h``.
* **Slow informed orders**: the same with a lead of seconds (``slow_lead_s``): no holding period in the
  range filters them out.
* **Matching**: an order becomes eligible ``h`` after its arrival; at that moment it trades with the
  earliest eligible, still-live order of the other side (time priority) at the midpoint, else it rests
  (eligible) until it leaves. All orders have the same size (one unit), so the share-weighted fill rate
  is ``filled orders / submitted orders``.
* **Markouts** (bps, from the uninformed orders' point of view): for an uninformed fill on side ``s``
  (+1 buy, -1 sell), ``cost = -s * (mid(t + tau) - mid(t))``. **A cost is positive when the price moves
  against the uninformed order** (a buyer sees the midpoint fall). The period markout is the mean cost
  over the uninformed fills (0 when there are none); uninformed-vs-uninformed fills cancel exactly, so
  the cost measures what informed orders take from uninformed ones.

Padded capacities (``*_slots``) cap the Poisson counts; with the defaults the cap binds in 0.4 % of
periods for uninformed orders, 0.2 % for short-horizon informed and 1.8 % for slow informed orders (day
and regime averages). No ``.item()``, no Python branch on tensor values: the whole step can stay on a GPU.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from finrl_lite.envs.melo.calibration import DEFAULT_CALIBRATION, PERIOD_SECONDS, MeloCalibration
from finrl_lite.envs.melo.config import MeloSimConfig

__all__ = [
    "MARKOUT_HORIZONS_S",
    "PeriodFlow",
    "PeriodStats",
    "SimTables",
    "make_tables",
    "match_period",
    "sample_period",
    "simulate_period",
]

MARKOUT_HORIZONS_S = (1.0, 5.0)
_FAR = 1.0e6  # seconds: "never" for padded slots


class SimTables(NamedTuple):
    """Per-row constants and regime tables (tensors on the simulation device).

    Attributes:
        moves_per_period: ``[B]`` calibrated mean midpoint moves per period of the row's symbol.
        move_bps: ``[B]`` one midpoint move, in bps.
        spread_bps: ``[B]`` median quoted spread, in bps.
        regime_rate: ``[3]`` move-rate multiplier per regime.
        regime_cum_share: ``[3]`` cumulative stationary regime law.
        regime_spread: ``[3]`` spread multiplier per regime.
        informed_short: ``[3]`` short-horizon informed orders per period, per regime.
        informed_lead_s: ``[3]`` mean lead time (seconds), per regime.
        u_shape: ``[2]`` U-shape coefficients ``(c0, c1)``.
        switch_prob: ``[]`` regime redraw probability per period.
        symbol: ``[B]`` index of the row's symbol in the calibration.
    """

    moves_per_period: Tensor
    move_bps: Tensor
    spread_bps: Tensor
    regime_rate: Tensor
    regime_cum_share: Tensor
    regime_spread: Tensor
    informed_short: Tensor
    informed_lead_s: Tensor
    u_shape: Tensor
    switch_prob: Tensor
    symbol: Tensor


class PeriodFlow(NamedTuple):
    """The exogenous randomness of one period (independent of the holding period).

    Orders are sorted by arrival; padded slots have ``valid`` False, arrival far in the future and end far
    in the past. Shapes: ``B`` rows, ``K`` order slots, ``M`` explicit (informed) moves.

    Attributes:
        arrival: ``[B, K]`` arrival time (s).
        end: ``[B, K]`` time the order leaves if unfilled (s).
        side: ``[B, K]`` +1 buy, -1 sell, 0 padding.
        kind: ``[B, K]`` 0 uninformed, 1 short-horizon informed, 2 slow informed, -1 padding.
        valid: ``[B, K]`` the slot holds an order.
        move_time: ``[B, M]`` times of the explicit moves, sorted (s; far future for padding).
        move_dir: ``[B, M]`` their directions +1 / -1 (0 for padding).
        informed_slot: ``[B, M]`` position (in the sorted order slots) of each informed order.
        noise: ``[B, F, 2]`` background net moves over (t, t+1 s] and (t+1 s, t+5 s] for the f-th fill event.
        moves: ``[B]`` all midpoint moves in the period.
        spread_bps: ``[B]`` quoted spread of the period.
        regime: ``[B]`` regime in force (0 calm, 1 normal, 2 volatile).
        move_bps: ``[B]`` one move in bps.
    """

    arrival: Tensor
    end: Tensor
    side: Tensor
    kind: Tensor
    valid: Tensor
    move_time: Tensor
    move_dir: Tensor
    informed_slot: Tensor
    noise: Tensor
    moves: Tensor
    spread_bps: Tensor
    regime: Tensor
    move_bps: Tensor


class PeriodStats(NamedTuple):
    """Per-period statistics, ``[B, H]`` (one column per holding period) unless noted.

    Attributes:
        submitted: Orders submitted (all kinds).
        filled: Orders filled (all kinds).
        fill_rate: ``filled / submitted`` (0 when nothing was submitted).
        uninformed_fills: Uninformed orders filled.
        cost_1s: Sum over uninformed fills of the 1 s markout cost (bps).
        cost_5s: Same at 5 s.
        markout_1s: Mean 1 s markout cost of the uninformed fills (bps; positive = adverse).
        markout_5s: Same at 5 s.
        cancels: Orders that left unfilled.
        signal_1s: ``markout_1s`` without the background midpoint moves (only the moves informed orders
            traded ahead of). The background is independent of the holding period and has mean zero, so
            this has the same expectation across holding periods with much less noise (a control variate).
        signal_5s: Same at 5 s.
    """

    submitted: Tensor
    filled: Tensor
    fill_rate: Tensor
    uninformed_fills: Tensor
    cost_1s: Tensor
    cost_5s: Tensor
    markout_1s: Tensor
    markout_5s: Tensor
    cancels: Tensor
    signal_1s: Tensor
    signal_5s: Tensor


def make_tables(
    sim: MeloSimConfig, num_rows: int, device: torch.device | str = "cpu", calibration: MeloCalibration = DEFAULT_CALIBRATION
) -> SimTables:
    """Build the per-row constant tables; row ``r`` simulates symbol ``r % num_symbols`` (cycling the calibration)."""
    dtype = torch.float32 if sim.dtype == "float32" else torch.float64
    syms = calibration.symbols
    index_of_row = [(r % sim.num_symbols) % len(syms) for r in range(num_rows)]
    sym_of_row = [syms[i] for i in index_of_row]

    def t(values: object) -> Tensor:
        return torch.as_tensor(values, dtype=dtype, device=device)

    share = torch.tensor(calibration.regime_share, dtype=torch.float64)
    cum = (share / share.sum()).cumsum(0)
    return SimTables(
        moves_per_period=t([s.moves_per_period for s in sym_of_row]),
        move_bps=t([s.move_bps for s in sym_of_row]),
        spread_bps=t([s.spread_bps for s in sym_of_row]),
        regime_rate=t(calibration.regime_rate),
        regime_cum_share=cum.to(dtype=dtype, device=device),
        regime_spread=t(calibration.regime_spread),
        informed_short=t(sim.informed_short_per_period),
        informed_lead_s=t([x / 1000.0 for x in sim.informed_lead_ms]),
        u_shape=t(calibration.u_shape),
        switch_prob=t(calibration.regime_switch_prob),
        symbol=torch.tensor(index_of_row, dtype=torch.int64, device=device),
    )


def u_shape(tables: SimTables, period: Tensor, periods_per_day: int) -> Tensor:
    """Intraday intensity multiplier ``c0 + c1 (2x - 1)^2`` at the middle of each period ``[B]``."""
    x = (period.to(tables.u_shape.dtype) + 0.5) / periods_per_day
    return tables.u_shape[0] + tables.u_shape[1] * (2.0 * x - 1.0) ** 2


def draw_regime(tables: SimTables, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """Regimes drawn from the stationary law."""
    u = torch.rand(shape, generator=generator, device=tables.u_shape.device, dtype=tables.u_shape.dtype)
    return torch.searchsorted(tables.regime_cum_share, u.unsqueeze(-1)).squeeze(-1).clamp_(max=2)


def _capped_poisson(rate: Tensor, cap: int, generator: torch.Generator) -> Tensor:
    return torch.poisson(rate, generator=generator).clamp_(max=float(cap))


def sample_period(
    sim: MeloSimConfig, tables: SimTables, period: Tensor, regime: Tensor, generator: torch.Generator
) -> PeriodFlow:
    """Draw one period's midpoint moves and M-ELO orders for every row.

    Args:
        sim: Order-flow assumptions and capacities.
        tables: Per-row constants from :func:`make_tables`.
        period: ``[B]`` period of the day (0-based).
        regime: ``[B]`` regime of the previous period; it is redrawn with the calibrated probability.
        generator: The source of randomness (on the tables' device).

    Returns:
        The period's :class:`PeriodFlow`.
    """
    T = PERIOD_SECONDS
    dev, dt = tables.u_shape.device, tables.u_shape.dtype
    B = period.shape[0]
    Ku, Ks, Kl = sim.uninformed_slots, sim.informed_slots, sim.slow_slots

    def rand(*shape: int) -> Tensor:
        return torch.rand(shape, generator=generator, device=dev, dtype=dt)

    switch = rand(B) < tables.switch_prob
    regime = torch.where(switch, draw_regime(tables, (B,), generator), regime)
    u = u_shape(tables, period, sim.periods_per_day)

    # --- counts
    n_u = _capped_poisson(sim.uninformed_per_period * u, Ku, generator)
    n_s = _capped_poisson(tables.informed_short[regime] * u, Ks, generator)
    n_l = _capped_poisson(sim.informed_slow_per_period * u, Kl, generator)
    total_rate = tables.moves_per_period * tables.regime_rate[regime] * u
    bg_rate = (total_rate - n_s - n_l).clamp(min=0.0)  # expected background moves in the period
    n_bg = torch.poisson(bg_rate, generator=generator)

    # --- uninformed orders
    slot_u = torch.arange(Ku, device=dev, dtype=dt)
    valid_u = slot_u < n_u.unsqueeze(1)
    arr_u = rand(B, Ku) * T
    side_u = torch.where(rand(B, Ku) < 0.5, 1.0, -1.0).to(dt)
    short = rand(B, Ku) < sim.uninformed_short_share
    mean_life = torch.where(short, sim.short_life_ms / 1000.0, sim.long_life_s).to(dt)
    life = -torch.log1p(-rand(B, Ku)) * mean_life
    end_u = torch.minimum(arr_u + life, torch.full_like(arr_u, T))

    # --- informed orders, each tied to an explicit move
    slot_s = torch.arange(Ks, device=dev, dtype=dt)
    slot_l = torch.arange(Kl, device=dev, dtype=dt)
    valid_m = torch.cat([slot_s < n_s.unsqueeze(1), slot_l < n_l.unsqueeze(1)], dim=1)  # [B, M]
    M = Ks + Kl
    move_time = rand(B, M) * T
    move_dir = torch.where(rand(B, M) < 0.5, 1.0, -1.0).to(dt)
    mean_lead = torch.cat(
        [tables.informed_lead_s[regime].unsqueeze(1).expand(B, Ks), torch.full((B, Kl), sim.slow_lead_s, device=dev, dtype=dt)],
        dim=1,
    )
    lead = -torch.log1p(-rand(B, M)) * mean_lead
    arr_i = (move_time - lead).clamp(min=0.0)
    kind_i = torch.cat([torch.ones(Ks, device=dev), torch.full((Kl,), 2.0, device=dev)]).to(torch.int64).expand(B, M)

    # --- all orders, sorted by arrival (padding last)
    valid = torch.cat([valid_u, valid_m], dim=1)
    arrival = torch.where(valid, torch.cat([arr_u, arr_i], dim=1), _FAR)
    end = torch.where(valid, torch.cat([end_u, move_time], dim=1), -_FAR)
    side = torch.where(valid, torch.cat([side_u, move_dir], dim=1), 0.0)
    kind = torch.where(valid, torch.cat([torch.zeros(B, Ku, dtype=torch.int64, device=dev), kind_i], dim=1), -1)
    arrival, order = torch.sort(arrival, dim=1, stable=True)
    end, side, kind, valid = (x.gather(1, order) for x in (end, side, kind, valid))
    position = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1], device=dev).expand_as(order))
    informed_slot = position[:, Ku:]  # sorted position of each informed order

    move_time, morder = torch.sort(torch.where(valid_m, move_time, _FAR), dim=1)
    move_dir = torch.where(valid_m, move_dir, 0.0).gather(1, morder)

    # --- background midpoint noise of the markout windows of the period's fill events (Skellam)
    per_second = (bg_rate / T).view(B, 1, 1)
    h1, h5 = MARKOUT_HORIZONS_S
    widths = torch.full((4,), h1 / 2, device=dev, dtype=dt)  # up / down halves; filled, not copied from the host
    widths[2:] = (h5 - h1) / 2
    counts = torch.poisson((per_second * widths).expand(B, sim.noise_events, 4).contiguous(), generator=generator)
    noise = counts[..., 0::2] - counts[..., 1::2]

    spread = (
        tables.spread_bps
        * tables.regime_spread[regime]
        * torch.exp(sim.spread_noise * torch.randn(B, generator=generator, device=dev, dtype=dt))
    )
    return PeriodFlow(
        arrival=arrival,
        end=end,
        side=side,
        kind=kind,
        valid=valid,
        move_time=move_time,
        move_dir=move_dir,
        informed_slot=informed_slot,
        noise=noise,
        moves=n_bg + n_s + n_l,
        spread_bps=spread,
        regime=regime,
        move_bps=tables.move_bps,
    )


def _expand(x: Tensor, H: int) -> Tensor:
    """``[B, ...]`` -> ``[B * H, ...]`` (row-major: the H copies of a row are adjacent)."""
    return x.unsqueeze(1).expand(x.shape[0], H, *x.shape[1:]).reshape(x.shape[0] * H, *x.shape[1:])


def match_period(flow: PeriodFlow, h_ms: Tensor) -> PeriodStats:
    """Match one period's M-ELO orders under holding periods ``h_ms`` and measure fills and markouts.

    Args:
        flow: The period's order flow (:func:`sample_period`).
        h_ms: ``[B, H]`` holding periods in milliseconds (column 0 is usually the agent's h).

    Returns:
        :class:`PeriodStats` with ``[B, H]`` tensors. Identical columns of ``h_ms`` give bit-identical
        statistics (every sum is a sum of integers; the only division is the final mean).
    """
    B, H = h_ms.shape
    K = flow.arrival.shape[1]
    dt, dev = flow.arrival.dtype, flow.arrival.device
    # Slot-major layout [K, B, H]: each scan step touches contiguous rows of the earlier slots only;
    # the flow is shared by the H columns through broadcasting (never copied H times).
    arr_k = flow.arrival.T.unsqueeze(-1)  # [K, B, 1]
    end_k = flow.end.T.unsqueeze(-1).contiguous()
    buy_k = (flow.side > 0).T.unsqueeze(-1).contiguous()
    elig = arr_k + h_ms.to(dt).unsqueeze(0) / 1000.0  # [K, B, H]
    live = flow.valid.T.unsqueeze(-1) & (end_k > elig)  # still there when it becomes eligible

    resting = torch.zeros(K, B, H, dtype=torch.bool, device=dev)
    matched_with = torch.full((K, B, H), -1, dtype=torch.int64, device=dev)  # set on the later order of a pair
    priority = torch.arange(K, 0, -1, dtype=torch.int16, device=dev).view(K, 1, 1)  # earlier slot = higher
    # can_meet[j, i]: order j is on the other side of order i and still there when i becomes eligible
    can_meet = (buy_k.unsqueeze(1) ^ buy_k.unsqueeze(0)) & (end_k.unsqueeze(1) > elig.unsqueeze(0))  # [K, K, B, H]
    resting[0] = live[0]
    for i in range(1, K):
        cand = resting[:i] & can_meet[:i, i]
        best = (cand * priority[:i]).amax(0)  # earliest eligible, still-live contra order (time priority)
        m = (best > 0) & live[i]
        j = (K - best.to(torch.int64)).clamp_(max=K - 1).unsqueeze(0)
        resting.scatter_(0, j, resting.gather(0, j) & ~m.unsqueeze(0))
        resting[i] = live[i] & ~m
        matched_with[i] = torch.where(m, j[0], -1)
    # the earlier order of each pair learns its partner in one scatter (row K collects the non-matches)
    later = torch.arange(K, device=dev).view(K, 1, 1).expand(K, B, H)
    earlier = torch.full((K + 1, B, H), -1, dtype=torch.int64, device=dev)
    earlier.scatter_(0, torch.where(matched_with >= 0, matched_with, K), later)
    partner = torch.where(matched_with >= 0, matched_with, earlier[:K])

    filled = partner >= 0  # [K, B, H]
    slot = torch.arange(K, device=dev).view(K, 1, 1)
    trigger = torch.maximum(partner, slot)  # the later-eligible order of a pair sets the fill time
    uninf = filled & (flow.kind.T.unsqueeze(-1) == 0)
    # Markouts. Both sides of an uninformed-vs-uninformed fill see the same midpoint path with opposite
    # signs, so their costs cancel exactly: the uninformed cost is carried by the fills of informed orders
    # with an uninformed counterparty, cost = +side_informed * (mid(t + tau) - mid(t)) in moves.
    pos = flow.informed_slot.T.unsqueeze(-1).expand(-1, B, H)  # [M, B, H]
    p_partner = partner.gather(0, pos)
    against_uninformed = (p_partner >= 0) & (flow.kind.T.unsqueeze(-1).expand(K, B, H).gather(0, p_partner.clamp(min=0)) == 0)
    p_trigger = trigger.gather(0, pos)
    t_fill = elig.gather(0, p_trigger)  # [M, B, H]
    # fill events numbered in time order (the trigger slot of each pair) pick the background draws
    F = flow.noise.shape[1]
    is_trigger = filled & (partner < slot)
    event = (is_trigger.cumsum(0) - 1).clamp_(0, F - 1).gather(0, p_trigger)
    noise_f = flow.noise.permute(1, 0, 2)  # [F, B, 2]
    n1 = noise_f[..., 0:1].expand(F, B, H).gather(0, event)
    n15 = noise_f[..., 1:2].expand(F, B, H).gather(0, event)
    # Explicit (informed) moves: net direction in (t, t + tau] from the cumulative sum of sorted moves.
    Mi = pos.shape[0]
    cum = torch.cat([torch.zeros(B, 1, dtype=dt, device=dev), flow.move_dir.cumsum(1)], dim=1)  # [B, M + 1]
    q = t_fill.permute(1, 0, 2).reshape(B, Mi * H).contiguous()
    c0 = cum.gather(1, torch.searchsorted(flow.move_time, q, right=True))
    c1 = cum.gather(1, torch.searchsorted(flow.move_time, q + MARKOUT_HORIZONS_S[0], right=True))
    c5 = cum.gather(1, torch.searchsorted(flow.move_time, q + MARKOUT_HORIZONS_S[1], right=True))
    sig1 = (c1 - c0).view(B, Mi, H).permute(1, 0, 2)
    sig5 = (c5 - c0).view(B, Mi, H).permute(1, 0, 2)
    signed = flow.side.T.unsqueeze(-1).expand(K, B, H).gather(0, pos) * against_uninformed
    # Integer sums first (exact), then scale by the move size.
    informed1 = (signed * sig1).sum(0)  # explicit moves only (no background)
    informed5 = (signed * sig5).sum(0)
    ticks1 = informed1 + (signed * n1).sum(0)
    ticks5 = informed5 + (signed * (n1 + n15)).sum(0)
    n_uninf = uninf.sum(0).to(dt)
    submitted = flow.valid.sum(1, keepdim=True).to(dt).expand(B, H)
    n_filled = filled.sum(0).to(dt)
    mv = flow.move_bps.unsqueeze(1)
    cost1, cost5 = ticks1 * mv, ticks5 * mv
    denom = n_uninf.clamp(min=1.0)
    return PeriodStats(
        submitted=submitted,
        filled=n_filled,
        fill_rate=n_filled / submitted.clamp(min=1.0),
        uninformed_fills=n_uninf,
        cost_1s=cost1,
        cost_5s=cost5,
        markout_1s=cost1 / denom,
        markout_5s=cost5 / denom,
        cancels=submitted - n_filled,
        signal_1s=informed1 * mv / denom,
        signal_5s=informed5 * mv / denom,
    )


def simulate_period(
    sim: MeloSimConfig, tables: SimTables, period: Tensor, regime: Tensor, h_ms: Tensor, generator: torch.Generator
) -> tuple[PeriodFlow, PeriodStats]:
    """:func:`sample_period` then :func:`match_period` (convenience)."""
    flow = sample_period(sim, tables, period, regime, generator)
    return flow, match_period(flow, h_ms)


def realised_vol_bps(flow: PeriodFlow) -> Tensor:
    """Realised volatility of the period's midpoint path in bps: ``sqrt(moves) * move_bps`` (exact for +-1-tick moves)."""
    return torch.sqrt(flow.moves) * flow.move_bps


def expected_moves(sim: MeloSimConfig, tables: SimTables, period: Tensor) -> Tensor:
    """Expected midpoint moves of a period in the normal regime (used by the instability jump)."""
    return tables.moves_per_period * tables.regime_rate[1] * u_shape(tables, period, sim.periods_per_day)
