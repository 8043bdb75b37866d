"""FinRL's own `StockTradingEnv` as a peer for benchmarks (never imported by the package; the benchmark smoke tests load it).

The `finrl` wheel is downloaded once with ``pip download finrl==0.3.7 --no-deps`` into a cache folder
and its environment module is loaded straight from the wheel's files: it needs only gymnasium, numpy,
pandas, matplotlib and stable-baselines3, which finrl_lite already depends on.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from finrl_lite.data_processors import MarketData

CACHE = Path.home() / ".cache" / "finrl_lite" / "bench"

# SB3 makes a log folder in the temporary directory for every model it builds: keep the peers' in one, removed at exit
if "SB3_LOGDIR" not in os.environ:
    os.environ["SB3_LOGDIR"] = tempfile.mkdtemp(prefix="finrl_lite_bench_sb3_")
    atexit.register(shutil.rmtree, os.environ["SB3_LOGDIR"], ignore_errors=True)
FINRL_VERSION = "0.3.7"


def load_finrl_env_module() -> ModuleType:
    """``finrl.meta.env_stock_trading.env_stocktrading`` from the FinRL wheel (downloaded if needed)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = sorted(CACHE.glob(f"[Ff]in[Rr][Ll]-{FINRL_VERSION}-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"finrl=={FINRL_VERSION}", "--no-deps", "-q", "-d", str(CACHE)],
            check=True,
        )
        wheels = sorted(CACHE.glob(f"[Ff]in[Rr][Ll]-{FINRL_VERSION}-*.whl"))
    source = CACHE / "env_stocktrading.py"
    if not source.exists():
        with zipfile.ZipFile(wheels[0]) as wheel:
            source.write_bytes(wheel.read("finrl/meta/env_stock_trading/env_stocktrading.py"))
    spec = importlib.util.spec_from_file_location("finrl_env_stocktrading", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def finrl_frame(market: MarketData, indicators: list[str]) -> pd.DataFrame:
    """The long frame FinRL's env reads: one row per (day, tic), indexed by the day number."""
    frame = market.to_frame()
    frame = frame[
        ["date", "tic", "open", "high", "low", "close", "volume", *indicators, *(["turbulence"] if "turbulence" in frame else [])]
    ]
    frame = frame.sort_values(["date", "tic"]).reset_index(drop=True)
    frame.index = frame["date"].factorize()[0]
    return frame.fillna(0.0)


def make_finrl_env(  # noqa: ANN201
    market: MarketData,
    indicators: list[str],
    hmax: int = 100,
    initial_amount: float = 1e6,
    turbulence_threshold: float | None = None,
    frame: pd.DataFrame | None = None,
):
    """FinRL 0.3.7 ``StockTradingEnv`` with its tutorial parameters on ``market`` (``frame``: ``finrl_frame(market,
    indicators)`` made once, for many environments to share instead of a copy each)."""
    module = load_finrl_env_module()
    n = market.num_tickers
    return module.StockTradingEnv(
        df=finrl_frame(market, indicators) if frame is None else frame,
        stock_dim=n,
        hmax=hmax,
        initial_amount=initial_amount,
        num_stock_shares=[0] * n,
        buy_cost_pct=[0.001] * n,
        sell_cost_pct=[0.001] * n,
        reward_scaling=1e-4,
        state_space=1 + 2 * n + len(indicators) * n,
        action_space=n,
        tech_indicator_list=indicators,
        turbulence_threshold=turbulence_threshold,
        print_verbosity=10**9,
    )


@contextlib.contextmanager
def quiet() -> object:
    """FinRL prints at episode ends; keep the benchmark output readable."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def dow_like_market(num_tickers: int = 29, seed: int = 0) -> MarketData:
    """29 tickers x ~5 years with FinRL's 8 indicators: the S&P 500 file when present, else synthetic."""
    from finrl_lite.config import load_config
    from finrl_lite.data_processors import prepare_data

    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sp500_5yr_daily.csv.gz"
    if shared.is_file():
        raw = pd.read_csv(shared, usecols=["tic", "close"])
        counts = raw.dropna().groupby("tic").size()
        tickers = sorted(counts[counts == counts.max()].index)[:: max(1, len(counts) // 60)][:num_tickers]
        overrides = [
            "data.source=csv",
            f"data.path={shared}",
            "data.start=2013-02-08",
            "data.end=2018-02-07",
            f"data.tickers={tickers}",
        ]
    else:
        overrides = [
            f"data.synthetic.num_tickers={num_tickers}",
            f"data.synthetic.seed={seed}",
            "data.start=2013-02-08",
            "data.end=2018-02-07",
        ]
    cfg = load_config(None, [*overrides, "data.vix=false"])
    market = prepare_data(cfg).market
    assert np.all(np.isfinite(market.field("close")[market.warmup :]))
    return market
