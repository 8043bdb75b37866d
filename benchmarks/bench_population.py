"""A population of PPO agents trained with Ray Tune PBT: finrl_lite (`finrl-lite pbt`: native PPO on
StockTradingVecEnv) against what a FinRL user would run (Ray Tune PBT over SB3 PPO on FinRL 0.3.7's own
StockTradingEnv, loaded as bench_train.py does), same data, same population, same budget, same run.

Prints, for each side: the environment steps the population learned per second of wall time (from the first trial's
start to the last report: learning, validation back-tests and checkpoints included, Ray's start-up excluded), and the
time until some trial first reported a validation Sharpe of at least --target-sharpe; then the throughput ratio.

    python benchmarks/bench_population.py                  # 8 trials x 16,384 steps each side (~8 min on 2 cores)
    python benchmarks/bench_population.py --trial-steps 8192 --ours-trial-steps 500000

At a budget the peer finishes in minutes, finrl_lite's trials learn in about a second and the population's wall time is
mostly Ray starting and pausing trials, validation back-tests and checkpoints; --ours-trial-steps adds a row at a
budget where learning dominates (its steady-state throughput), labelled as such.

Both sides: PBT over learning_rate and ent_coef, a validation report (and checkpoint) every --interval steps,
quantile 0.25, one CPU per trial on an embedded Ray of --cpus CPUs. The data is configs/pbt_sp500.yaml's (29 Dow
names of ../shared/data; synthetic if the file is absent). Each side measures its validation Sharpe with its own
back-test (FinRL: its env over the validation split with sqrt(252) annualisation).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = REPO.parent / "shared" / "data" / "sp500_5yr_daily.csv.gz"
INDICATORS = ["macd", "boll_ub", "boll_lb", "rsi_30", "cci_30", "dx_30", "close_30_sma", "close_60_sma"]
MUTATIONS = {"learning_rate": (3e-5, 1e-3), "ent_coef": (0.0, 0.02)}


def _config(args: argparse.Namespace, trial_steps: int, interval: int, out: Path) -> Any:
    from finrl_lite.config import load_config

    data = (
        [f"data.path={DATA}"] if DATA.is_file() else ["data.source=synthetic", "data.path=null", "data.synthetic.num_tickers=29"]
    )
    return load_config(
        REPO / "configs/pbt_sp500.yaml",
        [
            *data,
            f"data.cache.dir={out / 'cache'}",
            f"env.num_envs={args.num_envs}",
            f"train.total_timesteps={trial_steps}",
            "train.eval_splits=[validation]",
            "train.baselines=[buy_and_hold]",
            f"population.num_samples={args.samples}",
            f"population.perturbation_interval={interval}",
            "population.mutations={learning_rate: {low: 3.0e-5, high: 1.0e-3, log: true}, ent_coef: {low: 0.0, high: 0.02}}",
            f"population.num_cpus={args.cpus}",
            "population.top_k=1",
            "population.ensemble=null",
        ],
    )


def _learned(rows: list[dict[str, Any]]) -> int:
    """Environment steps the population learned: each report's steps past where its run started (lost branches too)."""
    steps_of = {r["checkpoint_id"]: r["env_steps"] for r in rows if r.get("checkpoint_id")}
    last: dict[str, int] = {}
    total = 0
    for r in rows:
        start = r.get("started_from", "")
        if start == "new":
            before = 0
        elif r.get("parent_trial"):
            before = r["parent_env_steps"]
        elif start:
            before = steps_of.get(start, last.get(r["trial_id"], 0))
        else:
            before = last.get(r["trial_id"], 0)
        total += r["env_steps"] - before
        last[r["trial_id"]] = r["env_steps"]
    return total


def _summary(rows: list[dict[str, Any]], learned: int, target: float) -> dict[str, float]:
    starts = [r["timestamp"] - r["time_this_iter_s"] for r in rows]
    t0, t1 = min(starts), max(r["timestamp"] for r in rows)
    reached = [r["timestamp"] - t0 for r in rows if r["validation_sharpe"] >= target]
    return {
        "learned": learned,
        "seconds": t1 - t0,
        "steps_per_second": learned / max(t1 - t0, 1e-9),
        "to_target": min(reached) if reached else float("nan"),
        "best_sharpe": max(r["validation_sharpe"] for r in rows),
    }


def run_ours(args: argparse.Namespace, trial_steps: int, interval: int, out: Path) -> dict[str, float]:
    from finrl_lite.train.population import run_population

    run = out / f"ours_{trial_steps}"
    run_population(_config(args, trial_steps, interval, out), run)
    rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    return _summary(rows, _learned(rows), args.target_sharpe)


# ---------------------------------------------------------------------------------------------------- the FinRL peer


def _finrl_sharpe(model: Any, market: Any) -> float:
    from finrl_peer import make_finrl_env, quiet

    env = make_finrl_env(market, INDICATORS)
    with quiet():
        obs, _ = env.reset()
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, done, _, _ = env.step(action)
    values = np.asarray(env.asset_memory, dtype=np.float64)
    returns = values[1:] / values[:-1] - 1.0
    return float(np.sqrt(252) * returns.mean() / returns.std()) if returns.std() > 0 else 0.0


def peer_trial(config: dict[str, Any], data: dict[str, Any]) -> None:
    """Ray Tune function trainable: SB3 PPO on FinRL's StockTradingEnv, restored from tune.get_checkpoint()."""
    import torch
    from finrl_peer import make_finrl_env, quiet
    from ray import tune
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    vec = DummyVecEnv([lambda: make_finrl_env(data["train"], INDICATORS)])
    hyper = {"learning_rate": config["learning_rate"], "ent_coef": config["ent_coef"]}
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            model = PPO.load(Path(directory) / "model.zip", env=vec, custom_objects=hyper, device="cpu")
    else:  # FinRL's tutorial PPO_PARAMS, with n_steps = the report interval
        model = PPO("MlpPolicy", vec, n_steps=data["interval"], batch_size=128, seed=config["seed"], device="cpu", **hyper)
    with quiet():
        while model.num_timesteps < data["budget"]:
            before, start = model.num_timesteps, time.perf_counter()
            model.learn(data["interval"], reset_num_timesteps=False)
            speed = (model.num_timesteps - before) / (time.perf_counter() - start)
            sharpe = _finrl_sharpe(model, data["validation"])
            with tempfile.TemporaryDirectory() as directory:
                model.save(Path(directory) / "model.zip")
                metrics = {"env_steps": model.num_timesteps, "validation_sharpe": sharpe, "steps_per_second": speed}
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


def run_peer(args: argparse.Namespace, out: Path) -> dict[str, float]:
    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    from finrl_lite.data_processors.processor import prepare_data

    market = prepare_data(_config(args, args.trial_steps, args.interval, out)).market
    data = {
        "train": market.slice("train"),
        "validation": market.slice("validation"),
        "budget": args.trial_steps,
        "interval": args.interval,
    }
    rows: list[dict[str, Any]] = []

    class Record(tune.Callback):
        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            rows.append({**result, "trial_id": trial.trial_id, "started_from": "", "parent_trial": ""})

    ray.init(
        num_cpus=args.cpus,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(BENCH), str(REPO)])}},
    )
    try:
        space = {
            name: tune.loguniform(max(lo, 1e-8), hi) if name == "learning_rate" else tune.uniform(lo, hi)
            for name, (lo, hi) in MUTATIONS.items()
        }
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(peer_trial, data=data), {"cpu": 1}),
            param_space={"seed": tune.grid_search(list(range(args.samples))), **space},
            tune_config=tune.TuneConfig(
                scheduler=PopulationBasedTraining(
                    time_attr="training_iteration",
                    metric="validation_sharpe",
                    mode="max",
                    perturbation_interval=1,
                    hyperparam_mutations=space,
                    quantile_fraction=0.25,
                ),
                num_samples=1,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name="peer",
                storage_path=str((out / "peer").resolve()),
                callbacks=[Record()],
                stop={"env_steps": args.trial_steps},
                verbose=0,
            ),
        )
        tuner.fit()
    finally:
        ray.shutdown()
    # SB3 counts whole rollouts: every report learned one interval from where its run (or its exploit) started.
    return _summary(rows, len(rows) * args.interval, args.target_sharpe)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=8, help="trials in each population")
    parser.add_argument("--trial-steps", type=int, default=16_384, help="environment steps per trial, both sides")
    parser.add_argument("--interval", type=int, default=2048, help="steps between validation reports, both sides")
    parser.add_argument("--ours-trial-steps", type=int, default=0, help="also run ours with this budget per trial")
    parser.add_argument("--ours-interval", type=int, default=0, help="its report interval (default: an eighth of it)")
    parser.add_argument("--num-envs", type=int, default=64, help="finrl_lite's environments per trial")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--target-sharpe", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with tempfile.TemporaryDirectory(prefix="bench_population_") as scratch:
        out = args.out or Path(scratch)
        results = {"FinRL 0.3.7 StockTradingEnv + SB3 PPO, Ray Tune PBT": run_peer(args, out)}
        results[f"finrl_lite pbt, native PPO x {args.num_envs} envs, same budget"] = run_ours(
            args, args.trial_steps, args.interval, out
        )
        if args.ours_trial_steps:
            interval = args.ours_interval or max(args.ours_trial_steps // 8, 1)
            name = f"finrl_lite pbt, {args.ours_trial_steps:,} steps per trial, reports every {interval:,}"
            results[name] = run_ours(args, args.ours_trial_steps, interval, out)
    peer = next(iter(results.values()))
    print(
        f"\npopulation of {args.samples}, {args.trial_steps:,} steps per trial, a report every {args.interval:,} steps, "
        f"{args.cpus} CPUs"
    )
    for name, r in results.items():
        to_target = "not reached" if r["to_target"] != r["to_target"] else f"{r['to_target']:.0f} s"
        print(
            f"{name:58s} {r['learned']:>10,} steps in {r['seconds']:7.1f} s = {r['steps_per_second']:10,.0f} env-steps/s "
            f"(x{r['steps_per_second'] / peer['steps_per_second']:.1f}); best validation Sharpe {r['best_sharpe']:.2f}, "
            f"Sharpe >= {args.target_sharpe:g} after {to_target}"
        )


if __name__ == "__main__":
    main()
