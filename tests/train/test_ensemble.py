"""The rolling-window ensemble: window plans, FinRL's adaptive turbulence rule, chaining one account across
windows, picks by validation Sharpe, sequential and Ray runs giving the same numbers, back-tests and bad input."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from finrl_lite.agents.ensemble import EnsembleAgent
from finrl_lite.agents.factory import load_agent
from finrl_lite.cli import app
from finrl_lite.config import AppConfig, load_config
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.data_processors.processor import prepare_data
from finrl_lite.data_processors.splits import Splits
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.errors import ConfigError, MissingDependencyError
from finrl_lite.train.backtest import run_agent, run_agent_schedule
from finrl_lite.train.ensemble import (
    Window,
    _parallel_mode,
    ensemble_run,
    is_ensemble_run,
    local_ray,
    plan_windows,
)
from finrl_lite.train.environment import env_params
from finrl_lite.train.metrics import compute_metrics
from finrl_lite.train.run_lock import RunLock

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

PPO = "{num_steps: 16, num_minibatches: 2, update_epochs: 2}"
TINY = [
    "data.start=2016-01-04",
    "data.end=2017-04-28",
    "data.indicators=[macd]",
    "data.turbulence_window=20",
    "data.vix=false",
    "data.synthetic.num_tickers=3",
    "data.splits={train: {start: 2016-01-04, end: 2016-12-31}, test: {start: 2017-01-01, end: 2017-04-28}}",
    "env.num_envs=4",
    "env.episode_length=30",
    "train.total_timesteps=128",
    "train.baselines=[buy_and_hold, min_variance]",
    "ensemble.rebalance_window=30",
    "ensemble.validation_window=20",
    f"ensemble.candidates=[{{algo: ppo, params: {PPO}, seeds: [0, 1]}}]",
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _cfg(cache_dir: Path, *extra: str) -> AppConfig:
    return load_config(REPO / "configs" / "ensemble.yaml", [*TINY, f"data.cache.dir={cache_dir}", *extra])


@pytest.fixture(scope="module")
def tiny_market(cache_dir: Path) -> MarketData:
    return prepare_data(_cfg(cache_dir)).market


# ---------------------------------------------------------------------- window plans on a hand-made panel


def _panel(num_dates: int = 100, warmup: int = 10, test_from: int = 60, risk: np.ndarray | None = None) -> MarketData:
    dates = np.arange("2020-01-01", num_dates, dtype="datetime64[D]").astype("datetime64[ns]")
    close = np.linspace(10.0, 20.0, num_dates)[:, None]
    values = np.stack([close, close, close, close, np.ones_like(close)], axis=-1)
    risk = np.where(np.arange(num_dates) >= warmup, np.arange(num_dates, dtype=float), 0.0) if risk is None else risk
    day = pd.Timestamp(dates[test_from])
    splits = Splits({"train": (pd.Timestamp(dates[0]), day - pd.Timedelta(days=1)), "test": (day, pd.Timestamp(dates[-1]))})
    return MarketData(
        dates, ("A",), ("open", "high", "low", "close", "volume"), values, np.ones((num_dates, 1), bool),
        ("turbulence",), risk[:, None], warmup=warmup, splits=splits,
    )  # fmt: skip


def _plan_cfg(*extra: str) -> AppConfig:
    return load_config(
        None,
        [
            "env.episode_length=5",
            "ensemble.rebalance_window=15",
            "ensemble.validation_window=10",
            "ensemble.candidates=[{algo: ppo}]",
            *extra,
        ],
    )


def test_windows_tile_the_split_by_hand() -> None:
    windows = plan_windows(_panel(), _plan_cfg("ensemble.turbulence.mode=none"))
    assert [(w.train, w.validation, w.trade) for w in windows] == [
        ((0, 50), (50, 60), (60, 75)),
        ((0, 65), (65, 75), (75, 90)),
        ((0, 80), (80, 90), (90, 99)),  # the last window ends on the split's last bar
    ]
    assert [w.turbulence_threshold for w in windows] == [None, None, None]  # env.turbulence_threshold as configured
    sliding = plan_windows(_panel(), _plan_cfg("ensemble.turbulence.mode=none", "ensemble.train_window=30"))
    assert [w.train for w in sliding] == [(20, 50), (35, 65), (50, 80)]


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rebalance=st.integers(1, 60),
    validation=st.integers(2, 60),
    train_window=st.one_of(st.none(), st.integers(2, 80)),
    warmup=st.integers(0, 30),
    test_from=st.integers(20, 95),
)
def test_windows_never_overlap_and_cover_the_split(
    rebalance: int, validation: int, train_window: int | None, warmup: int, test_from: int
) -> None:
    market = _panel(warmup=warmup, test_from=test_from)
    extra = [f"ensemble.rebalance_window={rebalance}", f"ensemble.validation_window={validation}"]
    extra += [f"ensemble.train_window={train_window}"] if train_window is not None else []
    try:
        windows = plan_windows(market, _plan_cfg(*extra, "ensemble.turbulence.mode=none"))
    except ConfigError as exc:
        assert "does not fit" in str(exc)
        return
    first = max(test_from, warmup)
    assert windows[0].trade[0] == first and windows[-1].trade[1] == market.num_dates - 1
    for k, w in enumerate(windows):
        assert w.index == k
        assert w.train[1] == w.validation[0] and w.validation[1] == w.trade[0]  # train < validation < trade, in order
        assert w.validation[1] - w.validation[0] == validation
        assert w.validation[0] - max(w.train[0], warmup) >= max(5, train_window or 0)
        assert 0 < w.trade[1] - w.trade[0] <= rebalance
        if k + 1 < len(windows):
            assert w.trade[1] == windows[k + 1].trade[0] and w.trade[1] - w.trade[0] == rebalance


def test_adaptive_threshold_by_hand() -> None:
    # Turbulence t on bar t after the warm-up (0 before): in-sample of window 0 is 10..50 (v_0 = 50).
    market = _panel()
    turbulent = plan_windows(market, _plan_cfg("ensemble.turbulence.lookback=5"))[0]
    in_sample = np.arange(10.0, 51.0)
    high = np.quantile(in_sample, 0.9)  # 46: the last 5 bars (46..50) average 48 > 46: turbulent
    assert turbulent.turbulence_threshold == pytest.approx(high, abs=0)
    calm = plan_windows(market, _plan_cfg("ensemble.turbulence.lookback=40"))[0]  # mean of 11..50 = 30.5: calm
    assert calm.turbulence_threshold == 50.0  # calm_quantile 1.0: the in-sample maximum
    fixed = plan_windows(market, _plan_cfg("ensemble.turbulence.mode=fixed", "ensemble.turbulence.quantile=0.5"))
    assert [w.turbulence_threshold for w in fixed] == [np.quantile(np.arange(10.0, v + 1), 0.5) for v in (50, 65, 80)]


def test_zeros_are_not_in_sample_turbulence() -> None:
    risk = np.zeros(100)
    risk[40:] = 7.0
    window = plan_windows(_panel(risk=risk), _plan_cfg("ensemble.turbulence.mode=fixed", "ensemble.turbulence.quantile=0.1"))[0]
    assert window.turbulence_threshold == 7.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["ensemble.rebalance_window=50"], r"rebalance_window=50 does not fit: split 'test' has 39 trading bars"),
        (["ensemble.validation_window=55"], r"validation_window=55 does not fit: split 'test' starts 50 bars after"),
        (["env.episode_length=45"], r"first window does not fit: 40 training bars .* at least 45 needed"),
        (["ensemble.train_window=45"], r"first window does not fit: 40 training bars .* train_window=45 needed"),
        (["ensemble.split=holdout"], r"ensemble.split 'holdout' is not a data split \(splits: \['test', 'train'\]\)"),
        (["env.kind=portfolio"], r"mode 'adaptive' needs env.kind 'stock_trading'"),
        (["env.risk_series=vix"], r"reads the 'vix' series \(env.risk_series\), which the data lacks"),
    ],
)
def test_windows_that_do_not_fit_are_refused(extra: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_windows(_panel(), _plan_cfg(*extra))


def test_no_in_sample_turbulence_is_refused() -> None:
    with pytest.raises(ConfigError, match="window 0: no in-sample turbulence"):
        plan_windows(_panel(risk=np.zeros(100)), _plan_cfg())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["ensemble.validation_window=1"], r"ensemble.validation_window: Input should be greater than or equal to 2"),
        (["ensemble.metric=omega"], r"ensemble.metric: Input should be 'sharpe', 'sortino'"),
        (["ensemble.candidates=[]"], r"ensemble.candidates: List should have at least 1 item"),
        (["ensemble.candidates=[{algo: ppo}, {algo: ppo}]"], r"unique names \(name the candidates\); repeated: ppo_s0"),
        (["ensemble.policy=vote"], r"policy 'vote' needs DQN-family candidates .* not: native ppo"),
        (["ensemble.candidates=[{algo: sac}]"], r"ensemble.candidates.0.algo: not available on backend 'native'"),
        (["ensemble.candidates=[{algo: ppo, name: a/b}]"], r"ensemble.candidates.0.name: String should match pattern"),
        (["ensemble.turbulence.calm_quantile=0.5"], r"calm_quantile 0.5 must be >= quantile 0.9"),
        (["ensemble.parallel=dask"], r"ensemble.parallel: Input should be 'auto', 'ray' or 'none'"),
    ],
)
def test_bad_ensemble_config_names_the_field(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(REPO / "configs" / "ensemble.yaml", overrides)


def test_a_config_without_an_ensemble_section_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no 'ensemble' section"):
        plan_windows(_panel(), load_config(None))
    result = runner.invoke(app, ["ensemble", "--config", str(REPO / "configs" / "quickstart.yaml"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no 'ensemble' section" in result.output and not (tmp_path / "r").exists()


def test_a_bad_candidate_fails_before_any_training(cache_dir: Path, tmp_path: Path) -> None:
    bad = f"ensemble.candidates=[{{algo: ppo, params: {PPO}}}, {{name: big, algo: ppo, params: {{not_a_param: 1}}}}]"
    with pytest.raises(ConfigError, match=r"ensemble.candidates\[1\] \(big_s0\): .*not_a_param"):
        ensemble_run(_cfg(cache_dir, bad), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written


def test_a_directory_another_process_holds_is_refused_before_writing(cache_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with RunLock(run), pytest.raises(ConfigError, match=rf"run is in use by process {os.getpid()}"):
        ensemble_run(_cfg(cache_dir), run)
    assert list(run.iterdir()) == []  # nothing written, the lock released
    sets = [arg for s in [*TINY, f"data.cache.dir={cache_dir}"] for arg in ("--set", s)]
    with RunLock(run):
        result = runner.invoke(app, ["ensemble", "--config", str(REPO / "configs" / "ensemble.yaml"), "--out", str(run), *sets])
        assert result.exit_code == 2 and "is in use by process" in " ".join(result.output.split())
        assert list(run.iterdir()) == [run / ".lock"]  # the refused command wrote no log into the held run


def test_parallel_auto_falls_back_without_ray(monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> None:
    ens = _cfg(cache_dir).ensemble
    assert _parallel_mode(ens) == "ray"  # ray is installed here
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # `import ray` now raises ImportError
    assert _parallel_mode(ens) == "none"
    assert _parallel_mode(ens.model_copy(update={"parallel": "ray"})) == "ray"
    with pytest.raises(MissingDependencyError, match=r"pip install 'finrl-lite\[rllib\]'"), local_ray(1):
        pass


# ---------------------------------------------------------------------- one account across windows


class Constant:
    """Buys (``+1``) for ``buy_calls`` calls, then holds (``0``); ``buy_calls=None`` always returns ``level``."""

    def __init__(self, level: float, buy_calls: int | None = None) -> None:
        self.level, self.buy_calls, self.calls = level, buy_calls, 0

    def predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        self.calls += 1
        level = self.level if self.buy_calls is None else float(self.calls <= self.buy_calls)
        return torch.full((obs.shape[0], 3), level, dtype=torch.float64)


def _span(market: MarketData) -> MarketData:
    return market.slice("test")


def test_one_segment_is_run_agent(tiny_market: MarketData, cache_dir: Path) -> None:
    cfg = _cfg(cache_dir).env
    span = _span(tiny_market)
    single = run_agent(Constant(0.3), span, cfg)
    scheduled = run_agent_schedule([(0, Constant(0.3), cfg)], span)
    np.testing.assert_array_equal(scheduled.values, single.values)
    split = run_agent_schedule([(0, Constant(0.3), cfg), (7, Constant(0.3), cfg), (30, Constant(0.3), cfg)], span)
    np.testing.assert_array_equal(split.values, single.values)  # handing over to an identical env changes nothing
    np.testing.assert_array_equal(split.costs, single.costs)


def test_holdings_carry_across_a_handover(tiny_market: MarketData, cache_dir: Path) -> None:
    cfg = _cfg(cache_dir).env
    span = _span(tiny_market)
    chained = run_agent_schedule([(0, Constant(1.0), cfg), (10, Constant(0.0), cfg)], span)
    buy_then_hold = run_agent(Constant(0.0, buy_calls=10), span, cfg)  # one agent, one env: no boundary at all
    np.testing.assert_array_equal(chained.values, buy_then_hold.values)
    assert chained.costs[11:].sum() == 0.0  # nothing sold at the boundary or after


def test_a_threshold_handover_applies_from_its_bar(tiny_market: MarketData, cache_dir: Path) -> None:
    cfg = _cfg(cache_dir).env
    liquidate = cfg.model_copy(update={"turbulence_threshold": 0.0})  # every bar is turbulent: sell all, buy nothing
    curve = run_agent_schedule([(0, Constant(1.0), cfg), (10, Constant(1.0), liquidate)], _span(tiny_market))
    assert curve.costs[11] > 0 and curve.costs[12:].sum() == 0.0  # sold on the first turbulent bar, then only cash
    assert np.all(curve.values[11:] == curve.values[11])
    assert not np.all(curve.values[1:11] == curve.values[1])


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([], "at least one segment"),
        ([(0, None, None), (9, None, None), (5, None, None)], r"increasing bars, got \[0, 9, 5\]"),
        ([(3, None, None)], "first segment must start on the episode's first bar 0, got 3"),
        ([(0, None, None), (5, None, "hmax")], "may differ only in env.turbulence_threshold"),
    ],
)
def test_bad_schedules_are_refused(tiny_market: MarketData, cache_dir: Path, segments: list[Any], message: str) -> None:
    cfg = _cfg(cache_dir).env
    resolved = [(b, Constant(0.0), cfg.model_copy(update={"hmax": 7.0}) if c == "hmax" else cfg) for b, _, c in segments]
    with pytest.raises(ConfigError, match=message):
        run_agent_schedule(resolved, _span(tiny_market))


# ---------------------------------------------------------------------- whole runs: CLI (sequential) and Ray


@pytest.fixture(scope="module")
def sequential_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    run = tmp_path_factory.mktemp("seq") / "run"
    sets = [arg for s in [*TINY, f"data.cache.dir={cache_dir}", "ensemble.parallel=none"] for arg in ("--set", s)]
    result = runner.invoke(app, ["ensemble", "--config", str(REPO / "configs" / "ensemble.yaml"), "--out", str(run), *sets])
    assert result.exit_code == 0, result.output
    assert "picks per window" in result.output and "out of sample, 3 windows chained" in result.output
    return run


def _ray_sessions() -> set[str]:
    root = Path(tempfile.gettempdir()) / "ray"
    return {p.name for p in root.glob(f"session_*_{os.getpid()}")} if root.is_dir() else set()


@pytest.fixture(scope="module")
def ray_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[tuple[Path, list[str]]]:
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # a leftover of another module: this run starts its own
        ray.shutdown()
    run = tmp_path_factory.mktemp("ray") / "run"
    made: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args: Any, **kwargs: Any) -> str:
        made.append(real_mkdtemp(*args, **kwargs))
        return made[-1]

    before = _ray_sessions()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tempfile, "mkdtemp", recording_mkdtemp)
        ensemble_run(_cfg(cache_dir, "ensemble.parallel=ray", "ensemble.num_cpus=2"), run)
    assert not ray.is_initialized()
    assert _ray_sessions() == before  # nothing in /tmp/ray from this process
    yield run, made


def test_ray_and_sequential_runs_give_the_same_numbers(sequential_run: Path, ray_run: tuple[Path, list[str]]) -> None:
    ray_dir, _ = ray_run
    seq, par = (json.loads((d / "ensemble.json").read_text()) for d in (sequential_run, ray_dir))
    assert seq == par  # windows, thresholds, every member's validation metrics, picks
    for name in ("equity_test.csv", "picks.csv", "metrics.json"):
        assert (sequential_run / name).read_bytes() == (ray_dir / name).read_bytes(), name


def test_ray_leaves_nothing_behind(ray_run: tuple[Path, list[str]]) -> None:
    _, made = ray_run
    ray_temp = [d for d in made if Path(d).name.startswith("finrl_ray_")]
    assert len(ray_temp) == 1 and not Path(ray_temp[0]).exists()


def test_run_directory_and_picks(sequential_run: Path) -> None:
    assert is_ensemble_run(sequential_run)
    for name in ("config.yaml", "run.json", "ensemble.log", "picks.csv", "metrics.json", "equity_test.csv", "report_test.png"):
        assert (sequential_run / name).is_file(), name
    record = json.loads((sequential_run / "ensemble.json").read_text())
    assert record["members"] == ["ppo_s0", "ppo_s1"] and len(record["windows"]) == 3
    picks = pd.read_csv(sequential_run / "picks.csv")
    assert list(picks["picked"]) == [w["picked"] for w in record["windows"]]
    for w in record["windows"]:
        sharpe = [w["validation_metrics"][m]["sharpe"] for m in record["members"]]
        assert w["picked"] == record["members"][int(np.argmax(sharpe))]  # argmax; ties: the first candidate
        policy = load_agent(sequential_run / "windows" / f"w{w['index']:03d}")
        assert isinstance(policy, EnsembleAgent) and policy.mode == "pick_best"
        assert policy.members[policy.best].name == w["picked"] and policy.members[0].name == w["picked"]
        assert [m.score for m in policy.members] == sorted(sharpe, reverse=True)
    final = load_agent(sequential_run / "model")
    assert [m.name for m in final.members] == [m.name for m in load_agent(sequential_run / "windows" / "w002").members]
    metrics = json.loads((sequential_run / "metrics.json").read_text())
    assert set(metrics["test"]) == {"agent", "buy_and_hold", "min_variance", "index"}
    assert metrics["test"]["agent"]["sharpe"]["n"] == 1


def _windows(run: Path) -> tuple[dict[str, Any], list[Window]]:
    record = json.loads((run / "ensemble.json").read_text())
    windows = [
        Window(w["index"], tuple(w["train"]), tuple(w["validation"]), tuple(w["trade"]), w["turbulence_threshold"])
        for w in record["windows"]
    ]
    return record, windows


def test_validation_sharpe_is_annualised_from_the_interval(sequential_run: Path, tiny_market: MarketData) -> None:
    cfg = load_config(sequential_run / "config.yaml")
    record, windows = _windows(sequential_run)
    for w, entry in zip(windows, record["windows"], strict=True):
        for name in record["members"]:
            member = load_agent(sequential_run / "windows" / f"w{w.index:03d}" / name)
            env_cfg = cfg.env.model_copy(update={"turbulence_threshold": w.turbulence_threshold})
            curve = run_agent(member, tiny_market.bars(w.validation[0], w.validation[1] + 1), env_cfg)
            assert curve.values.size == cfg.ensemble.validation_window + 1
            r = curve.values[1:] / curve.values[:-1] - 1.0
            by_hand = r.mean() / r.std(ddof=1) * math.sqrt(252) if r.std(ddof=1) > 0 else 0.0  # 1d bars of XNYS
            assert entry["validation_metrics"][name]["sharpe"] == pytest.approx(by_hand, rel=1e-12, abs=1e-12)


def _stitch(run: Path, market: MarketData, act: Any) -> np.ndarray:
    """The out-of-sample account by hand: window k's env (its threshold) continues from window k-1's state and
    ``act(window record, obs)`` trades its bars."""
    cfg = load_config(run / "config.yaml")
    record, windows = _windows(run)
    lo = int(market.splits.indices("test", market.dates)[0])
    span = market.bars(lo, market.num_dates)
    values, env, obs = [], None, None
    for w, entry in zip(windows, record["windows"], strict=True):
        params = replace(env_params(cfg.env, evaluation=True), turbulence_threshold=w.turbulence_threshold)
        window_env = StockTradingVecEnv(span, params, num_envs=1, seed=0)
        obs_new, info = window_env.reset(seed=0)
        if env is None:
            assert int(window_env.state.t[0]) == w.trade[0] - lo
            values.append(float(info["portfolio_value"][0]))
            obs = obs_new
        else:  # the account carries over: cash, holdings, locks
            window_env.load_state_dict(env.state_dict())
        env = window_env
        for _ in range(w.trade[0], w.trade[1]):
            obs, _, _, _, info = env.step(torch.as_tensor(act(entry, obs)))
            values.append(float(info["portfolio_value"][0]))
    return np.asarray(values)


def test_chained_curve_is_the_window_trades_stitched_by_hand(sequential_run: Path, tiny_market: MarketData) -> None:
    members = {}

    def picked(entry: dict[str, Any], obs: torch.Tensor) -> torch.Tensor:
        path = sequential_run / "windows" / f"w{entry['index']:03d}" / entry["picked"]
        return members.setdefault(path, load_agent(path)).predict(obs)

    values = _stitch(sequential_run, tiny_market, picked)
    equity = pd.read_csv(sequential_run / "equity_test.csv")
    np.testing.assert_array_equal(equity["agent"].to_numpy(), values)
    metrics = json.loads((sequential_run / "metrics.json").read_text())["test"]["agent"]
    assert metrics["sharpe"]["mean"] == pytest.approx(compute_metrics(values)["sharpe"], rel=1e-12)


def test_mean_policy_trades_the_average_of_the_members(cache_dir: Path, tiny_market: MarketData, tmp_path: Path) -> None:
    run = tmp_path / "mean"
    ensemble_run(_cfg(cache_dir, "ensemble.policy=mean", "ensemble.rebalance_window=45", "ensemble.parallel=none"), run)
    members = {}

    def average(entry: dict[str, Any], obs: torch.Tensor) -> torch.Tensor:
        window = run / "windows" / f"w{entry['index']:03d}"
        agents = [members.setdefault(window / n, load_agent(window / n)) for n in ("ppo_s0", "ppo_s1")]
        return (agents[0].predict(obs).double() + agents[1].predict(obs).double()) / 2

    np.testing.assert_allclose(
        pd.read_csv(run / "equity_test.csv")["agent"].to_numpy(), _stitch(run, tiny_market, average), rtol=1e-12, atol=0
    )
    assert load_agent(run / "model").mode == "mean"


def test_backtest_on_the_span_reproduces_the_chained_curve(sequential_run: Path) -> None:
    result = runner.invoke(app, ["backtest", str(sequential_run), "--split", "test"])
    assert result.exit_code == 0, result.output
    again = pd.read_csv(sequential_run / "backtest_test" / "equity_test.csv")
    np.testing.assert_array_equal(again["agent"], pd.read_csv(sequential_run / "equity_test.csv")["agent"])
    assert json.loads((sequential_run / "backtest_test.json").read_text())["test"]["agent"]["sharpe"]["n"] == 1


def test_backtest_elsewhere_trades_the_last_policy(sequential_run: Path, tiny_market: MarketData) -> None:
    from finrl_lite.train.runs import backtest

    cfg = load_config(sequential_run / "config.yaml")
    _, windows = _windows(sequential_run)
    result = backtest(sequential_run, "train")  # the library entry point of `finrl-lite backtest`
    env_cfg = cfg.env.model_copy(update={"turbulence_threshold": windows[-1].turbulence_threshold})
    expected = run_agent(load_agent(sequential_run / "model"), tiny_market.slice("train"), env_cfg)
    curve = pd.read_csv(sequential_run / "backtest_train" / "equity_train.csv")["agent"].dropna()
    np.testing.assert_array_equal(curve.to_numpy(), expected.values)
    assert set(result["train"]) == {"agent", "buy_and_hold", "min_variance", "index"}


def test_backtest_refuses_other_data(sequential_run: Path, tmp_path: Path) -> None:
    import shutil

    from finrl_lite.errors import DataError
    from finrl_lite.train.ensemble import backtest_ensemble_run

    copy = tmp_path / "copy"
    shutil.copytree(sequential_run, copy)
    info = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps({**info, "data_fingerprint": "0" * 64}))
    with pytest.raises(DataError, match="data fingerprint changed"):
        backtest_ensemble_run(copy, "test")
    with pytest.raises(ConfigError, match="not a finished ensemble run"):
        backtest_ensemble_run(tmp_path, "test")
