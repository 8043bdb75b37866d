"""The training benchmark runs end to end on tiny budgets and prints both ratios (nothing about speed is asserted).

The peer env comes from the installed ``finrl`` package (CI installs it; the benchmark itself downloads the wheel).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_bench_train_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("stable_baselines3")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import finrl_peer

    version, spec = finrl_peer.FINRL_VERSION, importlib.util.find_spec("finrl")
    if spec is None or not spec.submodule_search_locations or importlib.metadata.version("finrl") != version:
        pytest.skip(f"FinRL {version} is not installed (pip install --no-deps finrl=={version})")
    env_file = Path(next(iter(spec.submodule_search_locations))) / "meta" / "env_stock_trading" / "env_stocktrading.py"
    monkeypatch.setattr(finrl_peer, "load_finrl_env_module", lambda: _load("finrl_env_stocktrading", env_file))
    bench = _load("bench_train", BENCHMARKS / "bench_train.py")
    assert bench.main(["--quick", "--num-envs", "2", "--iterations", "1", "--tutorial-steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "FinRL tutorial settings" in out and "same settings (2 envs, 4 epochs x 16)" in out
    assert "ratio vs SB3 FinRL tutorial" in out and "vs SB3 same settings" in out
    assert " 0 env-steps/s" not in out  # the steps counted are the steps learned (whole rollouts), not the steps asked
