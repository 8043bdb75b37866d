"""Train the Dynamic M-ELO Double DQN on :class:`~finrl_lite.envs.melo.env.MeloVecEnv` and evaluate it
against static holding periods and an oracle.

Seeds: the training simulator uses seed ``2 * train.seed`` and evaluation uses ``2 * seed + 1``, so an
evaluation never replays a training day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from finrl_lite.agents.native.ddqn import DDQNConfig, DoubleDQN
from finrl_lite.envs.melo.env import MeloVecEnv
from finrl_lite.envs.melo.simulator import PeriodStats
from finrl_lite.melo_config import MeloConfig

__all__ = ["ddqn_config", "evaluate_melo", "plot_pareto", "train_melo", "train_env_seed", "eval_env_seed"]

logger = logging.getLogger(__name__)

Policy = Callable[[Tensor], Tensor]


def train_env_seed(seed: int) -> int:
    """Simulator seed of training (even)."""
    return 2 * seed


def eval_env_seed(seed: int) -> int:
    """Simulator seed of evaluation (odd: never a training seed)."""
    return 2 * seed + 1


def ddqn_config(cfg: MeloConfig) -> DDQNConfig:
    """The generic Double DQN settings for the M-ELO schedule: collect a whole day for every symbol, then update."""
    a, day = cfg.agent, cfg.sim.periods_per_day
    return DDQNConfig(
        total_steps=cfg.train.days * day,
        hidden=tuple(a.hidden),
        learning_rate=a.learning_rate,
        gamma=a.gamma,
        buffer_size=a.buffer_size,
        batch_size=a.batch_size,
        tau=a.tau,
        target_update_interval=a.target_update_interval,
        eps_start=a.eps_start,
        eps_end=a.eps_end,
        eps_fraction=a.eps_fraction,
        learning_starts=0,
        train_frequency=day,
        gradient_steps=a.gradient_steps,
        max_grad_norm=a.max_grad_norm,
        huber=a.huber,
        seed=cfg.train.seed,
    )


def train_melo(
    cfg: MeloConfig, callback: Callable[[dict[str, float]], None] | None = None
) -> tuple[DoubleDQN, list[dict[str, float]]]:
    """Train a Double DQN holding-period policy on simulated days.

    Args:
        cfg: The ``melo`` config section.
        callback: Called after each simulated day with its summary (see :meth:`DoubleDQN.learn`).

    Returns:
        The trained agent and the per-day training summaries.
    """
    env = MeloVecEnv(cfg.sim, cfg.env, seed=train_env_seed(cfg.train.seed), device=cfg.train.device)
    agent = DoubleDQN(env.observation_size, env.num_actions, ddqn_config(cfg), device=cfg.train.device)
    history = agent.learn(env, seed=train_env_seed(cfg.train.seed), callback=callback)
    return agent, history


class _Totals:
    """Share-weighted accumulators over periods (tensors, one entry per evaluated column)."""

    def __init__(self, n: int, device: torch.device) -> None:
        z = lambda: torch.zeros(n, dtype=torch.float64, device=device)  # noqa: E731
        self.submitted, self.filled, self.uninformed, self.cost_1s, self.cost_5s = z(), z(), z(), z(), z()

    def add(self, s: PeriodStats) -> None:
        self.submitted += s.submitted.double().sum(0)
        self.filled += s.filled.double().sum(0)
        self.uninformed += s.uninformed_fills.double().sum(0)
        self.cost_1s += s.cost_1s.double().sum(0)
        self.cost_5s += s.cost_5s.double().sum(0)

    def summary(self, i: int, horizon: str) -> dict[str, float]:
        n = max(float(self.uninformed[i]), 1.0)
        m1, m5 = float(self.cost_1s[i]) / n, float(self.cost_5s[i]) / n
        return {
            "fill_rate": float(self.filled[i]) / max(float(self.submitted[i]), 1.0),
            "markout_bps": m1 if horizon == "1s" else m5,
            "markout_1s_bps": m1,
            "markout_5s_bps": m5,
            "filled": float(self.filled[i]),
            "submitted": float(self.submitted[i]),
        }


def _objective(cfg: MeloConfig, fill_rate: Tensor, markout: Tensor) -> Tensor:
    e = cfg.env
    return -e.reward_lambda * markout / e.markout_scale_bps + (1.0 - e.reward_lambda) * fill_rate / e.fill_rate_scale


@torch.no_grad()
def evaluate_melo(
    policy: DoubleDQN | Policy, cfg: MeloConfig, days: int | None = None, seed: int | None = None
) -> dict[str, Any]:
    """Evaluate a holding-period policy on fresh simulated days against every static h and an oracle.

    Every policy sees the same order flow (common random numbers): the agent's h, each static h on
    ``evaluate.static_grid_ms``, the legacy h and the oracle, which picks, per period and symbol, the grid
    h with the best objective ``-lambda * markout / markout_scale + (1 - lambda) * fill_rate / fill_rate_scale``
    in hindsight.

    Args:
        policy: A :class:`DoubleDQN` (acted greedily) or a function from observations to actions.
        cfg: The ``melo`` config section.
        days: Simulated days (default ``evaluate.days``).
        seed: Evaluation seed (default ``evaluate.seed``); the simulator uses ``2 * seed + 1``.

    Returns:
        A JSON-ready dict with ``agent``, ``static`` (h in ms -> metrics), ``oracle``, ``legacy_10ms``
        (each with ``fill_rate`` and ``markout_bps``, share-weighted), ``best_static_ms`` and ``targets``.
    """
    days = cfg.evaluate.days if days is None else days
    seed = cfg.evaluate.seed if seed is None else seed
    grid = list(cfg.evaluate.static_grid_ms)
    env = MeloVecEnv(
        cfg.sim, cfg.env, seed=eval_env_seed(seed), device=cfg.train.device, extra_holding_ms=[*grid, cfg.evaluate.legacy_ms]
    )
    act: Policy = (lambda o: policy.act(o, 0.0)) if isinstance(policy, DoubleDQN) else policy
    G = len(grid)
    totals = _Totals(2 + G + 1, env.device)  # agent, baseline, grid..., legacy
    oracle = _Totals(1, env.device)
    horizon = cfg.env.reward_markout
    h_sum = torch.zeros(3, dtype=torch.float64, device=env.device)
    h_cnt = torch.zeros(3, dtype=torch.float64, device=env.device)
    reward_sum = torch.zeros((), dtype=torch.float64, device=env.device)
    obs, _ = env.reset()
    steps = days * cfg.sim.periods_per_day
    for _ in range(steps):
        obs, reward, _, _, info = env.step(act(obs))
        s: PeriodStats = info["stats"]
        totals.add(s)
        mo = s.markout_1s if horizon == "1s" else s.markout_5s
        best = _objective(cfg, s.fill_rate[:, 2 : 2 + G], mo[:, 2 : 2 + G]).argmax(1, keepdim=True) + 2
        oracle.add(PeriodStats(*(x.gather(1, best) for x in s)))
        regime = info["regime"]
        h_sum.index_add_(0, regime, info["h_ms"].double())
        h_cnt.index_add_(0, regime, torch.ones_like(info["h_ms"], dtype=torch.float64))
        reward_sum += reward.double().mean()

    agent = totals.summary(0, horizon)
    static = {f"{h:g}": totals.summary(2 + k, horizon) for k, h in enumerate(grid)}
    legacy = totals.summary(2 + G, horizon)
    scores = {k: float(_objective(cfg, torch.tensor(v["fill_rate"]), torch.tensor(v["markout_bps"]))) for k, v in static.items()}
    best_key = max(scores, key=scores.__getitem__)
    best = static[best_key]
    agent_score = float(_objective(cfg, torch.tensor(agent["fill_rate"]), torch.tensor(agent["markout_bps"])))

    def rel(a: float, b: float) -> float:
        return (a - b) / abs(b) if b != 0 else float("nan")

    result: dict[str, Any] = {
        "agent": agent | {"objective": agent_score, "mean_reward": float(reward_sum) / steps},
        "static": {k: v | {"objective": scores[k]} for k, v in static.items()},
        "oracle": oracle.summary(0, horizon),
        "legacy_10ms": legacy | {"holding_ms": cfg.evaluate.legacy_ms},
        "best_static_ms": float(best_key),
        "agent_mean_h_ms_by_regime": {
            name: float(h_sum[i] / h_cnt[i]) if float(h_cnt[i]) > 0 else None
            for i, name in enumerate(("calm", "normal", "volatile"))
        },
        "targets": {
            "fill_rate_vs_best_static": agent["fill_rate"] - best["fill_rate"],
            "markout_vs_best_static_bps": agent["markout_bps"] - best["markout_bps"],
            "pareto_dominates_best_static": agent["fill_rate"] > best["fill_rate"] and agent["markout_bps"] < best["markout_bps"],
            "objective_vs_best_static": agent_score - scores[best_key],
            "statics_dominated_by_agent": [
                float(k)
                for k, v in static.items()
                if agent["fill_rate"] > v["fill_rate"] and agent["markout_bps"] < v["markout_bps"]
            ],
            "statics_dominating_agent": [
                float(k)
                for k, v in static.items()
                if v["fill_rate"] > agent["fill_rate"] and v["markout_bps"] < agent["markout_bps"]
            ],
            "fill_rate_gain_vs_legacy": rel(agent["fill_rate"], legacy["fill_rate"]),
            "markout_cost_reduction_vs_legacy": -rel(agent["markout_bps"], legacy["markout_bps"]),
            "meets_legacy_target": rel(agent["fill_rate"], legacy["fill_rate"]) >= 0.20
            and -rel(agent["markout_bps"], legacy["markout_bps"]) >= 0.11,
        },
        "markout_horizon": horizon,
        "markout_sign": "cost in bps from the uninformed orders' side: positive = price moved against them",
        "days": days,
        "seed": seed,
        "symbol_periods": steps * env.num_envs,
    }
    return result


def plot_pareto(result: dict[str, Any], path: str | Path) -> Path:
    """Write the Pareto plot (fill rate against markout cost) of an :func:`evaluate_melo` result to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from finrl_lite.io import atomic_path

    static = result["static"]
    hs = sorted(static, key=float)
    xs = [static[h]["markout_bps"] for h in hs]
    ys = [static[h]["fill_rate"] for h in hs]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.plot(xs, ys, "o-", color="0.5", label="static h (ms)")
    for h, x, y in zip(hs, xs, ys, strict=False):
        ax.annotate(h, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    pts = sorted(zip(xs, ys, strict=False))
    frontier, best_y = [], -1.0
    for x, y in pts:  # lower cost and higher fill rate is better
        if y > best_y:
            frontier.append((x, y))
            best_y = y
    if frontier:
        fx, fy = zip(*frontier, strict=False)
        ax.step(fx, fy, where="post", color="tab:blue", alpha=0.5, label="static Pareto frontier")
    for key, marker, color, label in (
        ("agent", "*", "tab:red", "Double DQN agent"),
        ("oracle", "D", "tab:green", "oracle (hindsight)"),
        ("legacy_10ms", "s", "black", "legacy 10 ms"),
    ):
        ax.scatter(
            [result[key]["markout_bps"]], [result[key]["fill_rate"]], marker=marker, s=120, color=color, label=label, zorder=3
        )
    ax.set_xlabel(f"markout cost ({result.get('markout_horizon', '1s')}, bps; lower is better)")
    ax.set_ylabel("fill rate (higher is better)")
    ax.set_title("Dynamic M-ELO: fill rate vs markout cost")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
