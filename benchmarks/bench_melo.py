"""Speed of the batched M-ELO simulator: symbol-periods simulated per second (target: >= 1e5 on CPU).

One symbol-period = one 30-second period of one symbol, sampled and matched under the agent's holding
period and the baseline h0 (what one environment step does for one row). The peer is a plain-Python
event loop over the same orders (the way a per-order simulator is usually written), measured in the
same run on the same flows; the script prints the ratio and checks both agree.

    python benchmarks/bench_melo.py [--rows 256 1024 4096] [--steps 20] [--threads 1] [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import torch

from finrl_lite.envs.melo.config import MeloSimConfig
from finrl_lite.envs.melo.env import MeloVecEnv
from finrl_lite.envs.melo.simulator import PeriodFlow


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


def bench_torch(rows: int, steps: int, device: str) -> tuple[float, MeloVecEnv, PeriodFlow]:
    sim = MeloSimConfig(num_envs=max(1, rows // 3), num_symbols=3)
    env = MeloVecEnv(sim, seed=0, device=device)
    env.reset()
    action = torch.full((env.num_envs,), 2, device=env.device)
    for _ in range(3):
        env.step(action)
    if env.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        info = env.step(action)[4]
    if env.device.type == "cuda":
        torch.cuda.synchronize()
    return env.num_envs * steps / (time.perf_counter() - t0), env, info["flow"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    best = 0.0
    env = last_flow = None
    for rows in args.rows:
        rate, env, last_flow = bench_torch(rows, args.steps, args.device)
        best = max(best, rate)
        print(f"  batched torch: {env.num_envs:6d} rows  {rate:12,.0f} symbol-periods/s")
    assert env is not None and last_flow is not None
    # the peer: plain Python over the same flows (agent h and baseline h0 per row, like one env step)
    flow = PeriodFlow(*(x.cpu() if isinstance(x, torch.Tensor) else x for x in last_flow))
    n = min(2000, flow.arrival.shape[0])
    h = float(env.cfg.h_init_ms)
    t0 = time.perf_counter()
    py_filled = [python_match(flow, r, h) for r in range(n)]
    for r in range(n):
        python_match(flow, r, env.cfg.baseline_h_ms)
    py_rate = n / (time.perf_counter() - t0)
    from finrl_lite.envs.melo.simulator import match_period

    ours = match_period(flow, torch.full((flow.arrival.shape[0], 1), h, dtype=flow.arrival.dtype)).filled[:n, 0]
    agree = [int(x) for x in ours.tolist()] == py_filled
    print(f"  plain-Python matching (peer): {py_rate:12,.0f} symbol-periods/s (matching only, no sampling); fills agree: {agree}")
    print(
        f"ratio batched torch / plain Python: {best / py_rate:,.1f}x; "
        f"target 1e5 symbol-periods/s: {'met' if best >= 1e5 else 'NOT met'} ({best:,.0f})"
    )


if __name__ == "__main__":
    main()
