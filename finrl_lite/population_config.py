"""Typed configuration of population-based training (the ``population:`` section, ``finrl-lite pbt``).

This module imports only pydantic, so :mod:`finrl_lite.config` embeds :class:`PopulationConfig` without
importing torch or Ray. The names in ``mutations`` are checked against the agent backend's hyper-parameters
(:meth:`~finrl_lite.agents.backends.AgentBackend.tunable`) by :class:`~finrl_lite.config.AppConfig`, which
knows the agent.

Units: ``perturbation_interval`` is in environment steps of one trial (summed over its ``env.num_envs``);
each trial learns ``train.total_timesteps`` steps in all.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from finrl_lite.config_base import StrictModel

__all__ = ["LOWER_IS_BETTER", "MutationConfig", "PopulationConfig", "TrialResources"]

LOWER_IS_BETTER = frozenset({"annual_volatility", "turnover", "costs_paid"})
"""Metrics of :data:`~finrl_lite.train.metrics.METRIC_NAMES` a population minimises; it maximises the others."""


class MutationConfig(StrictModel):
    """How one hyper-parameter is sampled for the first generation and perturbed afterwards.

    Either a range (``low``/``high``, optionally ``log``): PBT samples it uniformly (log-uniformly), then multiplies
    a value by one of ``perturbation_factors`` (clipped back into the range) or resamples it; PB2 searches within it.
    Or ``values``: PBT picks one, then moves to a neighbouring value in the sorted list or resamples (PBT only).
    """

    low: int | float | None = Field(None, description="Lower end of the range (inclusive).")
    high: int | float | None = Field(None, description="Upper end of the range (inclusive).")
    log: bool = Field(False, description="Sample the range log-uniformly (low must be > 0).")
    values: list[int | float] | None = Field(
        None, min_length=2, description="A list of values instead of a range (sorted: PBT moves to a neighbour)."
    )

    @field_validator("values")
    @classmethod
    def _values(cls, value: list[int | float] | None) -> list[int | float] | None:
        if value is None:
            return None
        if len(set(value)) != len(value):
            raise ValueError(f"values repeat: {value}")
        if not all(math.isfinite(v) for v in value):
            raise ValueError(f"values must be finite: {value}")
        return sorted(value)

    @model_validator(mode="after")
    def _check(self) -> MutationConfig:
        has_range = self.low is not None or self.high is not None
        if has_range == (self.values is not None):
            raise ValueError("give either low and high (a range) or values (a list), not both or neither")
        if self.values is not None:
            if self.log:
                raise ValueError("log applies to a range (low/high), not to values")
            return self
        if self.low is None or self.high is None:
            raise ValueError("a range needs both low and high")
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ValueError(f"low must be below high, both finite; got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        return self

    def bounds(self) -> tuple[int | float, int | float]:
        """``(lowest, highest)`` value the mutation can produce."""
        if self.values is not None:
            return self.values[0], self.values[-1]
        assert self.low is not None and self.high is not None
        return self.low, self.high

    def candidates(self) -> list[int | float]:
        """The values to check against the hyper-parameter's range: the list, or both ends of the range."""
        return list(self.values) if self.values is not None else list(self.bounds())


class TrialResources(StrictModel):
    """What one trial reserves on a Ray node (``tune.with_resources``); fractional GPUs share a device."""

    cpu: float = Field(1.0, gt=0.0, le=1024.0, description="CPUs per trial.")
    gpu: float = Field(0.0, ge=0.0, le=64.0, description="GPUs per trial; 0.25 puts four trials on one GPU.")


class PopulationConfig(StrictModel):
    """Population-based training on Ray Tune: the scheduler, the population, what it ranks by, where it runs."""

    scheduler: Literal["pbt", "pb2"] = Field(
        "pbt", description="pbt: Ray Tune PopulationBasedTraining; pb2: PB2 (GP-bandit explore; needs scikit-learn)."
    )
    num_samples: int = Field(8, description="Trials in the population (at least 2: PBT copies between trials).")
    metric: str = Field(
        "sharpe", description="Metric of the validation-split back-test the population ranks by (train.metrics names)."
    )
    mode: Literal["max", "min"] | None = Field(
        None, description="Maximise or minimise the metric; None: min for volatility, turnover and costs, else max."
    )
    validation_split: str = Field("validation", description="Split (data.splits) of the ranking back-test.")
    perturbation_interval: int = Field(
        20_000, ge=1, description="Environment steps a trial learns between two validation reports (and checkpoints)."
    )
    synch: bool = Field(
        False,
        description="Synchronous PBT: trials wait for each other at every report and are ranked together (Ray's "
        "synch=True); steadier for small populations. False: each trial is ranked when it reports.",
    )
    quantile_fraction: float = Field(
        0.25, gt=0.0, le=0.5, description="Bottom fraction of trials that copy one of the top fraction."
    )
    resample_probability: float = Field(0.25, ge=0.0, le=1.0, description="PBT: chance to resample instead of perturbing.")
    perturbation_factors: tuple[float, float] = Field(
        (1.2, 0.8), description="PBT: factors a range value is multiplied by when perturbed."
    )
    mutations: dict[str, MutationConfig] = Field(
        default_factory=lambda: {
            "learning_rate": MutationConfig(low=1e-5, high=1e-3, log=True),
            "ent_coef": MutationConfig(low=0.0, high=0.05),
        },
        description="agent.params the population samples and mutates (names checked against the agent backend).",
    )
    resources_per_trial: TrialResources = Field(default_factory=TrialResources)
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the embedded local Ray (None: the machine's).")
    num_gpus: int | None = Field(None, ge=0, description="GPUs of the embedded local Ray (None: Ray detects them).")
    wait_for_resources_s: float = Field(
        60.0, ge=0.0, le=3600.0, description="Joining a cluster: how long to wait for a node that fits one trial."
    )
    storage_path: str | None = Field(
        None,
        description="Where Ray Tune keeps checkpoints and results (a local path, NFS or s3://...; None: the run "
        "directory's ray_results). A multi-node cluster needs storage every node reaches.",
    )
    ray_temp_dir: str | None = Field(None, description="Temp/log folder of the embedded local Ray (None: Ray's default).")
    max_failures: int = Field(2, ge=0, description="Restarts of a failed trial from its last checkpoint.")
    checkpoints_to_keep: int | None = Field(
        None,
        ge=3,
        description="Checkpoints Ray keeps per trial (None: all, a few MB per trial). Ray names a trial's checkpoints "
        "by a counter that an exploit rewinds to the donor's, so a newer checkpoint can take an older one's name; "
        "deleting old ones (a number here) can then delete a newer one under that name.",
    )
    top_k: int = Field(3, ge=1, description="Best trials (by their last validation report) saved as agents and evaluated.")
    ensemble: Literal["pick_best", "mean", "vote"] | None = Field(
        "mean",
        description="Policy of the top-k ensemble evaluated beside them (agents.ensemble: pick_best, mean action, "
        "majority vote for discrete-action agents); None: no ensemble.",
    )
    seed: int = Field(0, ge=0, description="Seed of the first trial; trial i uses seed + i.")

    @field_validator("num_samples")
    @classmethod
    def _population(cls, value: int) -> int:
        if value < 2:
            raise ValueError(f"a population needs at least 2 trials (PBT copies from one to another), got {value}")
        return value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        from finrl_lite.train.metrics import METRIC_NAMES

        if value not in METRIC_NAMES:
            raise ValueError(f"unknown metric '{value}'; expected one of {', '.join(METRIC_NAMES)}")
        return value

    @field_validator("perturbation_factors")
    @classmethod
    def _factors(cls, value: tuple[float, float]) -> tuple[float, float]:
        if any(f <= 0 or not math.isfinite(f) for f in value):
            raise ValueError(f"perturbation factors must be positive and finite, got {value}")
        return value

    @field_validator("mutations")
    @classmethod
    def _mutations(cls, value: dict[str, MutationConfig]) -> dict[str, MutationConfig]:
        if not value:
            raise ValueError("a population needs at least one hyper-parameter to mutate")
        return value

    @model_validator(mode="after")
    def _check(self) -> PopulationConfig:
        if self.top_k > self.num_samples:
            raise ValueError(f"top_k {self.top_k} exceeds the population's num_samples {self.num_samples}")
        if self.scheduler == "pb2":
            listed = sorted(name for name, m in self.mutations.items() if m.values is not None)
            if listed:
                raise ValueError(f"pb2 searches within ranges: give mutations {listed} low/high instead of values")
        return self

    def ranking_mode(self) -> Literal["max", "min"]:
        """``mode``, or the metric's natural direction."""
        if self.mode is not None:
            return self.mode
        return "min" if self.metric in LOWER_IS_BETTER else "max"

    def score(self, value: float) -> float:
        """``value`` of the ranking metric turned higher-is-better (negated when the ranking mode is ``min``)."""
        return value if self.ranking_mode() == "max" else -value
