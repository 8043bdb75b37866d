"""Env-steps per second of StockTradingVecEnv against a FinRL-style pandas StockTradingEnv, in the same run.

Random actions, 29 tickers, 8 indicator fields (random numbers with FinRL's indicator names: this measures
the environment, not the indicators), the real S&P 500 daily file from ../shared/data when present (a
synthetic panel of the same shape otherwise).

The peer (``--peer finrl``, the default) is FinRL 0.3.7's own ``StockTradingEnv``, loaded from the
``finrl`` wheel fetched with ``pip download --no-deps`` (see ``finrl_peer.py``). Offline, ``--peer
reimpl`` uses a faithful re-implementation of its step hot path below: per step it does what FinRL
does — ``df.loc[day, :]``, state rebuilt from pandas columns as Python lists, ``np.argsort``,
per-ticker sell/buy loops on a list, and the memory lists (assets, rewards, actions, dates, states).

Modes: ``fused`` (the default on a CPU: the whole step in one compiled kernel), ``eager`` (the torch core,
one batched op after another), ``compile`` (``torch.compile`` of the torch core), ``cuda_graph`` (CUDA).
The env's defaults are measured unless a flag says otherwise: float64 accounting, float32 observations,
the terminal observation copied into ``info["final_obs"]`` every step.

Usage::

    python benchmarks/bench_env.py                         # CPU, fused and eager, num_envs 1..16384
    python benchmarks/bench_env.py --num-envs 1,64,4096 --steps 200
    python benchmarks/bench_env.py --device cuda --modes eager,cuda_graph,compile --num-envs 1024,65536
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sp500_5yr_daily.csv.gz"
INDICATORS = ("macd", "boll_ub", "boll_lb", "rsi_30", "cci_30", "dx_30", "close_30_sma", "close_60_sma")


# ---------------------------------------------------------------------------------------------- data
def load_panel(num_tickers: int, seed: int) -> tuple[MarketData, str]:
    """``num_tickers`` full-history tickers of the S&P 500 file (or synthetic), 8 random indicator fields."""
    rng = np.random.default_rng(seed)
    if DATA.is_file():
        df = pd.read_csv(DATA, usecols=["date", "tic", "open", "high", "low", "close", "volume"])
        counts = df.groupby("tic")["close"].count()
        full = sorted(counts[counts == counts.max()].index)[:num_tickers]
        df = df[df["tic"].isin(full)]
        wide = {f: df.pivot(index="date", columns="tic", values=f)[full] for f in ("open", "high", "low", "close", "volume")}
        wide = {f: w.ffill().to_numpy(np.float64) for f, w in wide.items()}
        dates = pd.to_datetime(df["date"].unique()).sort_values().to_numpy("datetime64[ns]")
        tickers, source = tuple(full), f"{DATA.name} ({len(full)} tickers)"
    else:
        t = 1259
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, size=(t, num_tickers)), axis=0))
        wide = {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": np.full_like(close, 1e6)}
        dates = np.busday_offset("2013-02-08", np.arange(t), roll="forward").astype("datetime64[ns]")
        tickers, source = tuple(f"S{i:02d}" for i in range(num_tickers)), "synthetic"
    t, n = wide["close"].shape
    feats = rng.normal(0, 1, size=(t, n, len(INDICATORS)))
    values = np.concatenate([np.stack([wide[f] for f in ("open", "high", "low", "close", "volume")], -1), feats], -1)
    turbulence = rng.gamma(2.0, 30.0, size=t)
    market = MarketData(
        dates=dates,
        tickers=tickers,
        fields=("open", "high", "low", "close", "volume", *INDICATORS),
        values=values,
        valid=np.ones((t, n), dtype=bool),
        market_fields=("turbulence",),
        market_values=turbulence[:, None],
        source=source,
    )
    return market, source


def finrl_frame(market: MarketData) -> pd.DataFrame:
    """FinRL's processed long frame (date, OHLCV, tic, day, indicators, vix, turbulence), index = day number."""
    frame = market.to_frame().drop(columns=["valid"])
    frame["day"] = frame["date"].dt.day_of_week
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    frame["vix"] = 20.0
    frame = frame[["date", "open", "high", "low", "close", "volume", "tic", "day", *INDICATORS, "vix", "turbulence"]]
    frame.index = frame["date"].factorize()[0]
    return frame


# --------------------------------------------------------------------------------------- FinRL peer
class FinrlStyleStockTradingEnv:
    """FinRL 0.3.7 ``StockTradingEnv`` step/reset hot path, statement for statement (no plotting)."""

    def __init__(
        self,
        df: pd.DataFrame,
        stock_dim: int,
        hmax: int,
        initial_amount: float,
        cost: float,
        reward_scaling: float,
        tech: tuple[str, ...],
        turbulence_threshold: float | None,
    ) -> None:
        self.df, self.stock_dim, self.hmax = df, stock_dim, hmax
        self.initial_amount, self.reward_scaling, self.tech = initial_amount, reward_scaling, list(tech)
        self.buy_cost_pct = [cost] * stock_dim
        self.sell_cost_pct = [cost] * stock_dim
        self.turbulence_threshold = turbulence_threshold
        self.num_days = len(self.df.index.unique())
        self.reset()

    def _state_from(self, cash: float, shares: list[float]) -> list[float]:
        return (
            [cash] + self.data.close.values.tolist() + list(shares) + sum((self.data[t].values.tolist() for t in self.tech), [])
        )

    def reset(self) -> list[float]:
        self.day = 0
        self.data = self.df.loc[self.day, :]
        self.state = self._state_from(self.initial_amount, [0] * self.stock_dim)
        self.asset_memory = [self.initial_amount]
        self.turbulence, self.cost, self.trades = 0, 0, 0
        self.rewards_memory, self.actions_memory, self.state_memory = [], [], []
        self.date_memory = [self.data.date.unique()[0]]
        return self.state

    def _sell(self, index: int, action: int) -> int:
        n_dim = self.stock_dim
        if self.turbulence_threshold is not None and self.turbulence >= self.turbulence_threshold:
            if self.state[index + 1] > 0 and self.state[index + n_dim + 1] > 0:
                n = self.state[index + n_dim + 1]
                self.state[0] += self.state[index + 1] * n * (1 - self.sell_cost_pct[index])
                self.state[index + n_dim + 1] = 0
                self.cost += self.state[index + 1] * n * self.sell_cost_pct[index]
                self.trades += 1
                return n
            return 0
        if self.state[index + 2 * n_dim + 1] != True and self.state[index + n_dim + 1] > 0:  # noqa: E712 (FinRL)
            n = min(abs(action), self.state[index + n_dim + 1])
            self.state[0] += self.state[index + 1] * n * (1 - self.sell_cost_pct[index])
            self.state[index + n_dim + 1] -= n
            self.cost += self.state[index + 1] * n * self.sell_cost_pct[index]
            self.trades += 1
            return n
        return 0

    def _buy(self, index: int, action: int) -> int:
        n_dim = self.stock_dim
        if self.turbulence_threshold is not None and self.turbulence >= self.turbulence_threshold:
            return 0
        if self.state[index + 2 * n_dim + 1] != True:  # noqa: E712 (FinRL)
            available = self.state[0] // (self.state[index + 1] * (1 + self.buy_cost_pct[index]))
            n = min(available, action)
            self.state[0] -= self.state[index + 1] * n * (1 + self.buy_cost_pct[index])
            self.state[index + n_dim + 1] += n
            self.cost += self.state[index + 1] * n * self.buy_cost_pct[index]
            self.trades += 1
            return n
        return 0

    def step(self, actions: np.ndarray) -> tuple[list[float], float, bool, bool, dict]:
        n_dim = self.stock_dim
        if self.day >= self.num_days - 1:
            return self.state, 0.0, True, False, {}
        actions = (actions * self.hmax).astype(int)
        if self.turbulence_threshold is not None and self.turbulence >= self.turbulence_threshold:
            actions = np.array([-self.hmax] * n_dim)
        begin = self.state[0] + sum(np.array(self.state[1 : n_dim + 1]) * np.array(self.state[n_dim + 1 : 2 * n_dim + 1]))
        order = np.argsort(actions)
        sell_index = order[: np.where(actions < 0)[0].shape[0]]
        buy_index = order[::-1][: np.where(actions > 0)[0].shape[0]]
        for i in sell_index:
            actions[i] = self._sell(i, actions[i]) * (-1)
        for i in buy_index:
            actions[i] = self._buy(i, actions[i])
        self.actions_memory.append(actions)
        self.day += 1
        self.data = self.df.loc[self.day, :]
        if self.turbulence_threshold is not None:
            self.turbulence = self.data["turbulence"].values[0]
        self.state = self._state_from(self.state[0], self.state[n_dim + 1 : 2 * n_dim + 1])
        end = self.state[0] + sum(np.array(self.state[1 : n_dim + 1]) * np.array(self.state[n_dim + 1 : 2 * n_dim + 1]))
        self.asset_memory.append(end)
        self.date_memory.append(self.data.date.unique()[0])
        reward = (end - begin) * self.reward_scaling
        self.rewards_memory.append(reward)
        self.state_memory.append(self.state)
        return self.state, reward, False, False, {}


def bench_finrl(market: MarketData, steps: int, threshold: float, seed: int, peer: str = "finrl") -> float:
    if peer == "finrl":
        from finrl_peer import make_finrl_env, quiet

        env = make_finrl_env(market, list(INDICATORS), turbulence_threshold=threshold)
    else:
        env = FinrlStyleStockTradingEnv(finrl_frame(market), market.num_tickers, 100, 1e6, 0.001, 1e-4, INDICATORS, threshold)
        quiet = contextlib.nullcontext  # noqa: N806
    env.reset()
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, size=(steps, market.num_tickers))
    with quiet():
        start = time.perf_counter()
        for k in range(steps):
            _, _, terminal, _, _ = env.step(actions[k])
            if terminal:
                env.reset()
        return steps / (time.perf_counter() - start)


# ------------------------------------------------------------------------------------------ ours
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_ours(
    market: MarketData,
    params: StockTradingParams,
    num_envs: int,
    steps: int,
    device: torch.device,
    mode: str,
    seed: int,
    final_obs: bool,
) -> tuple[float, float]:
    """``(env-steps per second, peak bytes per environment)``."""
    if mode == "compile":
        torch._dynamo.reset()  # each configuration compiles afresh (dynamo's recompile limit is per function)
    env = StockTradingVecEnv(market, params, num_envs=num_envs, device=device, seed=seed, step_mode=mode, final_obs=final_obs)
    gen = torch.Generator(device=device).manual_seed(seed)
    env.reset()
    actions = torch.rand(8, num_envs, market.num_tickers, generator=gen, device=device, dtype=params.dtype) * 2 - 1
    warmup = 3 if mode == "eager" else 10
    for k in range(warmup):
        env.step(actions[k % 8])
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    start = time.perf_counter()
    for k in range(steps):
        env.step(actions[k % 8])
    _sync(device)
    elapsed = time.perf_counter() - start
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - base) / num_envs
        state_bytes = sum(x.nbytes for x in env.state) / num_envs if env.state is not None else 0.0
        peak += state_bytes
    else:
        peak = sum(x.nbytes for x in env.state) / num_envs if env.state is not None else 0.0
    return num_envs * steps / elapsed, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--modes", default="fused,eager", help="comma list of fused, eager, compile, cuda_graph")
    parser.add_argument("--num-envs", default="1,16,256,1024,4096,16384", help="comma list")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per configuration")
    parser.add_argument("--finrl-steps", type=int, default=600, help="timed steps of the FinRL-style peer")
    parser.add_argument("--tickers", type=int, default=29)
    parser.add_argument("--execution", default="close", choices=["close", "next_open"])
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--obs-dtype", default="float32", choices=["float32", "float64"], help="observation dtype")
    parser.add_argument("--no-final-obs", action="store_true", help="skip the terminal-observation gather")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch intra-op CPU threads, which the fused kernel uses too (0, the default, keeps torch's default: "
        "one per core; the eager torch core is often faster with 1, its ops being small)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--peer", default="finrl", choices=["finrl", "reimpl"], help="FinRL's own env, or the offline re-implementation"
    )
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available on this machine", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    market, source = load_panel(args.tickers, args.seed)
    threshold = float(np.quantile(market.market("turbulence"), 0.95))
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    obs_dtype = torch.float32 if args.obs_dtype == "float32" else torch.float64
    params = StockTradingParams(
        execution=args.execution,
        turbulence_threshold=threshold,
        dtype=dtype,
        obs_dtype=obs_dtype,  # type: ignore[arg-type]
    )

    print(f"data: {source}, {market.num_dates} days x {market.num_tickers} tickers x {len(INDICATORS)} indicators")
    print(
        f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, dtype {args.dtype}, "
        f"execution {args.execution}, obs dtype {args.obs_dtype}, final_obs {not args.no_final_obs}"
    )
    finrl_sps = bench_finrl(market, args.finrl_steps, threshold, args.seed, args.peer)
    peer_name = (
        "FinRL 0.3.7 StockTradingEnv" if args.peer == "finrl" else "FinRL-style pandas StockTradingEnv (re-implementation)"
    )
    print(f"{peer_name}: {finrl_sps:,.0f} steps/s\n")
    print(f"{'mode':<11}{'num_envs':>9}{'env-steps/s':>16}{'x FinRL':>12}{'bytes/env':>12}")
    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    largest = max(int(x) for x in args.num_envs.split(","))
    for mode in args.modes.split(","):
        for num_envs in [int(x) for x in args.num_envs.split(",")]:
            try:
                sps, per_env = bench_ours(market, params, num_envs, args.steps, device, mode, args.seed, not args.no_final_obs)
            except Exception as exc:  # a benchmark prints the failure of one configuration and goes on
                print(f"{mode:<11}{num_envs:>9}  failed: {type(exc).__name__}: {exc}")
                continue
            print(f"{mode:<11}{num_envs:>9}{sps:>16,.0f}{sps / finrl_sps:>12,.0f}{per_env:>12,.0f}")
            gc.collect()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"\npeak process RSS {rss / 1024:,.0f} MiB; growth over the baseline {(rss - rss_base) / 1024:,.0f} MiB "
        f"= {(rss - rss_base) * 1024 / largest:,.0f} bytes per env at {largest} envs (all temporaries of a step)"
    )
    print("bytes/env column: CPU = state tensors; CUDA = peak allocated during the timed steps / env + state")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
