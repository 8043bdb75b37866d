"""`finrl-lite melo ...`: train and evaluate the Dynamic M-ELO holding-period agent."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from finrl_lite.cli.app import ConfigOption, SetOption, console, err_console, user_errors

melo_app = typer.Typer(help="Dynamic M-ELO: midpoint holding-period environment and Double DQN agent.", no_args_is_help=True)

ThreadsOption = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--threads",
        min=1,
        help="torch CPU threads. Default: the CPUs this process may run on (os.sched_getaffinity) less those already "
        "busy (the 1-minute load average), at least 1; the batched ops are small, so a busy machine runs fastest on one.",
    ),
]

INTERRUPTED = 130  # the shell's code for an exit on SIGINT


def available_threads() -> tuple[int, int, float]:
    """``(threads, allowed CPUs, load)``: the CPUs of ``os.sched_getaffinity`` not busy by the 1-minute load average."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(allowed, int(allowed - load + 0.5))), allowed, load


def _set_threads(threads: int | None) -> int:
    import torch

    if threads is None:
        threads, allowed, load = available_threads()
        console.print(f"torch threads: {threads} ({allowed} CPUs allowed, load {load:.1f}; --threads to choose)", soft_wrap=True)
    torch.set_num_threads(threads)
    return threads


@contextmanager
def _stop_on_first_interrupt() -> Iterator[list[bool]]:
    """The first Ctrl-C sets a flag (training stops at the day's end, after a checkpoint); a second one aborts."""
    requested = [False]

    def handler(signum: int, frame: Any) -> None:
        requested[0] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # stderr's own console: the main flow may be in the middle of printing to stdout's
        err_console.print(
            "stopping at the end of this day, after a checkpoint (Ctrl-C again: abort without saving)", soft_wrap=True
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)


def _day_line(s: dict[str, float]) -> str:
    return (
        f"day {int(s['day'])}/{int(s['days'])}  {s['steps_per_second']:,.0f} symbol-periods/s  "
        f"mean reward {s['mean_reward']:+.4f}  loss {s['loss']:.4g}  epsilon {s['epsilon']:.2f}  ({s['seconds']:.1f} s)"
    )


@melo_app.command("train")
def melo_train(
    config: ConfigOption = None,
    set_: SetOption = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder (model.pt, config.yaml, train_history.json, regime_table.json).")
    ] = Path("runs/melo"),
    resume: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--resume", help="Continue the interrupted run in this folder from its checkpoint (its own config)."),
    ] = None,
    threads: ThreadsOption = None,
) -> None:
    """Train the holding-period agent on simulated days and write the run folder OUT.

    A checkpoint is written every `melo.train.checkpoint_every_days` days (1 by default). Ctrl-C stops at the end
    of the current day after writing one (exit code 130); `--resume OUT` continues exactly from it.
    """
    from finrl_lite.config import dump_config, load_config
    from finrl_lite.errors import ConfigError
    from finrl_lite.io import atomic_write_json, atomic_write_text
    from finrl_lite.melo_config import MeloConfig

    with user_errors():
        if resume is not None:
            if config is not None or set_:
                raise ConfigError("--resume takes the run folder's own config; drop --config/--set")
            if not (resume / "config.yaml").is_file():
                raise ConfigError(f"{resume}: not a melo run folder (config.yaml missing)")
            if (resume / "model.pt").is_file() and not (resume / "checkpoint").is_dir():
                raise ConfigError(f"{resume}: training already finished (model.pt); nothing to resume")
            cfg, out = load_config(resume / "config.yaml"), resume
        else:
            cfg = load_config(config, set_ or [])
        if cfg.melo is None:
            cfg.melo = MeloConfig()
        melo = cfg.melo
        _set_threads(threads)
        from finrl_lite.train.melo import TrainingInterrupted, train_melo

        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", dump_config(cfg))
        days, rows = melo.train.days, melo.sim.num_envs * melo.sim.num_symbols
        console.print(
            f"training {melo.agent.learner.replace('_', '-')} on {days} simulated days x {rows} symbol rows -> {out}",
            soft_wrap=True,
        )
        with _stop_on_first_interrupt() as stop, _progress(days) as on_day:
            try:
                result = train_melo(melo, callback=on_day, run_dir=out, resume=resume is not None, should_stop=lambda: stop[0])
            except TrainingInterrupted as exc:
                console.print(f"interrupted after day {exc.days}/{days}; checkpoint in {exc.checkpoint}", soft_wrap=True)
                console.print(f"continue with: finrl-lite melo train --resume {out}", soft_wrap=True)
                raise typer.Exit(code=INTERRUPTED) from None
        agent, history, table = result
        agent.save(out / "model.pt")
        atomic_write_json(out / "train_history.json", history)
        if table is not None:
            atomic_write_json(out / "regime_table.json", table.to_dict())
        import shutil

        shutil.rmtree(out / "checkpoint", ignore_errors=True)

    summary = Table(title=f"M-ELO training ({melo.agent.learner.replace('_', '-')})", show_header=False)
    summary.add_row("days x rows", f"{days} x {rows}")
    summary.add_row("gradient steps", str(agent.gradient_updates))
    if history:
        summary.add_row("mean reward, first day", f"{history[0]['mean_reward']:+.4f}")
        summary.add_row("mean reward, last day", f"{history[-1]['mean_reward']:+.4f}")
        wall, cpu = sum(h["seconds"] for h in history) / 60, sum(h.get("cpu_seconds", 0.0) for h in history) / 60
        summary.add_row("minutes (wall / CPU)", f"{wall:.1f} / {cpu:.1f}")
    console.print(summary)
    if table is not None:
        console.print(
            f"regime table (chosen on the training days; best static there {table.best_static_ms:g} ms):", soft_wrap=True
        )
        console.print(table.markdown())
    console.print(f"wrote {out}", soft_wrap=True)


@contextmanager
def _progress(days: int) -> Iterator[Any]:
    """A day callback: a progress bar on a terminal, else one line per day."""
    if not console.is_terminal:
        yield lambda s: console.print(_day_line(s), highlight=False, soft_wrap=True)
        return
    columns = (
        TextColumn("[bold]day"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[sps]:>9,.0f} symbol-periods/s"),
        TextColumn("reward {task.fields[reward]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("train", total=days, sps=0.0, reward="-")

        def on_day(s: dict[str, float]) -> None:
            progress.update(task, completed=int(s["day"]), sps=s["steps_per_second"], reward=f"{s['mean_reward']:+.4f}")

        yield on_day


def _load_run(run_dir: Path) -> tuple[Any, Any, Any]:
    """(melo config, agent, regime table) of a run folder; the table is fitted on its training days if missing."""
    from finrl_lite.config import load_config
    from finrl_lite.errors import ConfigError
    from finrl_lite.io import atomic_write_json
    from finrl_lite.melo_config import MeloConfig
    from finrl_lite.train.melo import load_melo_agent, regime_table_of
    from finrl_lite.train.melo_table import RegimeTable

    model = run_dir / "model.pt"
    if not model.is_file():
        hint = (
            f"finrl-lite melo train --resume {run_dir}"
            if (run_dir / "checkpoint").is_dir()
            else f"finrl-lite melo train --out {run_dir}"
        )
        raise ConfigError(f"{run_dir}: no model.pt (run `{hint}` first)")
    melo = load_config(run_dir / "config.yaml").melo or MeloConfig()
    agent = load_melo_agent(model, melo)
    table_path = run_dir / "regime_table.json"
    if table_path.is_file():
        try:
            data = json.loads(table_path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{table_path}: not JSON ({exc}); delete it to fit the table again") from None
        table = RegimeTable.from_dict(data, source=str(table_path))
    else:
        console.print(f"{run_dir}: fitting the regime table on its {melo.train.days} training days (once)", soft_wrap=True)
        table = regime_table_of(melo)
        atomic_write_json(table_path, table.to_dict())
    return melo, agent, table


def _fmt_ci(ci: dict[str, float] | None, digits: int = 4) -> str:
    if ci is None:
        return "-"
    return f"{ci['mean']:.{digits}f} ±{(ci['high'] - ci['mean']):.{digits}f}"


def _print_evaluation(result: dict[str, Any], title: str) -> None:
    t = result["targets"]
    table = Table(title=title, caption="± : half-width of the 95% CI over days; gap: markout minus the static frontier's")
    for column in ("policy", "fill rate", "markout (bps)", "gap (bps)"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    names = {"agent": "agent", "regime_table": "regime table", "oracle": "oracle*", "legacy": "legacy 10 ms"}
    rows = [n for n in ("agent", "regime_table", "oracle", "legacy") if n in result["spread"]]
    rows += [n for n in result["spread"] if n.startswith("static")]
    best = {f"static {result['best_static_ms']:g}": ["best eval"]}
    if result.get("best_static_training_ms") is not None:
        best.setdefault(f"static {result['best_static_training_ms']:g}", []).append("best train")
    for name in rows:
        spread = result["spread"][name]
        label = names.get(name, name + " ms")
        if name in best:
            label += f" ({', '.join(best[name])})"
        gap = _fmt_ci(spread.get("frontier_gap_bps"), 5) if "frontier_gap_bps" in spread else ""
        table.add_row(label, _fmt_ci(spread["fill_rate"]), _fmt_ci(spread["markout_bps"]), gap)
    console.print(table)
    days = result["days"]
    dominated = [(d, hs) for d, hs in enumerate(result["frontier"]["statics_dominating_agent"]) if hs]
    if dominated:
        where = "; ".join(f"day {d}: {', '.join(f'{h:g} ms' for h in hs)}" for d, hs in dominated)
        console.print(f"a static holding period dominates the agent on {len(dominated)} of {days} days ({where})", soft_wrap=True)
    else:
        console.print(f"no static holding period dominates the agent on any of the {days} days", soft_wrap=True)
    for which, label in (("evaluation_days", "evaluation"), ("training_days", "training")):
        v = t.get(f"vs_best_static_{which}")
        if v is not None:
            verdict = (
                "dominates it" if v["pareto_dominates"] else "is dominated by it" if v["dominated_by"] else "neither dominates"
            )
            console.print(
                f"best static on the {label} days ({v['holding_ms']:g} ms): the agent has fill rate {v['fill_rate']:+.4f}, "
                f"markout {v['markout_bps']:+.5f} bps; it {verdict}",
                soft_wrap=True,
            )
    console.print(
        f"static frontier: the agent is at least {t['frontier_gap_bps']:g} bps of markout below it on "
        f"{t['days_beating_frontier']} of {days} days (target {t['days_needed']})",
        soft_wrap=True,
    )
    if "not_worse_than_regime_table" in t:
        table_gap, agent_gap = t["regime_table_gap_bps"], t["agent_gap_mean_bps"]
        if agent_gap is None:
            verdict = "the agent's fill rate is outside the statics' range on every day"
        else:
            worse = "not worse beyond its CI" if t["not_worse_than_regime_table"] else "worse beyond its CI"
            verdict = f"the agent's {agent_gap:+.5f} is {worse}"
        console.print(f"regime table: gap {_fmt_ci(table_gap, 5)} bps; {verdict}", soft_wrap=True)
    console.print(
        f"vs legacy {result['legacy_10ms']['holding_ms']:g} ms: fill rate {100 * t['fill_rate_gain_vs_legacy']:+.1f}%, "
        f"markout cost {-100 * t['markout_cost_reduction_vs_legacy']:+.1f}% "
        f"(target {100 * t['fill_rate_gain_target']:+.0f}% / {-100 * t['markout_cost_reduction_target']:+.0f}%)",
        soft_wrap=True,
    )
    share = result.get("share_of_oracle_gain", {})
    causal = ", ".join(f"{names[k]} {100 * v:.0f}%" for k, v in share.items())
    oracle = f"* {result['notes']['oracle']}" + (f" (share of its gain over the best static: {causal})" if causal else "")
    console.print(oracle, soft_wrap=True)
    console.print(f"targets met: {t['met']}", soft_wrap=True)


@melo_app.command("evaluate")
def melo_evaluate(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Run folders written by `finrl-lite melo train` (one per training seed).")
    ],
    days: Annotated[Optional[int], typer.Option("--days", min=1, help="Simulated evaluation days.")] = None,  # noqa: UP045
    seed: Annotated[Optional[int], typer.Option("--seed", min=0, help="Evaluation seed (never a training day).")] = None,  # noqa: UP045
    summary_path: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--summary", help="Also write the summary over the runs (mean and 95% CI over training seeds) here."),
    ] = None,
    threads: ThreadsOption = None,
) -> None:
    """Evaluate trained agents against every static holding period, the regime table, the oracle and the legacy 10 ms.

    Writes RUN_DIR/melo_eval.json and RUN_DIR/melo_pareto.png for every run; with several runs, prints the mean and
    95% CI over them (one run per training seed).
    """
    from finrl_lite.io import atomic_write_json

    with user_errors():
        _set_threads(threads)
        from finrl_lite.train.melo import evaluate_melo, plot_pareto, summarize_evaluations

        results = []
        for run_dir in run_dirs:
            melo, agent, table = _load_run(run_dir)
            with console.status(f"evaluating {run_dir} on fresh simulated days"):
                result = evaluate_melo(agent, melo, days=days, seed=seed, table=table)
            atomic_write_json(run_dir / "melo_eval.json", result)
            png = plot_pareto(result, run_dir / "melo_pareto.png")
            title = (
                f"{run_dir}: {result['days']} days, evaluation seed {result['seed']}, training seed {melo.train.seed} "
                f"({result['symbol_periods']:,} symbol-periods)"
            )
            _print_evaluation(result, title)
            console.print(f"wrote {run_dir / 'melo_eval.json'} and {png}", soft_wrap=True)
            results.append(result)
        if len(results) > 1 or summary_path is not None:
            summary = summarize_evaluations(results, [str(r) for r in run_dirs])
            over = Table(title=f"over {len(results)} training runs: mean ±95% CI of their means over days")
            for column in ("policy", "fill rate", "markout (bps)", "gap (bps)"):
                over.add_column(column, justify="left" if column == "policy" else "right")
            for name in ("agent", "regime_table", "oracle", "legacy"):
                if name in summary["over_training_seeds"]:
                    s = summary["over_training_seeds"][name]
                    over.add_row(name, _fmt_ci(s["fill_rate"]), _fmt_ci(s["markout_bps"]), _fmt_ci(s.get("frontier_gap_bps"), 5))
            console.print(over)
            console.print(f"targets met for every run: {summary['met_for_every_run']}", soft_wrap=True)
            if summary_path is not None:
                atomic_write_json(summary_path, summary)
                console.print(f"wrote {summary_path}", soft_wrap=True)
