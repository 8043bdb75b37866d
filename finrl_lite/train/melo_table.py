"""The regime table: one holding period per (estimated previous regime, symbol), chosen on training days.

It is the non-clairvoyant reference of the M-ELO evaluation (and an optional starting point of the
full-information agent). On every simulated training period every h of ``env.holding_grid_ms`` is matched on
the same flow (common random numbers); each period is scored by its contribution to the pooled,
share-weighted fill rate and markout (the ``pooled`` score of :func:`~finrl_lite.envs.melo.env.column_scores`)
and the scores are summed per cell: the regime the Bayes filter (:mod:`~finrl_lite.envs.melo.regime`) gives the
*previous* period, and the symbol. Each cell keeps the h with the highest sum. The same pass sums every
static h's fills and markouts, from which the best static holding period on training days is chosen.

Fitting it needs only the order flow, which does not depend on the actions: a pass over the training seed's
days sees exactly the days the agent trains on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from finrl_lite.envs.melo.calibration import REGIMES
from finrl_lite.envs.melo.env import MeloVecEnv, column_scores
from finrl_lite.envs.melo.simulator import PeriodStats
from finrl_lite.errors import ConfigError
from finrl_lite.melo_config import MeloConfig

__all__ = [
    "RegimeTable",
    "TableAccumulator",
    "TableRecordingEnv",
    "eval_env_seed",
    "fit_regime_table",
    "melo_objective",
    "period_figures",
    "table_env",
    "train_env_seed",
]

logger = logging.getLogger(__name__)


def train_env_seed(seed: int) -> int:
    """Simulator seed of the training days of ``train.seed`` (even)."""
    return 2 * seed


def eval_env_seed(seed: int) -> int:
    """Simulator seed of the evaluation days of ``evaluate.seed`` (odd: never a training day)."""
    return 2 * seed + 1


def melo_objective(cfg: MeloConfig, fill_rate: float, markout_bps: float) -> float:
    """The evaluation's trade-off of pooled figures (floats, or tensors of them):
    ``-lambda * markout / markout_scale + (1 - lambda) * fill_rate / fill_rate_scale``."""
    e = cfg.env
    return -e.reward_lambda * markout_bps / e.markout_scale_bps + (1.0 - e.reward_lambda) * fill_rate / e.fill_rate_scale


@dataclass
class RegimeTable:
    """A fitted regime table and the static figures of the training days it was fitted on.

    Attributes:
        grid_ms: The holding periods it chose from.
        symbols: Calibrated symbols (the table's columns).
        h_ms: ``h_ms[regime][symbol]``: the holding period of each cell.
        periods: Symbol-periods per cell on the training days (3 x symbols).
        days: Training days it was fitted on.
        static: Pooled ``fill_rate`` and ``markout_bps`` of every static h on those days (keys as ``f"{h:g}"``).
        best_static_ms: The static h with the best :func:`melo_objective` on those days.
    """

    grid_ms: list[float]
    symbols: list[str]
    h_ms: list[list[float]]
    periods: list[list[int]]
    days: int
    static: dict[str, dict[str, float]]
    best_static_ms: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "regime table") -> RegimeTable:
        """Inverse of :meth:`to_dict`.

        Raises:
            ConfigError: ``data`` lacks a field or has one of another shape (``source`` names it in the message).
        """
        try:
            table = cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{source}: not a regime table ({exc}); delete it to fit it again") from None
        if len(table.h_ms) != 3 or any(len(row) != len(table.symbols) for row in table.h_ms):
            raise ConfigError(f"{source}: h_ms must hold 3 regimes x {len(table.symbols)} symbols; delete it to fit it again")
        return table

    def markdown(self) -> str:
        """The table as markdown (rows: the previous period's estimated regime)."""
        lines = ["| previous regime | " + " | ".join(self.symbols) + " |", "|---" * (len(self.symbols) + 1) + "|"]
        for k, name in enumerate(REGIMES):
            lines.append(f"| {name} | " + " | ".join(f"{h:g} ms" for h in self.h_ms[k]) + " |")
        return "\n".join(lines)


def period_figures(t: list[float], horizon: str) -> dict[str, float]:
    """Share-weighted figures of totals ``[submitted, filled, uninformed fills, 1 s cost, 5 s cost]``."""
    submitted, filled, uninformed, c1, c5 = t
    n = max(uninformed, 1.0)
    return {
        "fill_rate": filled / max(submitted, 1.0),
        "markout_bps": (c1 if horizon == "1s" else c5) / n,
        "markout_1s_bps": c1 / n,
        "markout_5s_bps": c5 / n,
        "filled": filled,
        "submitted": submitted,
    }


class TableAccumulator:
    """Per-cell sums of every grid h's pooled score, per-cell sums of the env's own reward of every grid h
    (the warm start's targets), and every grid h's pooled totals (float64, on the env's device).

    Args:
        env: A full-information :class:`MeloVecEnv` (``counterfactual=True``).
        cfg: The ``melo`` section.
    """

    def __init__(self, env: MeloVecEnv, cfg: MeloConfig) -> None:
        self.env, self.cfg = env, cfg
        symbols = [s.symbol for s in env.calibration.symbols]
        self.num_symbols = min(cfg.sim.num_symbols, len(symbols))
        self.symbols = symbols[: self.num_symbols]
        G, cells, dev = len(cfg.env.holding_grid_ms), 3 * self.num_symbols, env.device
        self.score = torch.zeros(cells, G, dtype=torch.float64, device=dev)
        self.reward = torch.zeros(cells, G, dtype=torch.float64, device=dev)
        self.count = torch.zeros(cells, dtype=torch.float64, device=dev)
        self.totals = torch.zeros(5, G, dtype=torch.float64, device=dev)  # as period_figures takes them
        self.steps = 0

    def cells(self, belief: Tensor) -> Tensor:
        """``[B]`` cell of every row: the argmax of the previous period's posterior, and the row's symbol."""
        return belief.argmax(1) * self.num_symbols + self.env.tables.symbol

    def add(self, belief: Tensor, stats: PeriodStats) -> None:
        """Add one period (``belief``: the filter's posterior before it; ``stats``: the env's ``info["stats"]``)."""
        env = self.env
        grid = slice(2 + env.num_extra, None)
        scores = column_scores(stats, env.cfg, env.submitted_ref, mode="pooled")[:, grid].double()
        own = env.column_scores(stats)
        reward = (own[:, grid] - own[:, 1:2]).double()
        cell = self.cells(belief)
        self.score.index_add_(0, cell, scores)
        self.reward.index_add_(0, cell, reward)
        self.count.index_add_(0, cell, torch.ones_like(cell, dtype=torch.float64))
        g = PeriodStats(*(x[:, grid].double() for x in stats))
        sums = (g.submitted, g.filled, g.uninformed_fills, g.cost_1s, g.cost_5s)
        self.totals += torch.stack([x.sum(0) for x in sums])
        self.steps += 1

    def mean_rewards(self) -> Tensor:
        """``[cells, G]`` mean reward (the env's own reward mode, against h0) of every grid h per cell."""
        return self.reward / self.count.clamp(min=1.0).unsqueeze(1)

    def state_dict(self) -> dict[str, Any]:
        """Sums and step count (CPU tensors), for checkpoints."""
        return {
            "score": self.score.cpu(),
            "reward": self.reward.cpu(),
            "count": self.count.cpu(),
            "totals": self.totals.cpu(),
            "steps": self.steps,
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`."""
        if tuple(saved["totals"].shape) != tuple(self.totals.shape):
            raise ConfigError(
                f"the checkpoint's regime-table sums have shape {tuple(saved['totals'].shape)}, this version's "
                f"{tuple(self.totals.shape)} (a checkpoint of an older finrl_lite or another holding grid): train anew"
            )
        for name in ("score", "reward", "count", "totals"):
            getattr(self, name).copy_(saved[name])
        self.steps = int(saved["steps"])

    def table(self) -> RegimeTable:
        """The fitted :class:`RegimeTable` (cells never seen keep the best static h of the training days)."""
        cfg, grid = self.cfg, list(self.cfg.env.holding_grid_ms)
        totals = self.totals.cpu().T.tolist()  # per holding period
        figures = [period_figures(t, cfg.env.reward_markout) for t in totals]
        static = {f"{h:g}": {k: figures[i][k] for k in ("fill_rate", "markout_bps")} for i, h in enumerate(grid)}
        best_static = max(grid, key=lambda h: melo_objective(cfg, **static[f"{h:g}"]))
        best = self.score.argmax(1).cpu().tolist()
        count = self.count.cpu().tolist()
        S = self.num_symbols
        h_ms = [[grid[best[k * S + s]] if count[k * S + s] > 0 else best_static for s in range(S)] for k in range(3)]
        periods = [[int(count[k * S + s]) for s in range(S)] for k in range(3)]
        days = self.steps // max(cfg.sim.periods_per_day, 1)
        return RegimeTable(grid, self.symbols, h_ms, periods, days, static, best_static)


class TableRecordingEnv:
    """A full-information :class:`MeloVecEnv` that adds every step to a :class:`TableAccumulator` (the
    ``TorchVecEnv`` contract, forwarded), so the table is fitted on the training days as they are played."""

    def __init__(self, env: MeloVecEnv, accumulator: TableAccumulator) -> None:
        self.env, self.accumulator = env, accumulator
        self.num_envs, self.observation_size, self.num_actions = env.num_envs, env.observation_size, env.num_actions
        self.action_size, self.action_low, self.action_high = env.action_size, env.action_low, env.action_high
        self.device, self.action_obs_column = env.device, env.action_obs_column

    def reset(self, seed: int | Sequence[int] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Reset the wrapped env."""
        return self.env.reset(seed)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        """Step the wrapped env and record the period."""
        belief = self.env.state.belief
        out = self.env.step(action)
        self.accumulator.add(belief, out[4]["stats"])
        return out


def table_env(cfg: MeloConfig, seed: int) -> MeloVecEnv:
    """A full-information env on the days of simulator seed ``seed`` whose grid columns every table can use
    (grid actions, no instability jump: the flow, and so the days, are those of any env of that seed)."""
    env_cfg = cfg.env.model_copy(update={"action_mode": "grid", "instability_threshold": None})
    return MeloVecEnv(cfg.sim, env_cfg, seed=seed, device=cfg.train.device, counterfactual=True)


def fit_regime_table(cfg: MeloConfig, seed: int, days: int) -> RegimeTable:
    """Fit the table on ``days`` days of simulator seed ``seed`` (the training days when ``seed`` is the training seed)."""
    env = table_env(cfg, seed)
    accumulator = TableAccumulator(env, cfg)
    env.reset(seed=seed)
    action = torch.zeros(env.num_envs, dtype=torch.int64, device=env.device)
    for _ in range(days * cfg.sim.periods_per_day):
        belief = env.state.belief
        accumulator.add(belief, env.step(action)[4]["stats"])
    table = accumulator.table()
    logger.info("regime table on %d training days:\n%s", days, table.markdown())
    return table
