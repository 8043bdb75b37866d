"""Evaluate a Dynamic M-ELO holding-period policy on unseen simulated days, honestly.

Every policy sees the same order flow (common random numbers): the agent; every static h of
``evaluate.static_grid_ms`` (the static frontier); the legacy 10 ms; the regime table chosen on training days
(:mod:`~finrl_lite.train.melo_table`, the non-clairvoyant reference); and the hindsight oracle, which picks,
per period and symbol, the grid h with the best objective *after seeing the period's outcome* (no causal
policy can reach it: most of its gap needs hindsight).

Figures are share-weighted: fill rate = filled / submitted orders, markout = markout cost summed over the
uninformed fills / uninformed fills (bps, positive = the price moved against the uninformed side; lower
is better). They are reported pooled over the evaluation and per simulated day, with the mean and a 95%
Student-t interval over days. The **frontier gap** of a policy on a day is its markout minus the markout of
the static frontier at its fill rate (the Pareto-efficient statics of that day, linearly interpolated by fill
rate: what mixing two adjacent static holding periods gives); negative is better than every static
mixture. A static **dominates** a policy on a day when it has at least its fill rate and at most its
markout, one of them strictly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from finrl_lite.envs.melo.calibration import REGIMES
from finrl_lite.envs.melo.env import MeloVecEnv
from finrl_lite.envs.melo.simulator import PeriodStats
from finrl_lite.errors import ConfigError
from finrl_lite.melo_config import MeloConfig
from finrl_lite.train.melo_table import RegimeTable, eval_env_seed, melo_objective, period_figures
from finrl_lite.train.metrics import mean_confidence_interval

__all__ = ["ORACLE_NOTE", "evaluate_melo", "frontier_markout", "plot_pareto", "summarize_evaluations"]

ORACLE_NOTE = (
    "the oracle picks each period's best holding period after seeing that period's outcome (hindsight): "
    "no causal policy can reach it, and most of its gap needs hindsight"
)

Policy = Callable[[Tensor], Tensor]


class _Acting(Protocol):
    def act(self, obs: Tensor, epsilon: float = 0.0) -> Tensor: ...


def pareto_efficient(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The ``(fill_rate, markout)`` points no other point beats on both (fill rate at least as high, markout at most as
    high), sorted by fill rate."""
    return sorted((f, m) for f, m in points if not any(f2 >= f and m2 <= m and (f2, m2) != (f, m) for f2, m2 in points))


def frontier_markout(fill_rate: float, statics: Sequence[tuple[float, float]]) -> float | None:
    """Markout of the static frontier at ``fill_rate``.

    Args:
        fill_rate: The fill rate at which to read the frontier.
        statics: ``(fill_rate, markout)`` of every static holding period.

    Returns:
        The linear interpolation, by fill rate, between the Pareto-efficient statics on either side; None when
        ``fill_rate`` is outside their range (no static mixture reaches it).
    """
    efficient = pareto_efficient(statics)
    if not efficient or fill_rate < efficient[0][0] or fill_rate > efficient[-1][0]:
        return None
    for (f0, m0), (f1, m1) in zip(efficient, efficient[1:], strict=False):
        if f0 <= fill_rate <= f1:
            return m0 if f1 == f0 else m0 + (m1 - m0) * (fill_rate - f0) / (f1 - f0)
    return efficient[0][1]  # a single efficient static at exactly this fill rate


def _dominates(a: dict[str, float], b: dict[str, float]) -> bool:
    """``a`` has at least ``b``'s fill rate and at most its markout, one strictly."""
    return (
        a["fill_rate"] >= b["fill_rate"]
        and a["markout_bps"] <= b["markout_bps"]
        and (a["fill_rate"] > b["fill_rate"] or a["markout_bps"] < b["markout_bps"])
    )


def _ci(values: Sequence[float]) -> dict[str, float]:
    return mean_confidence_interval(list(values))


def _rel(a: float, b: float) -> float:
    return (a - b) / abs(b) if b != 0 else float("nan")


@torch.no_grad()
def evaluate_melo(
    policy: _Acting | Policy, cfg: MeloConfig, days: int | None = None, seed: int | None = None, table: RegimeTable | None = None
) -> dict[str, Any]:
    """Evaluate a holding-period policy on fresh simulated days against statics, the legacy h, the regime table and an oracle.

    Args:
        policy: An agent with ``act(obs, epsilon)`` (acted greedily) or a function from observations to actions.
        cfg: The ``melo`` config section (the policy's environment settings).
        days: Simulated days (default ``evaluate.days``).
        seed: Evaluation seed (default ``evaluate.seed``); the simulator uses ``2 * seed + 1``.
        table: The regime table chosen on training days (the non-clairvoyant reference); None leaves it out.

    Returns:
        A JSON-ready dict: pooled figures of ``agent``, ``static`` (h in ms -> figures), ``legacy_10ms``,
        ``oracle`` and ``regime_table``; ``per_day`` (policy -> figure -> one value per day, with the frontier
        gaps); ``spread`` (policy -> figure -> mean and 95% CI over days); ``frontier`` (gaps, dominating
        statics per day); ``best_static_ms`` (chosen on these days) and ``best_static_training_ms`` (on training
        days, from the table); ``targets`` (each target, its numbers and whether it is met); ``notes``.
    """
    days = cfg.evaluate.days if days is None else days
    seed = cfg.evaluate.seed if seed is None else seed
    ev, horizon = cfg.evaluate, cfg.env.reward_markout
    grid = list(ev.static_grid_ms)
    table_h = sorted({h for row in table.h_ms for h in row}) if table is not None else []
    extra = [*grid, ev.legacy_ms, *[h for h in table_h if h not in grid]]
    env = MeloVecEnv(cfg.sim, cfg.env, seed=eval_env_seed(seed), device=cfg.train.device, extra_holding_ms=extra)
    act: Policy = (lambda o: policy.act(o, 0.0)) if hasattr(policy, "act") else policy  # type: ignore[union-attr, assignment]
    G = len(grid)
    static_cols = torch.arange(2, 2 + G, device=env.device)
    table_cols = None
    if table is not None:
        if len(table.symbols) < min(cfg.sim.num_symbols, len(env.calibration.symbols)):
            raise ConfigError(
                f"the regime table covers {len(table.symbols)} symbols ({', '.join(table.symbols)}); "
                f"the evaluation simulates {cfg.sim.num_symbols}: fit it on a run with as many symbols"
            )
        table_cols = torch.tensor([[2 + extra.index(h) for h in row] for row in table.h_ms], device=env.device)
    names = ["agent", *[f"static {h:g}" for h in grid], "legacy", "oracle", *(["regime_table"] if table is not None else [])]
    totals = torch.zeros(days, len(names), 5, dtype=torch.float64, device=env.device)
    h_sum = torch.zeros(3, dtype=torch.float64, device=env.device)
    h_cnt = torch.zeros(3, dtype=torch.float64, device=env.device)
    reward_sum = torch.zeros((), dtype=torch.float64, device=env.device)
    obs, _ = env.reset()
    P = cfg.sim.periods_per_day
    for step in range(days * P):
        if table_cols is not None:
            chosen = table_cols[env.state.belief.argmax(1), env.tables.symbol]
        obs, reward, _, _, info = env.step(act(obs))
        s: PeriodStats = info["stats"]
        per = torch.stack([s.submitted, s.filled, s.uninformed_fills, s.cost_1s, s.cost_5s]).double()  # [5, B, C]
        mo = s.markout_1s if horizon == "1s" else s.markout_5s
        objective = melo_objective(cfg, s.fill_rate, mo)
        best = static_cols[objective[:, static_cols].argmax(1)]
        cols = [per[:, :, :1], per[:, :, 2 : 2 + G + 1], per.gather(2, best.view(1, -1, 1).expand(5, -1, 1))]
        if table_cols is not None:
            cols.append(per.gather(2, chosen.view(1, -1, 1).expand(5, -1, 1)))
        totals[step // P] += torch.cat(cols, dim=2).sum(1).T
        regime = info["regime"]
        h_sum.index_add_(0, regime, info["h_ms"].double())
        h_cnt.index_add_(0, regime, torch.ones_like(info["h_ms"], dtype=torch.float64))
        reward_sum += reward.double().mean()

    per_day_totals = totals.cpu().tolist()  # [days][policy][5]
    pooled_totals = totals.sum(0).cpu().tolist()
    pooled = {name: period_figures(pooled_totals[i], horizon) for i, name in enumerate(names)}
    daily = {name: [period_figures(per_day_totals[d][i], horizon) for d in range(days)] for i, name in enumerate(names)}
    static_names = [f"static {h:g}" for h in grid]

    def gap(fig: dict[str, float], day: int | None) -> float | None:
        statics = [
            (v["fill_rate"], v["markout_bps"])
            for v in ((pooled if day is None else {n: daily[n][day] for n in static_names})[n] for n in static_names)
        ]
        at = frontier_markout(fig["fill_rate"], statics)
        return None if at is None else fig["markout_bps"] - at

    ranked = [n for n in names if n != "legacy" and not n.startswith("static")]
    per_day: dict[str, dict[str, list[Any]]] = {}
    spread: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        per_day[name] = {
            "fill_rate": [f["fill_rate"] for f in daily[name]],
            "markout_bps": [f["markout_bps"] for f in daily[name]],
            "objective": [melo_objective(cfg, f["fill_rate"], f["markout_bps"]) for f in daily[name]],
        }
        if name in ranked:
            per_day[name]["frontier_gap_bps"] = [gap(daily[name][d], d) for d in range(days)]
        spread[name] = {
            k: _ci([x for x in v if x is not None]) for k, v in per_day[name].items() if any(x is not None for x in v)
        }
    dominating = [[float(n.split()[1]) for n in static_names if _dominates(daily[n][d], daily["agent"][d])] for d in range(days)]

    scores = {
        f"{h:g}": melo_objective(cfg, pooled[f"static {h:g}"]["fill_rate"], pooled[f"static {h:g}"]["markout_bps"]) for h in grid
    }
    best_key = max(scores, key=scores.__getitem__)
    agent, legacy = pooled["agent"], pooled["legacy"]
    agent_gaps = per_day["agent"]["frontier_gap_bps"]
    target_days = math.ceil(ev.target_days_share * days - 1e-9)
    days_met = sum(1 for g in agent_gaps if g is not None and g <= -ev.target_gap_bps)
    fill_gain, markout_cut = _rel(agent["fill_rate"], legacy["fill_rate"]), -_rel(agent["markout_bps"], legacy["markout_bps"])
    targets: dict[str, Any] = {
        "frontier_gap_bps": ev.target_gap_bps,
        "days_beating_frontier": days_met,
        "days_needed": target_days,
        "beats_frontier": days_met >= target_days,
        "days_a_static_dominates": sum(1 for d in dominating if d),
        "fill_rate_gain_vs_legacy": fill_gain,
        "markout_cost_reduction_vs_legacy": markout_cut,
        "fill_rate_gain_target": ev.target_fill_gain,
        "markout_cost_reduction_target": ev.target_markout_cut,
        "meets_legacy_target": fill_gain >= ev.target_fill_gain and markout_cut >= ev.target_markout_cut,
    }
    best_static: dict[str, Any] = {"evaluation_days": float(best_key)}
    if table is not None:
        best_static["training_days"] = table.best_static_ms
    for which, h in best_static.items():
        ref = pooled.get(f"static {h:g}")
        if ref is None:  # the training days' best static is off the evaluation grid
            continue
        targets[f"vs_best_static_{which}"] = {
            "holding_ms": h,
            "fill_rate": agent["fill_rate"] - ref["fill_rate"],
            "markout_bps": agent["markout_bps"] - ref["markout_bps"],
            "pareto_dominates": _dominates(agent, ref),
            "dominated_by": _dominates(ref, agent),
        }
    if table is not None:
        table_gap = spread["regime_table"]["frontier_gap_bps"]
        agent_gap = spread["agent"].get("frontier_gap_bps")
        targets["agent_gap_mean_bps"] = None if agent_gap is None else agent_gap["mean"]
        targets["regime_table_gap_bps"] = table_gap
        targets["not_worse_than_regime_table"] = agent_gap is not None and agent_gap["mean"] <= table_gap["high"]
    targets["met"] = bool(
        targets["beats_frontier"] and targets["meets_legacy_target"] and targets.get("not_worse_than_regime_table", True)
    )
    oracle_gain = melo_objective(cfg, pooled["oracle"]["fill_rate"], pooled["oracle"]["markout_bps"]) - scores[best_key]
    share_of_oracle = {
        name: (melo_objective(cfg, pooled[name]["fill_rate"], pooled[name]["markout_bps"]) - scores[best_key]) / oracle_gain
        for name in ("agent", "regime_table")
        if name in pooled and oracle_gain > 0
    }
    result: dict[str, Any] = {
        "agent": agent
        | {
            "objective": melo_objective(cfg, agent["fill_rate"], agent["markout_bps"]),
            "mean_reward": float(reward_sum) / (days * P),
            "frontier_gap_bps": gap(agent, None),
        },
        "static": {f"{h:g}": pooled[f"static {h:g}"] | {"objective": scores[f"{h:g}"]} for h in grid},
        "legacy_10ms": legacy | {"holding_ms": ev.legacy_ms},
        "oracle": pooled["oracle"] | {"frontier_gap_bps": gap(pooled["oracle"], None)},
        "per_day": per_day,
        "spread": spread,
        "frontier": {"agent_gap_bps": agent_gaps, "statics_dominating_agent": dominating},
        "best_static_ms": float(best_key),
        "best_static_training_ms": table.best_static_ms if table is not None else None,
        "share_of_oracle_gain": share_of_oracle,
        "agent_mean_h_ms_by_regime": {
            name: float(h_sum[i] / h_cnt[i]) if float(h_cnt[i]) > 0 else None for i, name in enumerate(REGIMES)
        },
        "targets": targets,
        "notes": {
            "oracle": ORACLE_NOTE,
            "markout_sign": "cost in bps from the uninformed orders' side: positive = price moved against them",
        },
        "markout_horizon": horizon,
        "days": days,
        "seed": seed,
        "symbol_periods": days * P * env.num_envs,
    }
    if table is not None:
        result["regime_table"] = pooled["regime_table"] | {
            "frontier_gap_bps": gap(pooled["regime_table"], None),
            "table": table.to_dict(),
        }
    return result


def summarize_evaluations(results: Sequence[dict[str, Any]], labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Mean and 95% CI over training seeds (one :func:`evaluate_melo` result per trained run), and over every
    (seed, day) pair, of each policy's fill rate, markout and frontier gap; the targets of every run.

    Args:
        results: One evaluation per training seed.
        labels: A name per result (default ``run 0``, ``run 1``, ...).
    """
    labels = list(labels or [f"run {i}" for i in range(len(results))])
    policies = [p for p in results[0]["per_day"] if all(p in r["per_day"] for r in results)]
    over_seeds: dict[str, dict[str, dict[str, float]]] = {}
    over_days: dict[str, dict[str, dict[str, float]]] = {}
    for p in policies:
        over_seeds[p], over_days[p] = {}, {}
        for figure in results[0]["per_day"][p]:
            means = [r["spread"][p][figure]["mean"] for r in results if figure in r["spread"][p]]
            values = [x for r in results for x in r["per_day"][p][figure] if x is not None]
            if means:
                over_seeds[p][figure] = _ci(means)
            if values:
                over_days[p][figure] = _ci(values)
    per_run = {label: r["targets"] for label, r in zip(labels, results, strict=True)}
    return {
        "runs": labels,
        "over_training_seeds": over_seeds,
        "over_seed_days": over_days,
        "targets": per_run,
        "met_for_every_run": all(t["met"] for t in per_run.values()),
    }


def plot_pareto(result: dict[str, Any], path: str | Path) -> Path:
    """Write the Pareto plot (fill rate against markout cost) of an :func:`evaluate_melo` result to ``path`` (PNG)."""
    from matplotlib.figure import Figure

    from finrl_lite.train.report import write_png

    static = result["static"]
    hs = sorted(static, key=float)
    xs = [static[h]["markout_bps"] for h in hs]
    ys = [static[h]["fill_rate"] for h in hs]
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    efficient = pareto_efficient(list(zip(ys, xs, strict=True)))
    if efficient:
        fy, fx = zip(*efficient, strict=True)
        ax.plot(fx, fy, "-", color="tab:blue", alpha=0.5, label="static frontier (mixtures of adjacent statics)")
    ax.plot(xs, ys, "o", color="0.5", label="static h (ms)")
    for h, x, y in zip(hs, xs, ys, strict=True):
        ax.annotate(h, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    for key, marker, color, label in (
        ("agent", "*", "tab:red", "agent"),
        ("regime_table", "P", "tab:purple", "regime table (training days)"),
        ("oracle", "D", "tab:green", "oracle (hindsight)"),
        ("legacy_10ms", "s", "black", "legacy 10 ms"),
    ):
        if key in result:
            ax.scatter(
                [result[key]["markout_bps"]], [result[key]["fill_rate"]], marker=marker, s=120, color=color, label=label, zorder=3
            )
    ax.set_xlabel(f"markout cost ({result.get('markout_horizon', '1s')}, bps; lower is better)")
    ax.set_ylabel("fill rate (higher is better)")
    ax.set_title("Dynamic M-ELO: fill rate vs markout cost")
    ax.legend(fontsize=8)
    return write_png(fig, path)
