"""Simulator properties: determinism, holding-period effects, regimes, matching rules and CRN rewards."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from finrl_lite.envs.melo.calibration import DEFAULT_CALIBRATION
from finrl_lite.envs.melo.config import MeloEnvConfig, MeloSimConfig
from finrl_lite.envs.melo.env import MeloVecEnv
from finrl_lite.envs.melo.simulator import PeriodFlow, make_tables, match_period, simulate_period

GRID = [0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 10.0]


def _aggregate(
    sim: MeloSimConfig, grid: list[float], rows: int = 256, periods: int = 40, regime: int | None = None, seed: int = 0
):
    """Share-weighted fill rate and mean markout cost (1 s) per static h, on common random numbers."""
    cal = DEFAULT_CALIBRATION
    if regime is not None:
        share = [0.0, 0.0, 0.0]
        share[regime] = 1.0
        cal = dataclasses.replace(cal, regime_share=tuple(share), regime_switch_prob=0.0)
    tables = make_tables(sim, rows, calibration=cal)
    gen = torch.Generator().manual_seed(seed)
    h = torch.tensor(grid).expand(rows, len(grid)).contiguous()
    reg = torch.full((rows,), 1 if regime is None else regime)
    sub = fil = uni = cost = torch.zeros(len(grid), dtype=torch.float64)
    for p in range(periods):
        period = torch.full((rows,), (p * 780) // periods)
        flow, st = simulate_period(sim, tables, period, reg, h, gen)
        reg = flow.regime
        sub = sub + st.submitted.double().sum(0)
        fil = fil + st.filled.double().sum(0)
        uni = uni + st.uninformed_fills.double().sum(0)
        cost = cost + st.cost_1s.double().sum(0)
    return fil / sub, cost / uni


def test_deterministic_for_a_seed() -> None:
    sim = MeloSimConfig(num_envs=3, periods_per_day=10)

    def run(seed: int) -> list[torch.Tensor]:
        env = MeloVecEnv(sim, seed=seed)
        out = [env.reset()[0]]
        gen = torch.Generator().manual_seed(123)
        for _ in range(25):  # crosses a day boundary
            obs, reward, _, truncated, info = env.step(torch.randint(0, env.num_actions, (env.num_envs,), generator=gen))
            out += [obs, reward, truncated, info["h_ms"]]
        return out

    a, b, c = run(7), run(7), run(8)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=False))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=False))


def test_uninformed_only_longer_holding_only_lowers_fill_rate() -> None:
    sim = MeloSimConfig(informed_short_per_period=(0.0, 0.0, 0.0), informed_slow_per_period=0.0)
    fill, markout = _aggregate(sim, GRID)
    assert torch.all(fill[1:] < fill[:-1]), fill
    assert fill[0] > 0.2 and fill[-1] > 0.0
    # uninformed-vs-uninformed fills cancel exactly: no markout cost without informed flow
    assert torch.allclose(markout, torch.zeros_like(markout), atol=1e-12)


def test_short_horizon_informed_longer_holding_lowers_markout_cost() -> None:
    sim = MeloSimConfig(uninformed_short_share=0.0, informed_slow_per_period=0.0, informed_short_per_period=(2.0, 2.0, 2.0))
    fill, markout = _aggregate(sim, GRID)
    assert torch.all(markout[1:] < markout[:-1]), markout
    assert markout[0] > 0.0
    assert markout[-1] < 0.2 * markout[0]  # 10 ms filters nearly every short-horizon informed order


def test_best_static_holding_period_differs_between_regimes() -> None:
    sim, env = MeloSimConfig(), MeloEnvConfig()
    grid = GRID[:-1]
    best = []
    for regime in (0, 2):  # calm, volatile
        fill, markout = _aggregate(sim, grid, rows=512, regime=regime)
        objective = -env.reward_lambda * markout / env.markout_scale_bps + (1 - env.reward_lambda) * fill / env.fill_rate_scale
        best.append(grid[int(objective.argmax())])
    calm_best, volatile_best = best
    assert calm_best < volatile_best, best


@pytest.mark.parametrize("mode", ["published", "share_weighted", "pooled"])
@pytest.mark.parametrize("noise", [False, True])
def test_reward_is_exactly_zero_when_h_equals_h0(mode: str, noise: bool) -> None:
    env_cfg = MeloEnvConfig(
        h_init_ms=1.5, baseline_h_ms=1.5, reward_mode=mode, reward_background_noise=noise, instability_threshold=None
    )
    env = MeloVecEnv(MeloSimConfig(num_envs=16), env_cfg, seed=3)
    env.reset()
    hold = env_cfg.action_deltas_ms.index(0.0)
    for _ in range(30):
        _, reward, _, _, info = env.step(torch.full((env.num_envs,), hold))
        assert torch.equal(reward, torch.zeros_like(reward))
        assert torch.equal(info["stats"].fill_rate[:, 0], info["stats"].fill_rate[:, 1])
    # and not zero once h moves away from h0
    _, reward, _, _, _ = env.step(torch.zeros(env.num_envs, dtype=torch.int64))
    assert bool((reward != 0).any())


def _flow(orders: list[tuple[float, float, float, int]], moves: list[tuple[float, float]]) -> PeriodFlow:
    """One row: orders (arrival s, end s, side, kind) sorted by arrival, explicit moves (time s, direction)."""
    t = lambda xs: torch.tensor([xs], dtype=torch.float32)  # noqa: E731
    return PeriodFlow(
        arrival=t([o[0] for o in orders]),
        end=t([o[1] for o in orders]),
        side=t([o[2] for o in orders]),
        kind=torch.tensor([[o[3] for o in orders]]),
        valid=torch.ones(1, len(orders), dtype=torch.bool),
        move_time=t([m[0] for m in moves]),
        move_dir=t([m[1] for m in moves]),
        informed_slot=torch.tensor([[k for k, o in enumerate(orders) if o[3] > 0]]),
        noise=torch.zeros(1, 4, 2),
        moves=torch.tensor([float(len(moves))]),
        spread_bps=torch.tensor([2.0]),
        regime=torch.tensor([1]),
        move_bps=torch.tensor([0.5]),
    )


def test_matching_rules_time_priority_eligibility_and_markout_sign() -> None:
    # two resting uninformed buys (the first leaves at 12 s), an informed sell 2 ms ahead of a down move
    # at t = 10.003 s, then an uninformed sell at 13 s that only the second buy can still meet
    flow = _flow(
        [(1.0, 12.0, 1.0, 0), (2.0, 20.0, 1.0, 0), (10.001, 10.003, -1.0, 1), (13.0, 20.0, -1.0, 0)],
        [(10.003, -1.0)],
    )
    st = match_period(flow, torch.tensor([[0.5, 1.5, 3.0]]))
    # h = 0.5 and 1.5 ms: the informed sell is eligible before its move and fills the *first* buy (time
    # priority), leaving the second buy for the last sell; with h = 3 ms it is cancelled unfilled first
    assert st.filled[0].tolist() == [4.0, 4.0, 2.0]
    assert st.uninformed_fills[0].tolist() == [3.0, 3.0, 2.0]
    # the price fell right after the first buyer filled: a cost of one move (0.5 bps), over 3 uninformed fills
    assert torch.allclose(st.markout_1s[0], torch.tensor([0.5 / 3, 0.5 / 3, 0.0]))
    assert torch.allclose(st.markout_5s[0], torch.tensor([0.5 / 3, 0.5 / 3, 0.0]))
    assert torch.allclose(st.fill_rate[0], torch.tensor([1.0, 1.0, 0.5]))
    # an order that has left before it becomes eligible never trades
    flow = _flow([(1.0, 1.0005, 1.0, 0), (1.0001, 20.0, -1.0, 0)], [])
    st = match_period(flow, torch.tensor([[0.25, 1.0]]))
    assert st.filled[0].tolist() == [2.0, 0.0]
    assert st.markout_1s[0].tolist() == [0.0, 0.0]  # uninformed vs uninformed cancels exactly


def test_actions_are_clipped_and_instability_jumps_to_h_max() -> None:
    env = MeloVecEnv(
        MeloSimConfig(num_envs=2, periods_per_day=50), MeloEnvConfig(h_init_ms=1.0, instability_threshold=None), seed=0
    )
    obs, _ = env.reset()
    assert obs.shape == (env.num_envs, env.observation_size)
    for _ in range(5):  # -0.5 ms each step, clipped at 0.25 ms
        obs, _, _, _, info = env.step(torch.zeros(env.num_envs, dtype=torch.int64))
    assert torch.allclose(info["h_ms"], torch.full((env.num_envs,), 0.25))
    for _ in range(6):  # +0.5 ms each step, clipped at 2.5 ms
        obs, _, _, _, info = env.step(torch.full((env.num_envs,), 4))
    assert torch.allclose(info["h_ms"], torch.full((env.num_envs,), 2.5))
    assert torch.allclose(obs[:, 0], torch.ones(env.num_envs))  # h scaled to [0, 1]

    jumpy = MeloVecEnv(MeloSimConfig(num_envs=2), MeloEnvConfig(h_init_ms=0.5, instability_threshold=1e-3), seed=0)
    jumpy.reset()
    hold = jumpy.cfg.action_deltas_ms.index(0.0)
    jumpy.step(torch.full((jumpy.num_envs,), hold))
    assert torch.allclose(jumpy.state.h_ms, torch.full((jumpy.num_envs,), 2.5))


def _reference_fills(flow: PeriodFlow, row: int, h_ms: float) -> list[int]:
    """Plain-Python event loop of the matching rules: the partner slot of every order (-1: unfilled)."""
    arrival, end, side, valid = (x[row].tolist() for x in (flow.arrival, flow.end, flow.side, flow.valid))
    partner = [-1] * len(arrival)
    resting: list[int] = []
    for i in range(len(arrival)):
        if not valid[i]:
            continue
        e = arrival[i] + h_ms / 1000.0
        resting = [j for j in resting if end[j] > e]  # orders that left are gone
        if end[i] <= e:
            continue  # left before becoming eligible
        contra = next((j for j in resting if side[j] != side[i]), None)  # time priority
        if contra is None:
            resting.append(i)
        else:
            resting.remove(contra)
            partner[i], partner[contra] = contra, i
    return partner


def test_batched_matching_equals_a_plain_python_event_loop() -> None:
    sim = MeloSimConfig(informed_short_per_period=(2.0, 3.0, 5.0))
    rows = 200
    tables = make_tables(sim, rows)
    gen = torch.Generator().manual_seed(5)
    grid = [0.25, 1.0, 2.5, 10.0]
    flow, stats = simulate_period(
        sim, tables, torch.full((rows,), 10), torch.full((rows,), 2), torch.tensor(grid).expand(rows, 4).contiguous(), gen
    )
    for k, h in enumerate(grid):
        want = [sum(p >= 0 for p in _reference_fills(flow, r, h)) for r in range(rows)]
        assert stats.filled[:, k].tolist() == [float(w) for w in want]
