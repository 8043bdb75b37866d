"""The test suite leaves nothing behind: a sub-session that trains SB3 and RLlib agents writes nothing outside pytest's
own temporary folder, in a fresh ``HOME`` and ``TMPDIR`` (the mechanism is in tests/conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUB_SESSION = [
    "tests/agents/test_sb3_agent.py::test_tiny_budget_and_save_load[ppo]",
    "tests/agents/test_rllib_agent.py::test_tiny_budget_and_save_load[ppo]",
]


def _contents(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.iterdir())


@pytest.mark.slow
def test_a_sub_session_leaves_nothing_in_home_or_tmp() -> None:
    pytest.importorskip("ray.rllib")
    root = Path(tempfile.mkdtemp(prefix="fltp"))  # not under tmp_path: Ray's socket paths must stay short
    try:
        home, tmp = root / "h", root / "t"
        home.mkdir()
        tmp.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_TMPDIR", "SB3_LOGDIR", "RAY_USAGE_STATS_ENABLED")}
        env.update(HOME=str(home), TMPDIR=str(tmp), PYTHONPATH=str(REPO))
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUB_SESSION]
        result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "2 passed" in result.stdout
        assert _contents(home) == []  # no ray_results, .ray, .cache...
        # pytest's own folders and torch's compile cache (kept across sessions by design) are all there may be:
        # no ray/, SB3-*, nor the sandbox of tests/conftest.py
        assert [name for name in _contents(tmp) if not name.startswith(("pytest-of-", "torchinductor_"))] == []
    finally:
        shutil.rmtree(root, ignore_errors=True)
