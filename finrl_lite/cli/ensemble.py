"""`finrl-lite ensemble`: FinRL's rolling-window ensemble, done right."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from finrl_lite.cli.app import ConfigOption, NoCacheOption, SetOption, console, raise_log_level_to_info, user_errors
from finrl_lite.cli.metrics_table import metrics_legend, metrics_table

__all__ = ["ensemble"]


def _picks_table(picks: Any, members: list[str], metric: str) -> Table:
    table = Table(title=f"picks per window (validation {metric}; dates in picks.csv)")
    for column in ("window", "trades from", "turbulence", "picked", *members):
        table.add_column(column, justify="left" if column in ("trades from", "picked") else "right")
    for row in picks.to_dict("records"):
        threshold = row["turbulence_threshold"]
        cells = [
            str(row["window"]),
            str(row["trade_start"]),
            "-" if threshold is None or math.isnan(threshold) else f"{threshold:.4g}",
            f"[bold]{row['picked']}[/bold]",
            *(f"{row[m]:.3g}" for m in members),
        ]
        table.add_row(*cells)
    return table


def ensemble(
    config: ConfigOption = None,
    set_: SetOption = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run directory (default runs/<config name>).")] = None,  # noqa: UP045
    no_cache: NoCacheOption = False,
) -> None:
    """Rolling windows: train every candidate before each window, pick by validation, trade the window, chain them."""
    from finrl_lite.config import load_config
    from finrl_lite.errors import ConfigError
    from finrl_lite.train.ensemble import ensemble_run

    with user_errors():
        cfg = load_config(config, set_ or [])
        if cfg.ensemble is None:
            raise ConfigError(f"{config or '<defaults>'}: no 'ensemble' section (see configs/ensemble.yaml)")
        run_dir = out or Path("runs") / (config.stem if config else "ensemble")
        columns = (
            TextColumn("[bold]members trained"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
            TimeElapsedColumn(),
        )
        raise_log_level_to_info()  # the run's log file (written by the library) holds the INFO log
        with Progress(*columns, console=console, transient=False) as progress:
            task: list[Any] = []

            def hook(done: int, total: int, label: str) -> None:
                if not task:
                    task.append(progress.add_task("ensemble", total=total, last=""))
                progress.update(task[0], completed=done, last=label)

            result = ensemble_run(cfg, run_dir, hook=hook, use_cache=not no_cache)
    console.print(_picks_table(result.picks, result.members, cfg.ensemble.metric))
    split = cfg.ensemble.split
    console.print(metrics_table(f"{split}: out of sample, {len(result.windows)} windows chained", result.metrics[split]))
    console.print(metrics_legend(False), style="dim")
    console.print(f"run directory: {run_dir}")
