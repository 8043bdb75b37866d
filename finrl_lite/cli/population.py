"""`finrl-lite pbt`: population-based training on Ray Tune, with a live view of the population."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.live import Live
from rich.table import Table

from finrl_lite.cli.app import ConfigOption, NoCacheOption, SetOption, console, raise_log_level_to_info, user_errors
from finrl_lite.cli.metrics_table import metrics_legend, metrics_table
from finrl_lite.errors import ConfigError

__all__ = ["pbt"]


def _progress_table(progress: Any | None, run_dir: Path) -> Table:
    table = Table(title=f"population -> {run_dir}", show_header=True)
    for column in ("trials alive", "finished", "failed", "best validation metric", "env steps learned", "steps/s"):
        table.add_column(column, justify="right")
    if progress is None:
        table.add_row("-", "-", "-", "starting Ray and the first trials", "-", "-")
        return table
    best = "-" if math.isnan(progress.best_value) else f"{progress.best_value:.4g} ({progress.best_trial})"
    table.add_row(
        f"{progress.alive} / {progress.trials}",
        str(progress.finished),
        str(progress.failed),
        f"{progress.metric} {best}",
        f"{progress.env_steps:,}",
        f"{progress.steps_per_second:,.0f}",
    )
    return table


def pbt(
    config: ConfigOption = None,
    set_: SetOption = None,
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", "-o", help="Run directory (default runs/<config name>)."),
    ] = None,
    address: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--address", help="Join a Ray cluster: auto, or the head's host:port (default: an embedded local Ray)."),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the interrupted population in --out.")] = False,
    no_cache: NoCacheOption = False,
) -> None:
    """Population-based training (Ray Tune PBT / PB2) ranked on the validation split; saves the top-k agents and
    evaluates them and their ensemble on the test split against the baselines."""
    from finrl_lite.config import load_config
    from finrl_lite.train.population import run_population

    with user_errors():
        if resume:
            if set_ and config is None:
                raise ConfigError("--resume takes the run directory's stored config; --set needs the --config it applies to")
            if out is None:
                raise ConfigError("--resume needs --out, the population's run directory")
            cfg = load_config(config, set_ or []) if config is not None else None
        else:
            cfg = load_config(config, set_ or [])
            if cfg.population is None:
                raise ConfigError(f"{config or '<defaults>'}: no population: section; start from configs/pbt.yaml")
        run_dir = out or Path("runs") / (config.stem if config else "pbt")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reporting unless the user asks for it
        # Tune's result logger warns whenever a trial restarted by PBT has no result file yet; the leaderboard
        # does not read those files.
        logging.getLogger("ray.tune.logger").setLevel(logging.ERROR)
        raise_log_level_to_info()  # the run's log file (written by the library) holds the INFO log
        with Live(_progress_table(None, run_dir), console=console, refresh_per_second=4) as live:

            def show(progress: Any) -> None:
                live.update(_progress_table(progress, run_dir))

            metrics = run_population(cfg, run_dir, address=address, resume=resume, hook=show, use_cache=not no_cache)
    for split, split_metrics in metrics.items():
        console.print(metrics_table(f"{split}: the population's top agents, their ensemble and the baselines", split_metrics))
    console.print(metrics_legend(False), style="dim")
    console.print(f"run directory: {run_dir} (leaderboard.csv, population.png, top_<k>/, ensemble/)")
