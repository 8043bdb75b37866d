"""`import finrl_lite` is light, and the gymnasium ids work after it whatever the import order (fresh interpreters)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ["numpy", "torch", "pandas", "gymnasium", "stable_baselines3", "ray", "yfinance", "scipy", "numba"]


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_import_finrl_lite_loads_no_heavy_package() -> None:
    code = f"import sys, finrl_lite\nprint([m for m in {HEAVY!r} if m in sys.modules])"
    assert _run(code) == "[]"


def test_make_vec_after_import_finrl_lite_as_the_readme_says() -> None:
    code = (
        "import sys\n"
        "import finrl_lite\n"
        "import gymnasium\n"
        "assert 'torch' not in sys.modules, 'registering imported torch'\n"
        "envs = gymnasium.make_vec('finrl_lite/StockTrading-v0', num_envs=3, vectorization_mode='vector_entry_point')\n"
        "obs, info = envs.reset(seed=0)\n"
        "obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())\n"
        "print(obs.shape[0], reward.shape, type(envs).__name__)\n"
        "import inspect\n"
        "assert 'register' in inspect.getsource(gymnasium)  # gymnasium's loader still answers for its source\n"
    )
    assert _run(code) == "3 (3,) GymVectorEnv"


def test_gymnasium_imported_first_then_finrl_lite() -> None:
    code = (
        "import gymnasium, finrl_lite\n"
        "ids = [i for i in gymnasium.registry if i.startswith('finrl_lite/')]\n"
        "env = gymnasium.make('finrl_lite/PortfolioAllocation-v0')\n"
        "print(sorted(ids), type(env.unwrapped).__name__)\n"
    )
    out = _run(code)
    assert "finrl_lite/Melo-v0" in out and "finrl_lite/StockTrading-v0" in out and out.endswith("GymEnv")


def test_the_ids_match_the_environment_modules() -> None:
    from finrl_lite.envs import MELO_ID, PORTFOLIO_ID, STOCK_TRADING_ID
    from finrl_lite.gym_envs import GYM_ENVS
    from finrl_lite.registry import resolve

    assert set(GYM_ENVS) == {STOCK_TRADING_ID, PORTFOLIO_ID, MELO_ID}
    for entry, vector_entry in GYM_ENVS.values():
        assert callable(resolve(entry)) and callable(resolve(vector_entry))
