"""Speed of the batched M-ELO simulator, like for like against a plain-Python matcher.

One symbol-period = one 30-second period of one symbol. Two figures:

* **matching, both sides the same work**: the same pre-drawn order flows are matched under the same holding
  periods (the agent's h and the baseline h0, as one environment step does; ``--columns 10``: the ten holding
  periods of full-information training) by ``match_period`` (batched torch) and by a plain-Python event loop
  over the orders (the way a per-order simulator is usually written). Neither side draws the flow inside the
  timing. The script checks that both give the same fills.
* **whole environment step** (ours only, no peer figure): drawing the period's flow, matching, observation and
  reward, what ``MeloVecEnv.step`` does per row.

    python benchmarks/bench_melo.py [--rows 256 1024 4096] [--steps 20] [--columns 2] [--threads 1] [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import torch

from finrl_lite.envs.melo.config import MeloSimConfig
from finrl_lite.envs.melo.env import MeloVecEnv
from finrl_lite.envs.melo.simulator import PeriodFlow, draw_regime, make_tables, match_period, sample_period

GRID_MS = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5]


def python_match(flow: PeriodFlow, row: int, h_ms: float) -> int:
    """Plain-Python matching of one row (same rules as ``match_period``); returns the number of filled orders."""
    arrival, end, side, valid = (x[row].tolist() for x in (flow.arrival, flow.end, flow.side, flow.valid))
    resting: list[int] = []
    filled = 0
    for i in range(len(arrival)):
        if not valid[i]:
            continue
        e = arrival[i] + h_ms / 1000.0
        resting = [j for j in resting if end[j] > e]
        if end[i] <= e:
            continue
        contra = next((j for j in resting if side[j] != side[i]), None)
        if contra is None:
            resting.append(i)
        else:
            resting.remove(contra)
            filled += 2
    return filled


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def draw_flows(rows: int, steps: int, device: str) -> list[PeriodFlow]:
    """``steps`` periods of ``rows`` rows (cycling the calibrated symbols), drawn before any timing."""
    sim = MeloSimConfig(num_envs=max(1, rows // 3), num_symbols=3)
    B = sim.num_envs * sim.num_symbols
    tables = make_tables(sim, B, device)
    gen = torch.Generator(device=device).manual_seed(0)
    regime = draw_regime(tables, (B,), gen)
    flows = []
    for p in range(steps):
        flow = sample_period(sim, tables, torch.full((B,), (37 * p) % 780, device=device), regime, gen)
        regime = flow.regime
        flows.append(flow)
    return flows


def bench_torch_matching(flows: list[PeriodFlow], hs: list[float]) -> float:
    """Symbol-periods matched per second by ``match_period`` under every h of ``hs``."""
    B = flows[0].arrival.shape[0]
    h = torch.tensor(hs, dtype=flows[0].arrival.dtype, device=flows[0].arrival.device).expand(B, len(hs)).contiguous()
    match_period(flows[0], h)  # warm-up
    _sync(h.device)
    t0 = time.perf_counter()
    for flow in flows:
        match_period(flow, h)
    _sync(h.device)
    return B * len(flows) / (time.perf_counter() - t0)


def bench_python_matching(flows: list[PeriodFlow], hs: list[float], max_rows: int) -> tuple[float, bool]:
    """Symbol-periods matched per second by the plain-Python loop (same flows and h), and whether fills agree."""
    cpu = [PeriodFlow(*(x.cpu() for x in f)) for f in flows]
    n = 0
    t0 = time.perf_counter()
    for flow in cpu:
        rows = min(flow.arrival.shape[0], max_rows - n)
        for r in range(rows):
            for h in hs:
                python_match(flow, r, h)
        n += rows
        if n >= max_rows:
            break
    rate = n / (time.perf_counter() - t0)
    # the check in float64 on both sides (the same IEEE operations): in float32 an order that leaves within a
    # rounding step of becoming eligible can go either way
    flow = PeriodFlow(*(x.double() if x.is_floating_point() else x for x in cpu[0]))
    rows = min(flow.arrival.shape[0], 500)
    h = torch.tensor(hs, dtype=torch.float64).expand(flow.arrival.shape[0], len(hs)).contiguous()
    ours = match_period(flow, h).filled
    agree = all(python_match(flow, r, h) == int(ours[r, k]) for r in range(rows) for k, h in enumerate(hs))
    return rate, agree


def bench_env_step(rows: int, steps: int, device: str) -> float:
    """Symbol-periods per second of ``MeloVecEnv.step`` (draw, match agent h and h0, observe, reward)."""
    env = MeloVecEnv(MeloSimConfig(num_envs=max(1, rows // 3), num_symbols=3), seed=0, device=device)
    env.reset()
    action = torch.full((env.num_envs,), 2, device=env.device)
    for _ in range(3):
        env.step(action)
    _sync(env.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(action)
    _sync(env.device)
    return env.num_envs * steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--columns", type=int, choices=[2, 10], default=2, help="2: agent h and h0; 10: the full-information grid"
    )
    parser.add_argument("--peer-rows", type=int, default=2000, help="symbol-periods the plain-Python peer matches")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hs = [1.5, 1.0] if args.columns == 2 else GRID_MS  # an env step matches the agent's h and h0 = 1 ms
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), {len(hs)} holding periods")
    best = 0.0
    flows: list[PeriodFlow] = []
    for rows in args.rows:
        flows = draw_flows(rows, args.steps, args.device)
        rate = bench_torch_matching(flows, hs)
        step = bench_env_step(rows, args.steps, args.device) if args.columns == 2 else float("nan")
        best = max(best, rate)
        print(f"  {flows[0].arrival.shape[0]:6d} rows: matching {rate:12,.0f} symbol-periods/s;  whole env step {step:12,.0f}")
    py_rate, agree = bench_python_matching(flows, hs, args.peer_rows)
    print(
        f"  plain-Python matching (peer), same flows and holding periods: {py_rate:12,.0f} symbol-periods/s; fills agree: {agree}"
    )
    print(f"matching, like for like: batched torch / plain Python = {best / py_rate:,.1f}x ({best:,.0f} vs {py_rate:,.0f})")


if __name__ == "__main__":
    main()
