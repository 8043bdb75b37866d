"""A population's leaderboard, Ray's log of its exploits, and the plot of its validation metric over time.

The leaderboard comes from the reports the trials made (``history.jsonl``, written by the driver as they arrived):
each row is one report of one trial, less the reports of work an interruption lost (which the restarted trial
redid). An exploited trial's first report after the exploit names its parent (the donor trial whose checkpoint it
continued from) and the donor's step. Ray's PBT keeps its own log of the same events in the experiment folder,
``pbt_global.txt``: one JSON list per exploit, ``[target tag, donor tag, target iteration, donor iteration, donor
config, new config]`` (``PopulationBasedTraining._log_config_on_step`` in Ray 2.60), where a tag starts with the
trial's index (``"3_learning_rate=..."``); :func:`read_exploits` turns it into a table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finrl_lite.io import atomic_write_text
from finrl_lite.population_config import PopulationConfig
from finrl_lite.train.metrics import METRIC_NAMES
from finrl_lite.train.report import write_png

__all__ = ["leaderboard_frame", "merge_exploit_log", "plot_population", "read_exploits", "read_history", "read_text"]

_TRIAL_COLUMNS = (
    "parent_trial",
    "parent_env_steps",
    "parent_checkpoint",
    "checkpoint_id",
    "node_id",
    "steps_per_second",
    "train_return",
    "time_total_s",
)


def read_history(path: str | Path) -> pd.DataFrame:
    """The reports of a population, in the order they reached the driver (empty if none arrived)."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=["trial_id", "training_iteration", "env_steps"])
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows)


def leaderboard_frame(history: pd.DataFrame, population: PopulationConfig, ranking: Sequence[str]) -> pd.DataFrame:
    """Every report, grouped by trial from the best trial down, each trial's reports in the order they came.

    Args:
        history: :func:`read_history`.
        population: The ``population`` section (ranking metric, mutated names).
        ranking: Trial ids best first (the finished trials); other trials follow, without a rank.

    Returns:
        Columns ``rank, trial_id, report, env_steps``, ``validation_<metric>`` (the ranking metric first), the
        mutated hyper-parameters by name, ``parent_trial, parent_env_steps, parent_checkpoint`` (the donor of an
        exploit, on the trial's first report after it), ``checkpoint_id`` (``trial.json`` of Ray's checkpoint of the
        report, until a later branch of the same trial overwrites it), ``node_id``, ``steps_per_second``,
        ``train_return``, ``time_total_s``.
    """
    frame = _without_lost_branches(history)
    trials = list(ranking) + sorted(set(frame["trial_id"]) - set(ranking))
    order = {trial: i for i, trial in enumerate(trials)}
    frame["rank"] = [order[t] + 1 if t in ranking else np.nan for t in frame["trial_id"]]
    frame["report"] = frame.get("training_iteration")
    frame = frame.rename(columns={f"hp_{name}": name for name in population.mutations})
    frame["_arrival"] = np.arange(len(frame))
    frame["_order"] = frame["trial_id"].map(order)
    frame = frame.sort_values(["_order", "_arrival"], kind="stable")
    ranking_metric = f"validation_{population.metric}"
    metrics = [ranking_metric] + [f"validation_{m}" for m in METRIC_NAMES if f"validation_{m}" != ranking_metric]
    columns = ["rank", "trial_id", "report", "env_steps", *metrics, *population.mutations, *_TRIAL_COLUMNS]
    for column in columns:
        if column not in frame:
            frame[column] = np.nan
    for column in ("parent_trial", "parent_checkpoint", "checkpoint_id"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "")
    return frame[columns].reset_index(drop=True)


def _without_lost_branches(history: pd.DataFrame) -> pd.DataFrame:
    """The reports minus those of work a restart discarded.

    A trial's run that started new, or from the trial's own checkpoint C (``started_from``), after the trial had
    reported past that point (an interruption or a failure between a report and the experiment's saved state)
    redoes that work: the trial's earlier reports after C (all of them, for a new start) are dropped. A run that
    started from another trial's checkpoint (an exploit) keeps the trial's history before it.
    """
    if "started_from" not in history:
        return history.copy()
    kept: dict[str, list[int]] = {}
    for index, row in zip(history.index, history.itertuples(index=False), strict=True):
        rows = kept.setdefault(row.trial_id, [])
        start = row.started_from if isinstance(row.started_from, str) else ""
        if start == "new":
            rows.clear()
        elif start and not row.parent_trial:
            ids = [history.at[i, "checkpoint_id"] for i in rows]
            if start in ids:
                del rows[ids.index(start) + 1 :]
        rows.append(index)
    return history.loc[sorted(i for rows in kept.values() for i in rows)].copy()


def read_text(location: str) -> str | None:
    """A file's text from a local path or a URI (s3://, gs://: pyarrow's filesystems), None if it does not exist."""
    if "://" not in location:
        path = Path(location)
        return path.read_text() if path.is_file() else None
    import pyarrow.fs

    fs, inner = pyarrow.fs.FileSystem.from_uri(location)
    if fs.get_file_info(inner).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(inner) as handle:
        return handle.read().decode()


def merge_exploit_log(experiment: str, kept: Path) -> None:
    """Append the lines of the experiment's ``pbt_global.txt`` that ``kept`` lacks to ``kept`` (in order).

    Ray rewrites the experiment's copy from a fresh file when an interrupted population resumes, which drops the
    exploits before the interruption; the run directory's copy keeps them.
    """
    text = read_text(f"{experiment.rstrip('/')}/pbt_global.txt")
    if text is None:
        return
    lines = kept.read_text().splitlines() if kept.is_file() else []
    seen = set(lines)
    lines += [line for line in text.splitlines() if line.strip() and line not in seen]
    atomic_write_text(kept, "".join(line + "\n" for line in lines))


def read_exploits(log: Path, trial_ids: Sequence[str], names: Sequence[str]) -> pd.DataFrame | None:
    """A ``pbt_global.txt`` of Ray's PBT as a table, or None when there is none (no exploit yet).

    Args:
        log: The log file (:func:`merge_exploit_log` keeps the run directory's).
        trial_ids: The population's trial ids (a tag's index is the number after the id's last ``_``).
        names: The mutated hyper-parameters.

    Returns:
        One row per exploit: ``target_trial, donor_trial, target_report, donor_report`` and, per hyper-parameter,
        ``<name>_donor`` (the donor's value) and ``<name>_new`` (the value the target continued with).
    """
    if not log.is_file():
        return None
    text = log.read_text()
    by_index = {int(t.rsplit("_", 1)[1]): t for t in trial_ids}
    rows: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        target, donor, target_iteration, donor_iteration, donor_config, new_config = json.loads(line)
        row = {
            "target_trial": by_index.get(int(target.split("_", 1)[0]), target),
            "donor_trial": by_index.get(int(donor.split("_", 1)[0]), donor),
            "target_report": target_iteration,
            "donor_report": donor_iteration,
        }
        for name in names:
            row[f"{name}_donor"] = donor_config.get(name)
            row[f"{name}_new"] = new_config.get(name)
        rows.append(row)
    return pd.DataFrame(rows)


def plot_population(board: pd.DataFrame, metric: str, path: str | Path, split: str) -> Path:
    """Each trial's ``metric`` over its environment steps; an exploit is a dashed line from the donor's report to the
    exploited trial's next report (marked x). The ranked trials are labelled."""
    import matplotlib
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5.5))
    ax = fig.subplots()
    colors = matplotlib.colormaps["tab10"]
    for i, (trial, rows) in enumerate(board.groupby("trial_id", sort=False)):
        color = colors(i % 10)
        rank = rows["rank"].iloc[0]
        label = f"#{int(rank)} {trial}" if rank == rank else trial
        segment_x: list[float] = []
        segment_y: list[float] = []
        for row in rows.itertuples(index=False):
            x, y = float(row.env_steps), float(getattr(row, metric))
            if row.parent_trial:
                if segment_x:
                    ax.plot(segment_x, segment_y, color=color, linewidth=1.4, label=label)
                    label = None
                donor = board[(board["trial_id"] == row.parent_trial) & (board["env_steps"] == row.parent_env_steps)]
                if len(donor):
                    ax.plot([row.parent_env_steps, x], [float(donor[metric].iloc[-1]), y], color=color, linestyle="--", lw=1)
                ax.scatter([x], [y], color=color, marker="x", s=40, zorder=3)
                segment_x, segment_y = [], []
            segment_x.append(x)
            segment_y.append(y)
        ax.plot(segment_x, segment_y, color=color, linewidth=1.4, marker="o", markersize=2.5, label=label)
    ax.set_xlabel("environment steps learned")
    ax.set_ylabel(f"{metric} ({split} split)")
    ax.set_title(f"population: {metric} over training; x / dashed: exploit (copy of a better trial's checkpoint)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7, ncol=2)
    return write_png(fig, path)
