"""Honest results of population-based training on real data: the test-split Sharpe of the PBT top agent and of the
top-k ensemble, against a single PPO run of the same total budget and the baselines, over several seeds.

    python benchmarks/honest_population.py                      # 3 seeds, 8 trials x 100k steps (~25 min, busy 2 cores)
    python benchmarks/honest_population.py --seeds 0 1 --trial-steps 50000

Runs configs/pbt_sp500.yaml (the 29 Dow names of ../shared/data/sp500_5yr_daily.csv.gz): for each seed, one population
(``population.seed``) and one ``finrl-lite train`` run of ``num_samples * trial_steps`` steps (``train.seeds``). Prints a
markdown table: mean and 95% CI over the seeds, and the standard error of one run's Sharpe on the test window (Lo, 2002).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from finrl_lite.config import load_config
from finrl_lite.train.metrics import mean_confidence_interval
from finrl_lite.train.pipeline import train_run
from finrl_lite.train.population import run_population

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "sp500_5yr_daily.csv.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trial-steps", type=int, default=100_000, help="environment steps per trial")
    parser.add_argument("--samples", type=int, default=8, help="trials in the population")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the embedded Ray")
    parser.add_argument("--out", type=Path, default=Path("runs/honest_population"))
    args = parser.parse_args()
    if not DATA.is_file():
        raise SystemExit(f"{DATA} is missing")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    common = [f"data.path={DATA}", f"data.cache.dir={args.out / 'cache'}", f"population.num_samples={args.samples}"]
    budget = args.samples * args.trial_steps
    sharpe: dict[str, list[float]] = {"PBT top agent": [], "PBT top-k ensemble": [], "single PPO, same total budget": []}
    baselines: dict[str, float] = {}
    test_days = 0
    for seed in args.seeds:
        start = time.perf_counter()
        pbt_cfg = load_config(
            REPO / "configs/pbt_sp500.yaml",
            [
                *common,
                f"train.total_timesteps={args.trial_steps}",
                f"population.perturbation_interval={max(args.trial_steps // 8, 1)}",
                f"population.seed={seed * 100}",
                f"population.num_cpus={args.cpus}",
            ],
        )
        test = run_population(pbt_cfg, args.out / f"pbt_seed{seed}")["test"]
        sharpe["PBT top agent"].append(test["top_1"]["sharpe"]["mean"])
        sharpe["PBT top-k ensemble"].append(test["ensemble"]["sharpe"]["mean"])
        middle = time.perf_counter()
        single_cfg = load_config(
            REPO / "configs/pbt_sp500.yaml", [*common, f"train.total_timesteps={budget}", f"train.seeds=[{seed}]"]
        )
        single = train_run(single_cfg, args.out / f"single_seed{seed}")["test"]
        sharpe["single PPO, same total budget"].append(single["agent"]["sharpe"]["mean"])
        baselines = {name: curve["sharpe"]["mean"] for name, curve in single.items() if name != "agent"}
        test_days = len((args.out / f"single_seed{seed}" / f"seed_{seed}" / "equity_test.csv").read_text().splitlines()) - 1
        print(
            f"seed {seed}: PBT {middle - start:.0f} s (top {sharpe['PBT top agent'][-1]:.2f}, ensemble "
            f"{sharpe['PBT top-k ensemble'][-1]:.2f}), single PPO {time.perf_counter() - middle:.0f} s "
            f"({sharpe['single PPO, same total budget'][-1]:.2f})",
            flush=True,
        )
    print(f"\ntest split: {test_days} days; {args.samples} trials x {args.trial_steps:,} steps = {budget:,} steps per method")
    print("| test-split Sharpe | mean | 95% CI over seeds | per seed |\n|---|---|---|---|")
    for name, values in sharpe.items():
        ci = mean_confidence_interval(values)
        print(f"| {name} | {ci['mean']:.2f} | [{ci['low']:.2f}, {ci['high']:.2f}] | {', '.join(f'{v:.2f}' for v in values)} |")
    for name, value in baselines.items():
        print(f"| {name} (deterministic) | {value:.2f} | | |")
    typical = float(np.mean([abs(v) for values in sharpe.values() for v in values]))
    error = math.sqrt((1 + typical**2 / 2 / 252) / test_days) * math.sqrt(252) if test_days else float("nan")
    print(f"\none run's Sharpe on {test_days} test days has a standard error of about {error:.2f} (Lo, 2002)")
    (args.out / "honest.json").write_text(json.dumps({"sharpe": sharpe, "baselines": baselines, "days": test_days}, indent=1))


if __name__ == "__main__":
    main()
