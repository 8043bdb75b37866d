"""Atomic writes: file permissions follow the umask; temporary files of killed writers are cleaned up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from finrl_lite.data_processors.cache import DataCache
from finrl_lite.data_processors.processor import DataProcessor
from finrl_lite.io import atomic_path, atomic_write_text, pid_alive, remove_stale_temp_files

REPO = Path(__file__).resolve().parents[1]
CHILD_ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(child.stdout)


def test_atomic_writes_respect_the_umask(tmp_path: Path) -> None:
    before = os.umask(0o027)
    try:
        # the umask is read once per process; a child process reads this one
        code = "from finrl_lite.io import atomic_write_text; import sys; atomic_write_text(sys.argv[1], 'x')"
        subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.txt")], check=True, env=CHILD_ENV)
    finally:
        os.umask(before)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    atomic_write_text(tmp_path / "b.txt", "x")  # this process's umask (the test runner's)
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o666 & ~before


def test_a_killed_write_leaves_a_temporary_file_that_the_cache_removes(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    code = (
        "import os, signal, sys\n"
        "from finrl_lite.io import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code, str(cache_dir / "abc.parquet")], env=CHILD_ENV)
    assert killed.returncode == -9
    orphans = list(cache_dir.glob(".abc.parquet.*.tmp"))
    assert len(orphans) == 1
    dp = DataProcessor("synthetic", num_tickers=2, seed=0)
    data = dp.to_market_data(dp.clean(dp.download([], "2020-01-01", "2020-02-01", "1d")))
    DataCache(cache_dir).put("k" * 64, data, {})
    assert not orphans[0].exists()
    assert sorted(p.name for p in cache_dir.iterdir()) == sorted([f"{'k' * 32}.parquet", f"{'k' * 32}.json"])


def test_only_temporary_files_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    assert not pid_alive(dead) and pid_alive(alive)
    stale = tmp_path / f".model.pt.{dead}.k2j4h5g6.tmp"
    live = tmp_path / f".model.pt.{alive}.a1b2c3d4.tmp"
    other = tmp_path / ".hidden.tmp"
    for p in (stale, live, other):
        p.write_text("x")
    assert remove_stale_temp_files(tmp_path) == [stale]
    assert live.exists() and other.exists()
    # writing the same file again also removes a dead writer's leftover of it
    stale.write_text("x")
    atomic_write_text(tmp_path / "model.pt", "y")
    assert not stale.exists() and live.exists()


def test_a_failed_write_removes_its_temporary_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "f.txt") as tmp:
        tmp.write_text("partial")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []
