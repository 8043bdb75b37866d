"""`finrl-lite train` and `finrl-lite backtest`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from finrl_lite.cli.app import ConfigOption, NoCacheOption, SetOption, console, raise_log_level_to_info, user_errors
from finrl_lite.cli.metrics_table import metrics_legend, metrics_table
from finrl_lite.errors import ConfigError

__all__ = ["train", "backtest"]


def train(
    config: ConfigOption = None,
    set_: SetOption = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run directory (default runs/<config name>).")] = None,  # noqa: UP045
    seeds: Annotated[
        Optional[str], typer.Option("--seeds", help="Comma-separated seeds, e.g. 0,1,2 (overrides train.seeds).")
    ] = None,  # noqa: UP045
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue an interrupted run directory.")] = None,  # noqa: UP045
    no_cache: NoCacheOption = False,
) -> None:
    """Prepare data, train on the train split, evaluate on validation and test, and write a run directory."""
    from finrl_lite.config import load_config
    from finrl_lite.train.pipeline import load_run_config, train_run

    with user_errors():
        if resume is not None:
            if config is not None or set_:
                raise ConfigError("--resume takes the run directory's own config; drop --config/--set")
            cfg, run_dir = load_run_config(resume), resume
        else:
            cfg = load_config(config, set_ or [])
            if seeds:
                try:
                    cfg.train.seeds = [int(s) for s in seeds.split(",") if s.strip()]
                except ValueError as exc:
                    raise ConfigError(f"--seeds '{seeds}': expected comma-separated integers") from exc
            run_dir = out or Path("runs") / (config.stem if config else "default")
        raise_log_level_to_info()  # the run's train.log (written by the pipeline) holds the INFO log
        columns = (
            TextColumn("[bold]seed {task.fields[seed]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[sps]:>9,.0f} steps/s"),
            TextColumn("return {task.fields[ret]}"),
            TimeElapsedColumn(),
        )
        learned: dict[int, int] = {}
        with Progress(*columns, console=console, transient=False) as progress:
            tasks: dict[int, Any] = {}

            def hook(seed: int, p: Any) -> None:
                if seed not in tasks:
                    tasks[seed] = progress.add_task("train", total=p.total_steps, seed=seed, sps=0.0, ret="-")
                ret = "-" if p.episode_return != p.episode_return else f"{p.episode_return:.4g}"
                total = max(p.total_steps, p.steps)  # the bar shows the steps really learned, past the budget too
                progress.update(tasks[seed], completed=p.steps, total=total, sps=p.steps_per_second, ret=ret)
                learned[seed] = p.steps

            metrics = train_run(cfg, run_dir, hook=hook, use_cache=not no_cache)
        for seed, steps in learned.items():
            console.print(f"seed {seed}: learned from {steps:,} environment steps (budget {cfg.train.total_timesteps:,})")
    for split, split_metrics in metrics.items():
        console.print(metrics_table(f"{split} (seeds {', '.join(map(str, cfg.train.seeds))})", split_metrics))
    console.print(metrics_legend(len(cfg.train.seeds) > 1), style="dim")
    console.print(f"run directory: {run_dir}")


def backtest(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `finrl-lite train`.")],
    split: Annotated[str, typer.Option("--split", help="Split to back-test on (test, trade, ...).")] = "test",
    no_cache: NoCacheOption = False,
    allow_data_change: Annotated[
        bool,
        typer.Option(
            "--allow-data-change", help="Back-test even if the data's values changed since training (same tickers and fields)."
        ),
    ] = False,
) -> None:
    """Evaluate a trained run and every baseline on a split; print metrics, write backtest.json and PNGs."""
    from finrl_lite.train.runs import backtest as backtest_run

    with user_errors():
        with console.status(f"back-testing {run_dir} on {split}"):
            result = backtest_run(run_dir, split, use_cache=not no_cache, allow_data_change=allow_data_change)
    console.print(metrics_table(f"back-test on {split}", result[split]))
    console.print(metrics_legend(any(stat["n"] > 1 for row in result[split].values() for stat in row.values())), style="dim")
    console.print(f"wrote {run_dir / f'backtest_{split}'}")
