"""Population-based training (`finrl-lite pbt`): trials, exploits, the leaderboard, bad input, and a real 2-node run.

The Ray-free tests drive :func:`run_trial` directly. The Ray tests share one module-scoped 2-node cluster
(``ray.cluster_utils.Cluster``: a head and a worker node with one CPU each) and one population run on it, which is
interrupted (SIGINT, as Ctrl+C) after a few reports and resumed with ``resume=True``; everything Ray writes stays
under pytest's temporary directories.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from finrl_lite.agents.backends import BACKENDS
from finrl_lite.agents.factory import load_agent
from finrl_lite.cli import app
from finrl_lite.config import AppConfig, load_config
from finrl_lite.data_processors.processor import prepare_data
from finrl_lite.errors import ConfigError, MissingDependencyError
from finrl_lite.train.environment import make_env
from finrl_lite.train.leaderboard import leaderboard_frame, merge_exploit_log, read_exploits, read_history
from finrl_lite.train.pipeline import restore_env
from finrl_lite.train.population import (
    TrialSetup,
    _check_trial,
    backtest_population,
    run_population,
    run_trial,
)
from finrl_lite.train.run_lock import RunLock

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()

TINY = [
    "data.synthetic.num_tickers=3",
    "data.start=2016-01-04",
    "data.end=2018-12-31",
    "data.indicators=[macd, rsi_30]",
    "data.turbulence=false",
    "data.vix=false",
    "data.cache.enabled=false",
    "data.splits={train: {start: 2016-01-04, end: 2017-12-31}, validation: {start: 2018-01-01, end: 2018-06-30}, "
    "test: {start: 2018-07-01, end: 2018-12-31}}",
    "env.num_envs=8",
    "env.episode_length=64",
    "agent.params={num_steps: 16, num_minibatches: 2, update_epochs: 2, hidden_sizes: [16, 16]}",
    "train.total_timesteps=768",
    "train.baselines=[buy_and_hold]",
    "population.perturbation_interval=256",
    "population.num_samples=4",
    "population.quantile_fraction=0.5",
    "population.top_k=2",
    "population.mutations={learning_rate: {low: 1.0e-4, high: 3.0e-3, log: true}, gamma: {low: 0.9, high: 0.99}, "
    "num_steps: {low: 8, high: 32}}",
]


def tiny_config(*overrides: str) -> AppConfig:
    return load_config(REPO / "configs/pbt.yaml", [*TINY, *overrides])


@pytest.fixture(scope="module")
def setup() -> TrialSetup:
    cfg = tiny_config()
    return TrialSetup(cfg, prepare_data(cfg, use_cache=False).market)


@pytest.fixture
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _Enough(Exception):
    """Raised by a recorder to end a trial after the reports a test needs."""


def _recorder(into: list[tuple[dict[str, Any], Path]], folder: Path, stop_after: int | None = None) -> Any:
    def report(metrics: dict[str, Any], directory: Path) -> None:
        kept = folder / f"checkpoint_{len(into)}"
        shutil.copytree(directory, kept)
        into.append((metrics, kept))
        if len(into) == stop_after:
            raise _Enough

    return report


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_agent(checkpoint).policy.state_dict()


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------------- trials


def test_trial_reports_validation_metrics_every_interval_with_checkpoints(setup: TrialSetup, tmp_path: Path) -> None:
    reports: list[tuple[dict[str, Any], Path]] = []
    run_trial(setup, {"seed": 0, "learning_rate": 1e-3, "gamma": 0.95, "num_steps": 16}, None, _recorder(reports, tmp_path), "a")
    steps = [m["env_steps"] for m, _ in reports]
    assert steps == [256, 512, 768]  # 8 envs x 16 steps = 128 per iteration: a report every second iteration
    first = reports[0][0]
    assert {f"validation_{m}" for m in ("sharpe", "cumulative_return", "max_drawdown")} <= set(first)
    assert first["hp_learning_rate"] == 1e-3 and first["hp_num_steps"] == 16 and first["parent_trial"] == ""
    assert first["started_from"] == "new" and [m["started_from"] for m, _ in reports[1:]] == ["", ""]
    assert math.isfinite(first["validation_sharpe"])
    origin = json.loads((reports[-1][1] / "trial.json").read_text())
    assert origin["trial_id"] == "a" and origin["env_steps"] == 768
    assert (reports[-1][1] / "env.pt").is_file() and load_agent(reports[-1][1]).num_timesteps == 768


def test_an_exploited_trial_continues_from_the_donors_weights_with_its_own_hyperparameters(
    setup: TrialSetup, tmp_path: Path, one_thread: None
) -> None:
    donor: list[tuple[dict[str, Any], Path]] = []
    run_trial(
        setup, {"seed": 0, "learning_rate": 1e-3, "gamma": 0.95, "num_steps": 16}, None, _recorder(donor, tmp_path / "d"), "donor"
    )
    donor_metrics, donor_checkpoint = donor[0]
    mine = {"seed": 7, "learning_rate": 3e-3, "gamma": 0.9, "num_steps": 16}
    target: list[tuple[dict[str, Any], Path]] = []
    run_trial(setup, mine, donor_checkpoint, _recorder(target, tmp_path / "t"), "target")

    assert target[0][0]["parent_trial"] == "donor" and target[0][0]["parent_env_steps"] == donor_metrics["env_steps"]
    assert [m["parent_trial"] for m, _ in target[1:]] == [""]  # only the first report after the exploit names it
    assert [m["env_steps"] for m, _ in target] == [512, 768]  # the donor's step count went on, not a fresh 0
    restored = load_agent(target[0][1])
    assert restored.config.learning_rate == 3e-3 and restored.config.gamma == 0.9

    # Independently: the donor's checkpoint, loaded with its env snapshot, trained with the target's values.
    env = make_env(setup.config.env, setup.market.slice("train"), seed=123)
    restore_env(env, donor_checkpoint)
    agent = load_agent(donor_checkpoint, env=env)
    agent.set_hyperparameters({"learning_rate": 3e-3, "gamma": 0.9, "num_steps": 16})
    agent.learn(768 - 256, callback=lambda p: p.steps < 512)
    assert agent.num_timesteps == 512
    assert _same(agent.policy.state_dict(), _weights(target[0][1]))
    # ... and not what the donor itself learned from there with its own values, nor a fresh start.
    assert not _same(_weights(donor[1][1]), _weights(target[0][1]))
    fresh: list[tuple[dict[str, Any], Path]] = []
    run_trial(setup, mine, None, _recorder(fresh, tmp_path / "f"), "fresh")
    assert not _same(_weights(fresh[1][1]), _weights(target[0][1]))


def test_a_trial_restarted_from_its_own_checkpoint_names_no_parent(setup: TrialSetup, tmp_path: Path) -> None:
    first: list[tuple[dict[str, Any], Path]] = []
    config = {"seed": 1, "learning_rate": 1e-3, "gamma": 0.95, "num_steps": 16}
    run_trial(setup, config, None, _recorder(first, tmp_path / "a"), "a")
    again: list[tuple[dict[str, Any], Path]] = []
    run_trial(setup, config, first[1][1], _recorder(again, tmp_path / "b"), "a")
    assert [(m["env_steps"], m["parent_trial"], m["started_from"]) for m, _ in again] == [(768, "", first[1][0]["checkpoint_id"])]


def test_an_sb3_agent_trains_in_a_population(setup: TrialSetup, tmp_path: Path) -> None:
    cfg = tiny_config(
        "agent.backend=sb3",
        "agent.params={n_steps: 16, batch_size: 64}",
        "population.mutations={learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}, clip_range: {low: 0.1, high: 0.3}}",
    )
    sb3 = TrialSetup(cfg, setup.market)
    donor: list[tuple[dict[str, Any], Path]] = []
    run_trial(sb3, {"seed": 0, "learning_rate": 1e-3, "clip_range": 0.2}, None, _recorder(donor, tmp_path / "d"), "donor")
    assert [m["env_steps"] for m, _ in donor] == [256, 512, 768]
    target: list[tuple[dict[str, Any], Path]] = []
    run_trial(sb3, {"seed": 1, "learning_rate": 5e-3, "clip_range": 0.1}, donor[0][1], _recorder(target, tmp_path / "t"), "t")
    assert target[0][0]["parent_trial"] == "donor" and [m["env_steps"] for m, _ in target] == [512, 768]
    restored = load_agent(target[0][1])
    assert restored.model.lr_schedule(1.0) == 5e-3 and restored.params["clip_range"] == 0.1


def test_integer_hyperparameters_are_rounded_and_ranges_enforced(setup: TrialSetup, tmp_path: Path) -> None:
    reports: list[tuple[dict[str, Any], Path]] = []
    run_trial(
        setup, {"seed": 0, "learning_rate": 1e-3, "gamma": 0.95, "num_steps": 15.6}, None, _recorder(reports, tmp_path), "a"
    )
    assert reports[0][0]["hp_num_steps"] == 16 and load_agent(reports[0][1]).config.num_steps == 16
    with pytest.raises(ConfigError, match=r"gamma=1\.2 is outside its valid range \(0, 1\]"):
        run_trial(setup, {"seed": 0, "learning_rate": 1e-3, "gamma": 1.2, "num_steps": 16}, None, _recorder([], tmp_path), "b")


def test_schedulers_rank_the_validation_metric() -> None:
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.schedulers.pb2 import PB2

    from finrl_lite.train.population_tune import make_scheduler

    tunable = BACKENDS.get("native").tunable("ppo")
    pbt = make_scheduler(tiny_config().population, tunable)  # type: ignore[arg-type]
    assert type(pbt) is PopulationBasedTraining and pbt.metric == "validation_sharpe"
    population = tiny_config("population.scheduler=pb2", "population.metric=turnover").population
    assert population is not None and population.ranking_mode() == "min"  # less turnover is better
    pb2 = make_scheduler(population, tunable)
    assert isinstance(pb2, PB2) and pb2.metric == "validation_turnover"


def test_pb2_without_scikit_learn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from finrl_lite.train.population_tune import make_scheduler

    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if it were not installed
    with pytest.raises(MissingDependencyError, match=r"population.scheduler: pb2 .* pip install 'finrl-lite\[population\]'"):
        make_scheduler(tiny_config("population.scheduler=pb2").population, BACKENDS.get("native").tunable("ppo"))  # type: ignore[arg-type]


def test_pbt_perturbations_are_clipped_into_the_configured_ranges() -> None:
    from finrl_lite.train.population_tune import ClipToRanges

    clip = ClipToRanges({"gamma": (0.9, 0.99), "num_steps": (8, 32)}, frozenset({"num_steps"}))
    assert clip({"gamma": 0.99 * 1.2, "num_steps": 32 * 1.2, "seed": 3}) == {"gamma": 0.99, "num_steps": 32, "seed": 3}
    assert clip({"gamma": 0.95, "num_steps": 12.6, "seed": 3}) == {"gamma": 0.95, "num_steps": 13, "seed": 3}


# ---------------------------------------------------------------------------------------------------- leaderboard


def test_exploits_are_read_from_rays_pbt_global_log_kept_across_a_resume(tmp_path: Path) -> None:
    # The format PopulationBasedTraining._log_config_on_step writes in Ray 2.60 (one JSON list per exploit).
    lines = [
        ["1_learning_rate=0.001", "0_learning_rate=0.002", 3, 4, {"learning_rate": 0.002}, {"learning_rate": 0.0024}],
        [
            "3_learning_rate=0.001@perturbed[learning_rate=0.0024]",
            "2_learning_rate=0.0005",
            6,
            5,
            {"learning_rate": 5e-4},
            {"learning_rate": 4e-4},
        ],
    ]
    (tmp_path / "before").mkdir()
    (tmp_path / "before" / "pbt_global.txt").write_text(json.dumps(lines[0]) + "\n")
    (tmp_path / "after").mkdir()  # a resumed experiment's log starts afresh
    (tmp_path / "after" / "pbt_global.txt").write_text(json.dumps(lines[1]) + "\n")
    kept = tmp_path / "run" / "pbt_global.txt"
    kept.parent.mkdir()
    for experiment in ("before", "after", "after"):
        merge_exploit_log(str(tmp_path / experiment), kept)
    table = read_exploits(kept, ["ab12_00000", "ab12_00001", "ab12_00002", "ab12_00003"], ["learning_rate"])
    assert table is not None
    assert table[["target_trial", "donor_trial", "target_report", "donor_report"]].values.tolist() == [
        ["ab12_00001", "ab12_00000", 3, 4],
        ["ab12_00003", "ab12_00002", 6, 5],
    ]
    assert table["learning_rate_new"].tolist() == [0.0024, 4e-4]
    assert read_exploits(tmp_path / "none.txt", [], ["learning_rate"]) is None


def test_leaderboard_lists_reports_best_trial_first_with_parents() -> None:
    population = tiny_config().population
    assert population is not None
    history = pd.DataFrame(
        [
            {"trial_id": "t0", "training_iteration": 1, "env_steps": 256, "validation_sharpe": 0.1, "hp_learning_rate": 1e-3},
            {"trial_id": "t1", "training_iteration": 1, "env_steps": 256, "validation_sharpe": 0.5, "hp_learning_rate": 2e-3},
            {
                "trial_id": "t0",
                "training_iteration": 2,
                "env_steps": 512,
                "validation_sharpe": 0.6,
                "hp_learning_rate": 2.4e-3,
                "parent_trial": "t1",
                "parent_env_steps": 256,
            },
        ]
    )
    board = leaderboard_frame(history, population, ["t0", "t1"])
    assert board[["rank", "trial_id", "report"]].values.tolist() == [[1, "t0", 1], [1, "t0", 2], [2, "t1", 1]]
    assert board["parent_trial"].tolist() == ["", "t1", ""]
    assert board["learning_rate"].tolist() == [1e-3, 2.4e-3, 2e-3]


def test_leaderboard_drops_reports_an_interruption_lost() -> None:
    population = tiny_config().population
    assert population is not None
    rows = [("a", 256, "c1", "new", ""), ("b", 256, "c2", "new", ""), ("a", 512, "c3", "", ""), ("a", 768, "c4", "", "")]
    rows += [("a", 512, "c5", "c1", ""), ("a", 768, "c6", "", "")]  # a restarted from c1: c3 and c4 were lost
    rows += [("c", 256, "c7", "new", ""), ("c", 256, "c8", "new", "")]  # c's first checkpoint was lost: restarted new
    rows += [("b", 512, "c9", "", ""), ("b", 768, "c10", "c5", "a")]  # b exploited a's c5: b's history stays
    history = pd.DataFrame(
        [
            {"trial_id": t, "env_steps": n, "checkpoint_id": c, "started_from": f, "parent_trial": p, "validation_sharpe": 0.0}
            for t, n, c, f, p in rows
        ]
    )
    board = leaderboard_frame(history, population, ["a", "b", "c"])
    assert board[["trial_id", "checkpoint_id"]].values.tolist() == [
        ["a", "c1"], ["a", "c5"], ["a", "c6"], ["b", "c2"], ["b", "c9"], ["b", "c10"], ["c", "c8"]
    ]  # fmt: skip
    assert list(board.columns[:5]) == ["rank", "trial_id", "report", "env_steps", "validation_sharpe"]


# ---------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "population.mutations={lr: {low: 0.001, high: 0.01}}",
            "population.mutations.lr: not a hyper-parameter agent native ppo",
        ),
        (
            "population.mutations={gamma: {low: 0.9, high: 1.5}}",
            r"population.mutations.gamma: 1.5 outside the valid range \(0, 1\]",
        ),
        (
            "population.mutations={num_steps: {values: [0, 16]}}",
            "population.mutations.num_steps: 0 outside the valid range integers >= 1",
        ),
        ("population.mutations={gamma: {low: 0.99, high: 0.9}}", "low must be below high"),
        ("population.num_samples=1", "a population needs at least 2 trials"),
        ("population.metric=sharpe_ratio", "unknown metric 'sharpe_ratio'; expected one of cumulative_return"),
        ("population.top_k=9", "top_k 9 exceeds the population's num_samples 4"),
        ("population.ensemble=vote", "vote needs discrete-action agents"),
        ("population.resources_per_trial.gpu=0.25", "resources_per_trial.gpu is 0.25 but env.device is cpu"),
    ],
)
def test_bad_population_config_fails_when_loaded(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(override)


def test_pb2_needs_ranges_and_refuses_lists() -> None:
    with pytest.raises(ConfigError, match=r"pb2 searches within ranges: give mutations \['num_steps'\] low/high"):
        tiny_config("population.scheduler=pb2", "population.mutations={num_steps: {values: [16, 32]}}")
    assert tiny_config("population.scheduler=pb2").population.scheduler == "pb2"  # type: ignore[union-attr]


def test_a_backend_that_cannot_be_mutated_is_refused_up_front() -> None:
    with pytest.raises(ConfigError, match="agent rllib ppo can change during training; allowed: none"):
        tiny_config("agent.backend=rllib", "agent.params={}")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_is_refused_before_anything_runs(tmp_path: Path) -> None:
    import ray

    port = _closed_port()
    with pytest.raises(ConfigError, match=rf"--address '127.0.0.1:{port}': no Ray cluster answers at 127.0.0.1:{port}"):
        run_population(tiny_config(), tmp_path / "run", address=f"127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="expected auto or host:port"):
        run_population(tiny_config(), tmp_path / "run", address="head-without-port")
    with pytest.raises(ConfigError, match="Ray Client runs Ray Tune's driver on the cluster"):
        run_population(tiny_config(), tmp_path / "run", address="ray://head:10001")
    assert not ray.is_initialized() and not (tmp_path / "run").exists()


def test_a_directory_that_is_not_a_population_run_is_neither_resumed_nor_overwritten(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("train: {total_timesteps: 10}\n")  # a training run's directory
    result = runner.invoke(app, ["pbt", "--out", str(tmp_path), "--resume"])
    assert result.exit_code == 2
    assert "not a population run (population.json missing)" in result.output
    result = runner.invoke(app, ["pbt", "--config", str(REPO / "configs/quickstart.yaml"), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "no population: section" in result.output
    with pytest.raises(ConfigError, match="not a population run"):
        backtest_population(tmp_path)
    with pytest.raises(ConfigError, match="holds another run"):
        run_population(tiny_config(), tmp_path)
    assert (tmp_path / "config.yaml").read_text() == "train: {total_timesteps: 10}\n"  # left as it was


def test_a_directory_another_process_holds_is_refused_before_writing(tmp_path: Path) -> None:
    import ray

    run = tmp_path / "run"
    with RunLock(run), pytest.raises(ConfigError, match=rf"run is in use by process {os.getpid()}"):
        run_population(tiny_config(), run)
    assert list(run.iterdir()) == [] and not ray.is_initialized()  # nothing written, no Ray started


def test_cli_reports_an_unreachable_address(tmp_path: Path) -> None:
    port = _closed_port()
    args = ["pbt", "--config", str(REPO / "configs/pbt.yaml"), "--out", str(tmp_path / "run"), "--address", f"127.0.0.1:{port}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and f"no Ray cluster answers at 127.0.0.1:{port}" in result.output


# ---------------------------------------------------------------------------------------------------- on Ray


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real 2-node Ray cluster on this machine: a head and a worker node, one CPU each."""
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as patch:  # Ray's session folders: the test session's sandbox (tests/conftest.py)
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        nodes.add_node(num_cpus=1)
        try:
            yield nodes
        finally:
            nodes.shutdown()


@pytest.fixture(scope="module")
def population_run(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`finrl-lite pbt --address` with a population of 2 on the 2-node cluster (8 reports each), interrupted by SIGINT
    (as Ctrl+C) after 4 reports, then `finrl-lite pbt --out RUN --resume` to the end."""
    import finrl_lite.cli.population as cli

    out = tmp_path_factory.mktemp("pbt") / "run"
    overrides = [
        *TINY,
        f"population.storage_path={out.parent / 'ray_results'}",
        "population.num_samples=2",  # one trial per node: they run side by side, and every report is ranked
        "env.num_envs=64",
        "population.perturbation_interval=8192",
        "train.total_timesteps=65536",  # 8 reports per trial, long enough for the two trials' reports to interleave
    ]
    args = ["pbt", "--config", str(REPO / "configs/pbt.yaml"), "--out", str(out), "--address", cluster.address]
    for override in overrides:
        args += ["--set", override]
    drawn: list[Any] = []
    draw = cli._progress_table

    def draw_then_interrupt(progress: Any, run_dir: Path) -> Any:
        drawn.append(progress)
        if len(drawn) == 5:  # the first draw is before any report
            signal.raise_signal(signal.SIGINT)  # what Ctrl+C sends; Ray Tune stops and saves the experiment
        return draw(progress, run_dir)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "_progress_table", draw_then_interrupt)
        stopped = runner.invoke(app, args)
    assert stopped.exit_code == 2 and "--resume" in stopped.output, stopped.output
    assert not (out / "leaderboard.csv").exists()
    resumed = runner.invoke(app, ["pbt", "--out", str(out), "--resume", "--address", cluster.address])
    assert resumed.exit_code == 0, resumed.output
    assert "top_1" in resumed.output and "ensemble" in resumed.output and "run directory" in resumed.output
    return out


@pytest.mark.slow
def test_population_runs_on_both_nodes_and_finishes_with_a_leaderboard(cluster: Any, population_run: Path) -> None:
    board = pd.read_csv(population_run / "leaderboard.csv", keep_default_na=False)
    assert board["trial_id"].nunique() == 2
    worker_nodes = {node.node_id for node in cluster.list_all_nodes()}
    assert set(board["node_id"]) == worker_nodes and len(worker_nodes) == 2
    finals = board.groupby("trial_id")["env_steps"].max()
    assert (finals >= 65536).all()
    assert board["rank"].iloc[0] == 1 and set(board["rank"]) == {1, 2}
    state = json.loads((population_run / "population.json").read_text())
    assert state["state"] == "done" and [t["rank"] for t in state["top"]] == [1, 2]
    assert (population_run / "population.png").stat().st_size > 0
    for name in ("top_1", "top_2"):
        assert load_agent(population_run / name / "model").num_timesteps >= 65536
    metrics = json.loads((population_run / "metrics.json").read_text())
    assert set(metrics) == {"validation", "test"}
    assert {"top_1", "top_2", "ensemble", "buy_and_hold"} <= set(metrics["test"])
    assert metrics["validation"]["top_1"]["sharpe"]["mean"] == pytest.approx(state["top"][0]["sharpe"])
    assert (population_run / "report_test.png").is_file() and (population_run / "equity_test.csv").is_file()


@pytest.mark.slow
def test_every_exploit_restored_the_donors_checkpoint(population_run: Path, setup: TrialSetup, one_thread: None) -> None:
    board = pd.read_csv(population_run / "leaderboard.csv", keep_default_na=False)
    exploits = pd.read_csv(population_run / "exploits.csv")
    children = board[board["parent_trial"] != ""]
    assert len(children) >= 1
    logged = set(zip(exploits["target_trial"], exploits["donor_trial"], strict=True))
    assert set(zip(children["trial_id"], children["parent_trial"], strict=True)) <= logged
    # Ray's checkpoints of the run, by the id each report names; an exploit's report names its donor's checkpoint.
    experiment = Path(json.loads((population_run / "population.json").read_text())["experiment"])
    checkpoints = {json.loads(p.read_text())["checkpoint_id"]: p.parent for p in experiment.glob("*/checkpoint_*/trial.json")}
    history = read_history(population_run / "history.jsonl")
    same_run = TrialSetup(load_config(population_run / "config.yaml"), setup.market)
    exploited = history[history["parent_trial"] != ""]
    assert len(exploited) == len(children)
    verified = 0
    for row in exploited.itertuples():
        # Ray numbers a trial's checkpoints by its iteration, which an exploit rewinds to the donor's: a report
        # followed by another exploit before the trial's next report leaves its checkpoint overwritten.
        if row.checkpoint_id not in checkpoints:
            continue
        donor, mine = checkpoints[row.parent_checkpoint], checkpoints[row.checkpoint_id]
        assert json.loads((donor / "trial.json").read_text())["trial_id"] == row.parent_trial
        hyper = {name: getattr(row, f"hp_{name}") for name in ("learning_rate", "gamma", "num_steps")}
        again: list[tuple[dict[str, Any], Path]] = []
        with pytest.raises(_Enough):
            record = _recorder(again, population_run.parent / f"again_{row.Index}", stop_after=1)
            run_trial(same_run, {"seed": 0, **hyper}, donor, record, row.trial_id)
        assert again[0][0]["env_steps"] == row.env_steps and again[0][0]["parent_checkpoint"] == row.parent_checkpoint
        assert _same(_weights(again[0][1]), _weights(mine))  # Ray's trial learned from the donor's weights
        verified += 1
    assert verified >= 1


@pytest.mark.slow
def test_resources_no_node_can_hold_are_refused_up_front(cluster: Any, tmp_path: Path) -> None:
    import ray

    for resources, what in (("{cpu: 2, gpu: 0}", "2 CPU and 0 GPU"), ("{cpu: 1, gpu: 1}", "1 CPU and 1 GPU")):
        device = "env.device=cuda" if "gpu: 1" in resources else "env.device=cpu"
        cfg = tiny_config(f"population.resources_per_trial={resources}", device, "population.wait_for_resources_s=0")
        with pytest.raises(ConfigError, match=rf"asks for {what} per trial, which no node of the Ray cluster has"):
            run_population(cfg, tmp_path / what.replace(" ", "_"), address=cluster.address, use_cache=False)
    assert not ray.is_initialized()


@pytest.mark.slow
def test_backtest_and_resume_of_a_finished_population(population_run: Path) -> None:
    result = runner.invoke(app, ["backtest", str(population_run), "--split", "test"])
    assert result.exit_code == 0, result.output
    assert "top_1" in result.output and "ensemble" in result.output
    saved = json.loads((population_run / "backtest_test.json").read_text())
    metrics = json.loads((population_run / "metrics.json").read_text())
    assert saved["test"]["top_1"]["sharpe"]["mean"] == pytest.approx(metrics["test"]["top_1"]["sharpe"]["mean"])
    with pytest.raises(ConfigError, match="already holds a population run; add --resume"):
        run_population(tiny_config(), population_run)
    changed = load_config(population_run / "config.yaml", ["population.top_k=1"])
    with pytest.raises(ConfigError, match="--resume continues the population with its stored config"):
        run_population(changed, population_run, resume=True)
    info = json.loads((population_run / "run.json").read_text())
    (population_run / "run.json").write_text(json.dumps({**info, "data_fingerprint": "0" * 64}))
    try:  # other data: refused as for a training run, or back-tested with a warning when allowed
        result = runner.invoke(app, ["backtest", str(population_run), "--split", "test"])
        assert result.exit_code == 2 and "data fingerprint changed" in " ".join(result.output.split())
        result = runner.invoke(app, ["backtest", str(population_run), "--split", "test", "--allow-data-change"])
        assert result.exit_code == 0, result.output
    finally:
        (population_run / "run.json").write_text(json.dumps(info))


def test_the_sp500_variant_finds_its_data_and_builds_a_trial(sp500_path: Path, tmp_path: Path) -> None:
    """configs/pbt_sp500.yaml (the README's honest results) points at ../shared/data from its own folder, prepares
    its 29 Dow names and builds a trial with both ends of every mutation."""
    cfg = load_config(REPO / "configs" / "pbt_sp500.yaml", [f"data.cache.dir={tmp_path / 'cache'}"])
    assert Path(cfg.data.path).resolve() == sp500_path.resolve()
    market = prepare_data(cfg).market
    assert market.num_tickers == 29
    _check_trial(cfg, market)
