"""The registries of agent backends, env kinds and data sources: every entry is reachable from config
validation and builds, the ``env`` union is discriminated by ``kind`` at load time, and registering one
entry is enough to name a new thing in a config."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest
import torch

from finrl_lite.agents.backends import BACKENDS, AgentBackend
from finrl_lite.agents.factory import load_agent, make_agent, save_agent
from finrl_lite.config import (
    AppConfig,
    DataConfig,
    EnvConfigBase,
    PortfolioEnvConfig,
    StockTradingEnvConfig,
    dump_config,
    load_config,
)
from finrl_lite.data_processors import MarketData, prepare_data
from finrl_lite.data_processors.sources import SOURCES, DataSource, make_source, source_options
from finrl_lite.env_config import ENV_KINDS, EnvKind
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.errors import ConfigError
from finrl_lite.registry import Registry, import_object
from finrl_lite.train.environment import env_params, make_env
from finrl_lite.train.pipeline import train_run

REPO = Path(__file__).resolve().parents[1]

SMALL_PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("native", "ppo"): {"num_steps": 8, "num_minibatches": 2, "update_epochs": 1},
    ("native", "ddqn"): {"buffer_size": 64, "batch_size": 8},
    ("sb3", "ppo"): {"n_steps": 8, "batch_size": 8},
    ("sb3", "a2c"): {"n_steps": 8},
    **{("sb3", algo): {"buffer_size": 64, "learning_starts": 8} for algo in ("ddpg", "td3", "sac", "dqn", "ddqn")},
    ("rllib", "ppo"): {"train_batch_size": 32, "minibatch_size": 16, "num_epochs": 1, "model_config": {"fcnet_hiddens": [16]}},
    ("rllib", "dqn"): {"train_batch_size": 8, "replay_buffer_config": {"capacity": 500}},
}
BACKEND_ALGOS = [(backend.name, algo) for backend in BACKENDS for algo in backend.algos]


@pytest.fixture(scope="module", autouse=True)
def _no_ray_left() -> Iterator[None]:
    yield
    if "ray" in sys.modules:
        import ray

        ray.shutdown()


@pytest.fixture(scope="module")
def market(tiny_market: MarketData) -> MarketData:
    return tiny_market


# ---------------------------------------------------------------- light imports


def test_config_imports_no_heavy_package() -> None:
    code = (
        "import sys, finrl_lite.config\n"
        "heavy = ['torch', 'numpy', 'pandas', 'stable_baselines3', 'ray', 'gymnasium', 'yfinance', 'alpaca']\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- every entry is reachable and builds


def test_builtin_entries() -> None:
    assert BACKENDS.names() == ("native", "sb3", "rllib")
    assert ENV_KINDS.names() == ("stock_trading", "portfolio")
    assert SOURCES.names() == ("synthetic", "csv", "parquet", "yahoofinance", "alpaca")


def test_backend_algos_match_the_implementations() -> None:
    from finrl_lite.agents.rllib.agent import RLLIB_ALGORITHMS
    from finrl_lite.agents.sb3.agent import SB3_ALGORITHMS

    assert set(BACKENDS.get("sb3").algos) == set(SB3_ALGORITHMS)
    assert set(BACKENDS.get("rllib").algos) == set(RLLIB_ALGORITHMS)


@pytest.mark.parametrize(("backend", "algo"), BACKEND_ALGOS)
def test_every_backend_algo_validates_builds_and_round_trips(backend: str, algo: str, market: MarketData, tmp_path: Path) -> None:
    if backend == "rllib":
        pytest.importorskip("ray.rllib")
    params = json.dumps(SMALL_PARAMS[backend, algo])
    cfg = load_config(None, [f"agent.backend={backend}", f"agent.algo={algo}", f"agent.params={params}"])
    env = make_env(cfg.env.model_copy(update={"num_envs": 2, "episode_length": 20}), market)
    agent = make_agent(cfg, env, seed=0)
    assert isinstance(agent, BACKENDS.get(backend).agent_class(algo))
    if backend == "rllib":
        agent.close()  # type: ignore[attr-defined]
        return  # its save / load is tested with the RLlib agent
    obs, _ = env.reset(seed=0)
    directory = save_agent(agent, cfg.agent, tmp_path / "model")
    assert (directory / BACKENDS.get(backend).file_name).exists()
    loaded = load_agent(directory)
    np.testing.assert_allclose(
        np.asarray(torch.as_tensor(loaded.predict(obs)).cpu()), np.asarray(torch.as_tensor(agent.predict(obs)).cpu())
    )


@pytest.mark.parametrize("kind", ENV_KINDS.names())
def test_every_env_kind_validates_and_builds(kind: str, market: MarketData) -> None:
    cfg = load_config(None, [f"env.kind={kind}", "env.num_envs=3", "env.episode_length=10"])
    entry = ENV_KINDS.get(kind)
    assert type(cfg.env) is entry.config and cfg.env.kind == kind
    env = make_env(cfg.env, market, seed=1)
    assert isinstance(env, entry.env_class()) and env.num_envs == 3
    obs, _ = env.reset(seed=1)
    _, reward, *_ = env.step(torch.zeros(3, env.action_size, dtype=torch.float64))
    assert obs.shape[0] == 3 and reward.shape == (3,)
    evaluation = make_env(cfg.env, market, evaluation=True)
    assert evaluation.num_envs == 1
    assert env_params(cfg.env, evaluation=True).episode_length is None and env_params(cfg.env).episode_length == 10


@pytest.mark.parametrize("name", SOURCES.names())
def test_every_source_validates_and_builds(name: str, tmp_path: Path) -> None:
    entry = SOURCES.get(name)
    sets = [f"data.source={name}"] + ([f"data.path={tmp_path / 'bars.csv'}"] if entry.takes_path else [])
    cfg = load_config(None, sets)
    assert entry.section is None or entry.section in DataConfig.model_fields
    source = make_source(name, **source_options(cfg.data))
    assert isinstance(source, import_object(entry.source))


def test_a_file_source_without_path_fails_at_load() -> None:
    with pytest.raises(ConfigError, match="source 'parquet' needs data.path"):
        load_config(None, ["data.source=parquet"])


# ---------------------------------------------------------------- env: a union discriminated by kind


def test_env_defaults_and_yaml_kinds() -> None:
    assert type(AppConfig().env) is StockTradingEnvConfig
    assert type(load_config(None).env) is StockTradingEnvConfig
    assert type(load_config(REPO / "configs" / "quickstart.yaml").env) is StockTradingEnvConfig
    portfolio = load_config(REPO / "configs" / "portfolio.yaml").env
    assert isinstance(portfolio, PortfolioEnvConfig) and portfolio.cost_pct == 0.001 and portfolio.num_envs == 128
    switched = load_config(None, ["env.kind=portfolio", "env.lookback=30"]).env
    assert isinstance(switched, PortfolioEnvConfig) and switched.lookback == 30 and switched.reward == "log_return"


def test_field_of_another_kind_fails_at_load() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["env.kind=portfolio", "env.hmax=10"])
    msg = str(err.value)
    assert "env.hmax: unknown key; allowed keys here: action_scale, cash_weight, cost_pct" in msg
    assert "'hmax' is a setting of env.kind stock_trading, not of 'portfolio'" in msg
    with pytest.raises(ConfigError, match=r"env\.lookback: unknown key.*'lookback' is a setting of env.kind portfolio"):
        load_config(None, ["env.lookback=30"])


def test_reward_of_another_kind_fails_at_load(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("env:\n  kind: portfolio\n  reward: asset_change\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert str(p) in str(err.value)
    assert "env.reward: Input should be 'log_return' or 'value_change' (got 'asset_change') (for env.kind 'portfolio')" in str(
        err.value
    )
    with pytest.raises(ConfigError, match=r"env\.reward: Input should be 'asset_change', 'log_return' or 'differential_sharpe'"):
        load_config(None, ["env.reward=value_change"])


def test_unknown_kind_lists_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match=r"env\.kind: Input should be 'stock_trading' or 'portfolio' \(got 'futures'\)"):
        load_config(None, ["env.kind=futures"])
    with pytest.raises(ConfigError, match=r"env\.kind: Input should be 'stock_trading' or 'portfolio' \(got \[1\]\)"):
        load_config(None, ["env.kind=[1]"])
    with pytest.raises(ConfigError, match=r"env: Input should be a valid dictionary"):
        load_config(None, ["env=5"])


def test_kind_models_dump_round_trip_and_assignment(tmp_path: Path) -> None:
    cfg = load_config(REPO / "configs" / "portfolio.yaml")
    p = tmp_path / "resolved.yaml"
    p.write_text(dump_config(cfg))
    again = load_config(p)
    assert again == cfg and isinstance(again.env, PortfolioEnvConfig)
    cfg.env = {"kind": "stock_trading", "hmax": 7}  # type: ignore[assignment]
    assert isinstance(cfg.env, StockTradingEnvConfig) and cfg.env.hmax == 7
    with pytest.raises(TypeError, match="build a kind's model"):
        EnvConfigBase(kind="stock_trading")


# ---------------------------------------------------------------- backends and sources at load time


def test_unknown_backend_and_algo_fail_at_load() -> None:
    with pytest.raises(ConfigError, match=r"agent\.backend: Input should be 'native', 'sb3' or 'rllib' \(got 'jax'\)"):
        load_config(None, ["agent.backend=jax"])
    with pytest.raises(
        ConfigError, match=r"agent\.algo: not available on backend 'native'; expected 'ppo' or 'ddqn' \(got 'sac'\)"
    ):
        load_config(None, ["agent.algo=sac"])
    assert load_config(None, ["agent.backend=sb3", "agent.algo=sac"]).agent.algo == "sac"


# ---------------------------------------------------------------- one entry is enough


class WalkSource:
    """A toy source: seeded random walks, one bar per calendar day."""

    name = "walk"
    default_calendar = "24/7"

    def download(self, tickers: list[str], start: object, end: object, interval: str = "1d") -> pd.DataFrame:
        dates = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D")
        rng = np.random.default_rng(0)
        frames = []
        for tic in tickers or ["W1", "W2"]:
            close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, len(dates))))
            frames.append(
                pd.DataFrame(
                    {"date": dates, "tic": tic, "open": close, "high": close * 1.01, "low": close * 0.99, "close": close}
                ).assign(volume=1000.0)
            )
        return pd.concat(frames).sort_values(["date", "tic"], kind="stable").reset_index(drop=True)


def test_registering_a_data_source_is_enough(tmp_path: Path) -> None:
    sets = ["data.source=walk", "data.tickers=[A, B]", "data.indicators=[macd]", "data.start=2020-01-01", "data.end=2020-06-30"]
    with SOURCES.registered(DataSource("walk", WalkSource, description="toy")):
        cfg = load_config(None, [*sets, f"data.cache.dir={tmp_path}"])
        market = prepare_data(cfg, use_cache=False).market
    assert market.tickers == ("A", "B") and market.num_dates == 182 and market.source == "walk"
    with pytest.raises(ConfigError, match=r"data\.source: Input should be 'synthetic', .* or 'alpaca' \(got 'walk'\)"):
        load_config(None, sets)


class WeightsEnvConfig(EnvConfigBase):
    """A toy kind: target weights on the stock-trading core with one fee."""

    kind: Literal["weights"] = "weights"
    fee_pct: float = 0.0


def _weights_params(cfg: WeightsEnvConfig) -> StockTradingParams:
    return StockTradingParams(
        action_mode="target_weights",
        initial_amount=cfg.initial_amount,
        buy_cost_pct=cfg.fee_pct,
        sell_cost_pct=cfg.fee_pct,
        episode_length=cfg.episode_length,
        random_start=cfg.random_start,
    )


def test_registering_an_env_kind_is_enough(market: MarketData) -> None:
    entry = EnvKind("weights", WeightsEnvConfig, env=StockTradingVecEnv, params=_weights_params)
    with ENV_KINDS.registered(entry):
        cfg = load_config(None, ["env.kind=weights", "env.fee_pct=0.01", "env.num_envs=2", "env.episode_length=20"])
        assert isinstance(cfg.env, WeightsEnvConfig)
        env = make_env(cfg.env, market)
        assert isinstance(env, StockTradingVecEnv) and env.num_envs == 2
        assert env.params.action_mode == "target_weights" and env.params.sell_cost_pct == 0.01
        with pytest.raises(ConfigError, match="'hmax' is a setting of env.kind stock_trading, not of 'weights'"):
            load_config(None, ["env.kind=weights", "env.hmax=5"])
    with pytest.raises(ConfigError, match=r"env\.kind: Input should be 'stock_trading' or 'portfolio' \(got 'weights'\)"):
        load_config(None, ["env.kind=weights"])


class EqualWeightAgent:
    """A toy backend's agent: holds every ticker with the same weight, learns nothing."""

    def __init__(self, algo: str, env: Any, params: dict[str, Any], seed: int = 0) -> None:
        self.weight = float(params.get("weight", 0.5))
        self.num_timesteps = 0

    def learn(self, total_timesteps: int, callback: Any = None) -> EqualWeightAgent:
        self.num_timesteps += total_timesteps
        return self

    def predict(self, obs: Any, deterministic: bool = True) -> Any:
        return torch.full((obs.shape[0], 3), self.weight, dtype=torch.float64)

    def save(self, path: str | Path, training_state: bool = False) -> Path:
        Path(path).write_text(json.dumps({"weight": self.weight}))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, env: Any = None) -> EqualWeightAgent:
        return cls("equal", env, json.loads(Path(path).read_text()))


def test_registering_a_backend_is_enough(tmp_path: Path) -> None:
    backend = AgentBackend("toy", algos={"equal": EqualWeightAgent}, build=EqualWeightAgent, file_name="weights.json")
    sets = [
        "data.synthetic.num_tickers=3",
        f"data.cache.dir={tmp_path / 'cache'}",
        "agent.backend=toy",
        "agent.algo=equal",
        "agent.params={weight: 0.3}",
        "train.total_timesteps=8",
        "train.eval_splits=[test]",
        "train.baselines=[buy_and_hold]",
    ]
    with BACKENDS.registered(backend):
        metrics = train_run(load_config(REPO / "configs" / "quickstart.yaml", sets), tmp_path / "run")
        assert json.loads((tmp_path / "run" / "seed_0" / "model" / "weights.json").read_text()) == {"weight": 0.3}
        assert load_agent(tmp_path / "run" / "seed_0" / "model").weight == 0.3  # type: ignore[attr-defined]
    assert set(metrics["test"]) >= {"agent", "buy_and_hold"}
    with pytest.raises(ConfigError, match=r"agent\.backend: .*\(got 'toy'\)"):
        load_config(None, ["agent.backend=toy"])
    with pytest.raises(ConfigError, match="unknown agent backend 'toy'; known: native, sb3, rllib"):
        load_agent(tmp_path / "run" / "seed_0" / "model")


def test_portfolio_kind_through_the_pipeline(tmp_path: Path) -> None:
    sets = [
        "data.synthetic.num_tickers=3",
        f"data.cache.dir={tmp_path / 'cache'}",
        "env.num_envs=4",
        "env.episode_length=30",
        "agent.params={num_steps: 16, num_minibatches: 2, update_epochs: 1}",
        "train.total_timesteps=128",
        "train.eval_splits=[test]",
        "train.baselines=[buy_and_hold]",
    ]
    metrics = train_run(load_config(REPO / "configs" / "portfolio.yaml", sets), tmp_path / "run")
    assert set(metrics["test"]) >= {"agent", "buy_and_hold"}


# ---------------------------------------------------------------- the registry itself


def test_registry_names_duplicates_and_scopes() -> None:
    registry: Registry[DataSource] = Registry("data source", [DataSource("a", "x:Y")])
    with pytest.raises(ConfigError, match="data source 'a' is already registered"):
        registry.register(DataSource("a", "x:Z"))
    with pytest.raises(ConfigError, match="unknown data source 'b'; known: a"):
        registry.get("b")
    with registry.registered(DataSource("b", "x:Y")):
        assert registry.names() == ("a", "b") and registry.expected() == "'a' or 'b'"
    assert "b" not in registry and len(registry) == 1
    assert registry.unregister("a").name == "a" and registry.names() == ()
    with pytest.raises(ConfigError, match="name must be a non-empty string"):
        registry.register(DataSource("", "x:Y"))


def test_entries_check_themselves() -> None:
    with pytest.raises(ConfigError, match=r"WeightsEnvConfig\.kind must default to 'other'"):
        EnvKind("other", WeightsEnvConfig, env="x:Y", params="x:Z")
    with pytest.raises(ConfigError, match="config must subclass EnvConfigBase"):
        EnvKind("other", AppConfig, env="x:Y", params="x:Z")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="declares no algorithm"):
        AgentBackend("x", algos={}, build="x:Y", file_name="m")
    with pytest.raises(ConfigError, match="file_name must be a plain file name"):
        AgentBackend("x", algos={"a": "x:Y"}, build="x:Y", file_name="sub/m")


def test_import_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert import_object("finrl_lite.registry:Registry.register") is Registry.register
    with pytest.raises(ConfigError, match="must look like 'package.module:Name'"):
        import_object("finrl_lite.registry.Registry")
    with pytest.raises(ConfigError, match="no module named 'finrl_lite.nowhere'"):
        import_object("finrl_lite.nowhere:Thing")
    with pytest.raises(ConfigError, match="'finrl_lite.registry' has no attribute 'Nothing'"):
        import_object("finrl_lite.registry:Nothing")
    with pytest.raises(ConfigError, match="unknown agent backend 'jax'"):
        BACKENDS.get("jax")
    with pytest.raises(ConfigError, match="not available on backend 'sb3'; choose one of ppo, a2c"):
        BACKENDS.get("sb3").agent_class("apex")
    (tmp_path / "needs_a_missing_dependency.py").write_text("import finrl_lite_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="finrl_lite_absent_dependency"):  # not mistaken for a bad path
        import_object("needs_a_missing_dependency:Thing")
