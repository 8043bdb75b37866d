"""Run directories are never mixed, half-written or silently restarted: one process at a time (a lock), everything
checked before the directory exists, damaged files named with what to do, a resume that finds the newest complete
checkpoint wherever a crash left it, and a back-test that refuses other data."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from finrl_lite.agents.factory import load_agent
from finrl_lite.cli import app
from finrl_lite.config import load_config
from finrl_lite.data_processors.processor import DataProcessor
from finrl_lite.errors import ConfigError, DataError
from finrl_lite.train.pipeline import _latest_checkpoint, backtest_run, train_run
from finrl_lite.train.run_lock import RunLock

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
CHILD_ENV = {**os.environ, "PYTHONPATH": str(REPO)}
CLI = [sys.executable, "-c", "from finrl_lite.cli import main; main()"]


def _write_bars(path: Path, tickers: int = 3, drop: str | None = None, scale_first: float = 1.0) -> Path:
    dp = DataProcessor("synthetic", num_tickers=tickers, seed=4)
    frame = dp.download([], "2015-01-02", "2016-12-30", "1d")
    if drop is not None:
        frame = frame[frame.tic != drop]
    frame.loc[frame.index[0], ["open", "high", "low", "close"]] *= scale_first
    frame.to_csv(path, index=False)
    return path


def _sets(tmp: Path, bars: Path) -> list[str]:
    return [
        "data.source=csv",
        f"data.path={bars}",
        "data.start=2015-01-02",
        "data.end=2016-12-30",
        "data.indicators=[macd]",
        "data.turbulence=false",
        "data.vix=false",
        "data.splits={train: {start: 2015-01-02, end: 2016-06-30}, test: {start: 2016-07-01, end: 2016-12-30}}",
        f"data.cache.dir={tmp / 'cache'}",
        "env.num_envs=4",
        "env.episode_length=30",
        "agent.params={num_steps: 16, num_minibatches: 2, update_epochs: 2}",
        "train.total_timesteps=256",
        "train.checkpoint_every=64",
        "train.eval_splits=[test]",
        "train.baselines=[buy_and_hold]",
    ]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A finished run on a csv file, an interrupted one (checkpoint at 128 steps), and the checkpoint at 64."""
    tmp = tmp_path_factory.mktemp("runs")
    bars = _write_bars(tmp / "bars.csv")
    cfg = load_config(None, _sets(tmp, bars))
    train_run(cfg, tmp / "finished")
    interrupted, older = tmp / "interrupted", tmp / "checkpoint_64"

    def interrupt(seed: int, progress) -> None:  # noqa: ANN001
        if progress.steps == 64:
            shutil.copytree(interrupted / "seed_0" / "checkpoint", older)
        if progress.steps >= 128:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, interrupted, hook=interrupt)
    return {"tmp": tmp, "bars": bars, "finished": tmp / "finished", "interrupted": interrupted, "older": older}


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_agent(run / "seed_0" / "model").policy.state_dict()  # type: ignore[attr-defined]


def _cfg(base: dict[str, Path], *extra: str):  # noqa: ANN202
    return load_config(None, [*_sets(base["tmp"], base["bars"]), *extra])


# ---------------------------------------------------------------------- 5. one process per run directory


def test_a_second_process_on_the_same_run_directory_fails_fast(base: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    sets = [a for s in [*_sets(base["tmp"], base["bars"]), "train.total_timesteps=100000000"] for a in ("--set", s)]
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen([*CLI, "train", "--out", str(run), *sets], env=CHILD_ENV, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 180
        while not ((run / ".lock").is_file() and (run / ".lock").read_text().strip() == str(first.pid)):
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "the first process never took the lock"
            time.sleep(0.2)
        second = subprocess.run([*CLI, "train", "--out", str(run), *sets], env=CHILD_ENV, capture_output=True, text=True)
        assert second.returncode == 2, second.stderr
        assert f"is in use by process {first.pid}" in second.stdout + second.stderr
        assert "Traceback" not in second.stderr and (run / ".lock").read_text().strip() == str(first.pid)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        log.close()
    assert (run / ".lock").read_text().strip() == str(first.pid)  # left behind by kill -9: stale
    logger = logging.getLogger("finrl_lite.train.run_lock")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        with RunLock(run):
            assert (run / ".lock").read_text().strip() == str(os.getpid())
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == [f"{run}: taking over a stale lock of process {first.pid} (no longer running)"]
    assert not (run / ".lock").exists()  # released on exit


def test_the_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    with RunLock(tmp_path / "run"):
        with (
            pytest.raises(ConfigError, match=rf"run is in use by process {os.getpid()} \(lock file .*\.lock\)"),
            RunLock(tmp_path / "run"),
        ):
            pass
    with RunLock(tmp_path / "run"):  # free again
        pass
    assert list((tmp_path / "run").iterdir()) == []


# ---------------------------------------------------------------------- 9. checked before the directory exists


@pytest.mark.parametrize(
    ("extra", "error", "message"),
    [
        (["agent.params={lr: 0.1}"], ConfigError, r"\['lr'\] are not native PPO hyper-parameters"),
        (["data.path=/nowhere/bars.csv"], DataError, r"/nowhere/bars\.csv: file not found"),
        (["env.device=cuda"], ConfigError, r"device 'cuda': no CUDA GPU is usable here"),
        (["train.eval_splits=[holdout]"], ConfigError, r"data\.splits has no split 'holdout'"),
        (["train.baselines=[magic]"], ConfigError, r"unknown baseline 'magic'"),
    ],
    ids=["agent_params", "missing_file", "no_gpu", "unknown_split", "unknown_baseline"],
)
def test_a_late_error_leaves_no_run_directory(
    base: dict[str, Path], tmp_path: Path, extra: list[str], error: type, message: str
) -> None:
    if "env.device=cuda" in extra and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(error, match=message):
        train_run(_cfg(base, *extra), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_batch_beyond_the_memory_leaves_no_run_directory(
    base: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("finrl_lite.envs.resources.available_memory", lambda device: 1000)
    with pytest.raises(ConfigError, match=r"num_envs=4 needs about .* more than the 1000 B available"):
        train_run(_cfg(base), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_cli_exits_2_and_creates_nothing(base: dict[str, Path], tmp_path: Path) -> None:
    sets = [a for s in [*_sets(base["tmp"], base["bars"]), "agent.params={lr: 0.1}"] for a in ("--set", s)]
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "run"), *sets])
    assert result.exit_code == 2 and "not native PPO hyper-parameters" in result.output
    assert not (tmp_path / "run").exists()


def test_a_run_directory_of_another_config_is_not_overwritten(base: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(base["finished"], tmp_path / "run")
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    with pytest.raises(ConfigError, match=r"already holds a run of another config \(env\.episode_length: 30 -> 40\)"):
        train_run(_cfg(base, "env.episode_length=40"), run)
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


# ---------------------------------------------------------------------- 6. damaged files name themselves


def test_damaged_run_files_are_errors_naming_the_file_and_what_to_do(base: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(base["interrupted"], tmp_path / "progress")
    (run / "seed_0" / "progress.json").write_text('{"steps": 12')
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 2 and "seed_0/progress.json: unreadable" in result.output and "delete it" in result.output

    for name, damage in (("model.pt", b""), ("env.pt", b"\x80\x02garbage"), ("agent.json", b"{")):
        run = _copy(base["interrupted"], tmp_path / name)
        (run / "seed_0" / "checkpoint" / name).write_bytes(damage)
        result = runner.invoke(app, ["train", "--resume", str(run)])
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert f"seed_0/checkpoint/{name}" in text and "delete" in text and "Traceback" not in text, text

    run = _copy(base["finished"], tmp_path / "model")
    (run / "seed_0" / "model" / "model.pt").write_bytes(b"")
    result = runner.invoke(app, ["backtest", str(run)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "seed_0/model/model.pt: cannot load the saved agent" in text and "delete" in text


# ---------------------------------------------------------------------- 10. the hint works


def test_the_missing_model_hint_of_backtest_works(base: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(base["finished"], tmp_path / "run")
    shutil.rmtree(run / "seed_0" / "model")
    result = runner.invoke(app, ["backtest", str(run)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and f"run `finrl-lite train --resume {run}`" in text
    assert runner.invoke(app, ["train", "--resume", str(run)]).exit_code == 0  # what the hint says
    assert runner.invoke(app, ["backtest", str(run)]).exit_code == 0
    for key, value in _weights(base["finished"]).items():  # the seed was trained again from its checkpoint: same model
        torch.testing.assert_close(_weights(run)[key], value, rtol=0, atol=0)


# ---------------------------------------------------------------------- 7. a crash inside the checkpoint swap


@pytest.mark.parametrize("state", ["staging_incomplete", "swapped"])
def test_a_crash_before_or_after_the_renames_keeps_the_checkpoint_in_place(
    base: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, state: str
) -> None:
    run = _copy(base["interrupted"], tmp_path / "run")
    _arrange(run, base["older"], state)
    kept = (run / "seed_0" / "checkpoint" / "model.pt").read_bytes()
    with caplog.at_level(logging.WARNING, logger="finrl_lite"):
        assert _latest_checkpoint(run / "seed_0", 128) == run / "seed_0" / "checkpoint"
    assert caplog.records == []
    assert sorted(p.name for p in (run / "seed_0").iterdir() if p.name.startswith("checkpoint")) == ["checkpoint"]
    assert (run / "seed_0" / "checkpoint" / "model.pt").read_bytes() == kept
    assert json.loads((run / "seed_0" / "checkpoint" / "checkpoint.json").read_text()) == {"steps": 128}


def _arrange(run: Path, older: Path, state: str) -> None:
    """The seed directory as a kill -9 at one point of the swap leaves it (checkpoint/ holds 128 steps, ``older`` 64)."""
    seed = run / "seed_0"
    newest = seed / "checkpoint"
    partial = seed / "partial"
    shutil.copytree(newest, partial)
    (partial / "checkpoint.json").unlink()
    (partial / "model.pt").write_bytes((partial / "model.pt").read_bytes()[:100])
    if state == "staging_incomplete":  # killed while writing checkpoint.new
        partial.rename(seed / "checkpoint.new")
    elif state == "staged":  # checkpoint.new complete, checkpoint/ still the older one
        newest.rename(seed / "checkpoint.new")
        shutil.copytree(older, newest)
    elif state == "moved_aside":  # checkpoint/ renamed to checkpoint.old, checkpoint.new not yet renamed
        newest.rename(seed / "checkpoint.new")
        shutil.copytree(older, seed / "checkpoint.old")
    elif state == "swapped":  # checkpoint.old not yet deleted
        shutil.copytree(older, seed / "checkpoint.old")
    elif state == "old_only":  # only the older checkpoint survived
        shutil.rmtree(newest)
        shutil.copytree(older, seed / "checkpoint.old")
        partial.rename(seed / "checkpoint.new")
    elif state == "none":  # nothing complete
        shutil.rmtree(newest)
        partial.rename(seed / "checkpoint.new")
    shutil.rmtree(partial, ignore_errors=True)


@pytest.mark.parametrize(
    ("state", "resumed_at", "warning"),
    [
        ("staged", 128, "resuming from checkpoint.new at 128 steps (a checkpoint swap was interrupted)"),
        ("moved_aside", 128, "resuming from checkpoint.new at 128 steps (a checkpoint swap was interrupted)"),
        ("old_only", 64, "resuming from checkpoint.old at 64 steps (a checkpoint swap was interrupted)"),
        (
            "none",
            0,
            "no complete checkpoint (progress.json: 128 steps; incomplete: checkpoint.new): this seed starts over from step 0",
        ),
    ],
)
def test_resume_after_a_crash_inside_the_checkpoint_swap(
    base: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, state: str, resumed_at: int, warning: str | None
) -> None:
    run = _copy(base["interrupted"], tmp_path / "run")
    _arrange(run, base["older"], state)
    resumed: list[int] = []

    def first_report(seed: int, progress) -> None:  # noqa: ANN001
        resumed.append(progress.steps)

    with caplog.at_level(logging.INFO, logger="finrl_lite"):
        train_run(_cfg(base), run, hook=first_report)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "checkpoint" in r.getMessage()]
    assert warnings == ([f"{run / 'seed_0'}: {warning}"] if warning else [])
    assert resumed[0] == (resumed_at if resumed_at else 64)  # the first report: the checkpoint's steps, or a first iteration
    assert sorted(p.name for p in (run / "seed_0").iterdir() if p.name.startswith("checkpoint")) == ["checkpoint"]
    for key, value in _weights(base["finished"]).items():  # exact resume from any complete checkpoint
        torch.testing.assert_close(_weights(run)[key], value, rtol=0, atol=0, msg=key)


# ---------------------------------------------------------------------- 8. back-tests on the data of the run


def test_backtest_refuses_changed_data_unless_allowed_and_other_tickers_always(base: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(base["finished"], tmp_path / "run")
    assert runner.invoke(app, ["backtest", str(run)]).exit_code == 0
    _write_bars(base["bars"], scale_first=1.01)  # one price changed (the train split's first bar)
    try:
        result = runner.invoke(app, ["backtest", str(run), "--no-cache"])
        text = " ".join(result.output.split())
        assert result.exit_code == 2 and "the data differ from what the run was trained on (data fingerprint" in text
        assert "--allow-data-change" in text
        allowed = runner.invoke(app, ["backtest", str(run), "--no-cache", "--allow-data-change"])
        assert allowed.exit_code == 0, allowed.output
        tickers = sorted(pd.read_csv(base["bars"])["tic"].unique())
        _write_bars(base["bars"], drop=tickers[1])
        for extra in ([], ["--allow-data-change"]):
            result = runner.invoke(app, ["backtest", str(run), "--no-cache", *extra])
            text = " ".join(result.output.split())
            assert (
                result.exit_code == 2
                and f"tickers differ from the ones the run was trained on (added [], removed ['{tickers[1]}'])" in text
            )
        with pytest.raises(DataError, match="removed"):
            backtest_run(run, use_cache=False, allow_data_change=True)
    finally:
        _write_bars(base["bars"])
    assert json.loads((run / "run.json").read_text())["tickers"] == tickers
