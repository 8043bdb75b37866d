"""Back-testing any run directory by its kind: a `finrl-lite train` run, a run of `finrl-lite ensemble` or of
`finrl-lite pbt`.

The kinds build on :mod:`finrl_lite.train.pipeline`, so the dispatch sits above them (the pipeline itself never
imports the modules built on it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finrl_lite.train import ensemble, pipeline, population

__all__ = ["backtest"]


def backtest(run_dir: str | Path, split: str = "test", use_cache: bool = True, allow_data_change: bool = False) -> dict[str, Any]:
    """What `finrl-lite backtest RUN --split SPLIT` runs: the back-test of the run's kind (see each one's docstring).

    Returns:
        ``{split: {curve: {metric: {mean, low, high, n, values}}}}``.
    """
    run = Path(run_dir)
    if population.is_population_run(run):
        return population.backtest_population(run, split, use_cache=use_cache, allow_data_change=allow_data_change)
    if ensemble.is_ensemble_run(run):
        return ensemble.backtest_ensemble_run(run, split, use_cache=use_cache, allow_data_change=allow_data_change)
    return pipeline.backtest_run(run, split, use_cache=use_cache, allow_data_change=allow_data_change)
