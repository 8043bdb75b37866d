"""`finrl-lite melo ...`: train and evaluate the Dynamic M-ELO Double DQN holding-period agent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from finrl_lite.cli.app import ConfigOption, SetOption, console, user_errors

melo_app = typer.Typer(help="Dynamic M-ELO: midpoint holding-period environment and Double DQN agent.", no_args_is_help=True)

ThreadsOption = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option("--threads", min=1, help="torch CPU threads (default: torch's choice; 1 is fastest on a busy machine)."),
]


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


@melo_app.command("train")
def melo_train(
    config: ConfigOption = None,
    set_: SetOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (model.pt, config.yaml, train_history.json).")] = Path(
        "runs/melo"
    ),
    threads: ThreadsOption = None,
) -> None:
    """Train the Double DQN on simulated days and write the run folder OUT."""
    from finrl_lite.config import dump_config, load_config
    from finrl_lite.io import atomic_write_text
    from finrl_lite.melo_config import MeloConfig

    with user_errors():
        cfg = load_config(config, set_ or [])
        if cfg.melo is None:
            cfg.melo = MeloConfig()
        melo = cfg.melo
        _set_threads(threads)
        from finrl_lite.train.melo import train_melo

        days = melo.train.days
        with console.status(f"training on {days} simulated days x {melo.sim.num_envs * melo.sim.num_symbols} symbols") as status:

            def progress(summary: dict[str, float]) -> None:
                day = int(summary["step"]) // melo.sim.periods_per_day
                status.update(f"day {day}/{days}  mean reward {summary['mean_reward']:+.4f}  epsilon {summary['epsilon']:.2f}")

            agent, history = train_melo(melo, callback=progress)
        out.mkdir(parents=True, exist_ok=True)
        agent.save(out / "model.pt")
        atomic_write_text(out / "config.yaml", dump_config(cfg))
        atomic_write_text(out / "train_history.json", json.dumps(history, indent=1))

    table = Table(title="M-ELO Double DQN training", show_header=False)
    table.add_row("days x rows", f"{days} x {melo.sim.num_envs * melo.sim.num_symbols}")
    table.add_row("gradient steps", str(agent.gradient_updates))
    if history:
        table.add_row("mean reward, first day", f"{history[0]['mean_reward']:+.4f}")
        table.add_row("mean reward, last day", f"{history[-1]['mean_reward']:+.4f}")
    console.print(table)
    console.print(f"wrote {out}")


@melo_app.command("evaluate")
def melo_evaluate(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `finrl-lite melo train`.")],
    days: Annotated[Optional[int], typer.Option("--days", min=1, help="Simulated evaluation days.")] = None,  # noqa: UP045
    seed: Annotated[Optional[int], typer.Option("--seed", min=0, help="Evaluation seed (never a training day).")] = None,  # noqa: UP045
    threads: ThreadsOption = None,
) -> None:
    """Evaluate a trained agent against every static holding period, the oracle and the legacy 10 ms.

    Writes RUN_DIR/melo_eval.json and RUN_DIR/melo_pareto.png.
    """
    from finrl_lite.config import load_config
    from finrl_lite.errors import ConfigError
    from finrl_lite.io import atomic_write_text
    from finrl_lite.melo_config import MeloConfig

    with user_errors():
        model = run_dir / "model.pt"
        if not model.is_file():
            raise ConfigError(f"{run_dir}: no model.pt (run `finrl-lite melo train --out {run_dir}` first)")
        cfg = load_config(run_dir / "config.yaml")
        melo = cfg.melo or MeloConfig()
        _set_threads(threads)
        from finrl_lite.agents.native.ddqn import DoubleDQN
        from finrl_lite.train.melo import evaluate_melo, plot_pareto

        agent = DoubleDQN.load(model, device=melo.train.device)
        with console.status("evaluating on fresh simulated days"):
            result = evaluate_melo(agent, melo, days=days, seed=seed)
        atomic_write_text(run_dir / "melo_eval.json", json.dumps(result, indent=1))
        png = plot_pareto(result, run_dir / "melo_pareto.png")

    table = Table(
        title=f"M-ELO evaluation ({result['days']} days, seed {result['seed']}, {result['symbol_periods']} symbol-periods)"
    )
    table.add_column("policy")
    table.add_column("fill rate", justify="right")
    table.add_column(f"markout {result['markout_horizon']} (bps)", justify="right")
    rows = [("agent", result["agent"]), ("oracle", result["oracle"]), ("legacy 10 ms", result["legacy_10ms"])]
    rows += [(f"static {h} ms", v) for h, v in result["static"].items()]
    best = f"static {result['best_static_ms']:g} ms"
    for name, v in rows:
        label = f"{name} (best static)" if name == best else name
        table.add_row(label, f"{v['fill_rate']:.4f}", f"{v['markout_bps']:.4f}")
    console.print(table)
    t = result["targets"]
    console.print(
        f"vs best static: fill rate {t['fill_rate_vs_best_static']:+.4f}, markout {t['markout_vs_best_static_bps']:+.4f} bps "
        f"(Pareto-dominates: {t['pareto_dominates_best_static']}); "
        f"vs legacy: fill rate {100 * t['fill_rate_gain_vs_legacy']:+.1f}%, "
        f"markout cost {-100 * t['markout_cost_reduction_vs_legacy']:+.1f}%"
    )
    console.print(f"wrote {run_dir / 'melo_eval.json'} and {png}")
