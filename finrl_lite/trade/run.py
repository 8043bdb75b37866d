"""A trained run, loaded for trading: its config, agent, environment parameters, identity and observation layout."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from finrl_lite.agents.factory import load_agent
from finrl_lite.config import AppConfig
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.data_processors.processor import prepare_data
from finrl_lite.envs.market import EnvMarket
from finrl_lite.envs.observation import stock_observation_names
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.stock_trading import make_stock_market
from finrl_lite.errors import ConfigError
from finrl_lite.train.environment import env_params
from finrl_lite.train.pipeline import load_run_config

__all__ = ["ObservationLayout", "TradingRun", "load_trading_run"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObservationLayout:
    """What each entry of the flat observation is: tickers, features and the optional blocks, in order."""

    tickers: tuple[str, ...]
    features: tuple[str, ...]
    names: tuple[str, ...]

    @classmethod
    def of(cls, params: StockTradingParams, market: EnvMarket) -> ObservationLayout:
        return cls(market.tickers, market.feature_names, tuple(stock_observation_names(params, market)))

    @classmethod
    def with_tickers(cls, params: StockTradingParams, tickers: tuple[str, ...], features: tuple[str, ...]) -> ObservationLayout:
        """The layout the same processing gives bars of ``tickers`` (names as the observation builder writes them)."""
        view = SimpleNamespace(tickers=tickers, feature_names=features)
        return cls(tickers, features, tuple(stock_observation_names(params, view)))  # type: ignore[arg-type]

    def check_same(self, other: ObservationLayout, model: str, origin: str) -> None:
        """Refuse bars whose layout is not the model's.

        Raises:
            ConfigError: naming both layouts.
        """
        if other.names != self.names:
            raise ConfigError(
                f"observation layout mismatch: the model of {model} was trained on {self.describe()}; "
                f"the bars of {origin} give {other.describe()}. A model trades only the tickers and features it was trained on"
            )

    @property
    def size(self) -> int:
        return len(self.names)

    def describe(self) -> str:
        extra = [n for n in self.names if n.startswith(("turbulence", "vix", "valid:"))]
        blocks = f" + {', '.join(sorted({e.split(':')[0] for e in extra}))}" if extra else ""
        return f"{len(self.tickers)} tickers {list(self.tickers)} x features {list(self.features)}{blocks} = {self.size} values"


@dataclass
class TradingRun:
    """Everything the loop needs from a run directory.

    Attributes:
        directory: The run directory.
        config: Its resolved config.
        seed: The trained seed that trades.
        agent: The loaded agent.
        params: Evaluation environment parameters (one episode over the data, like ``finrl-lite backtest``).
        run_id: Identity of the run: a hash of its config and its model files (a retrained run is another run).
        market: The run's own prepared data (what it was trained and evaluated on).
        layout: The observation layout the model was trained on.
    """

    directory: Path
    config: AppConfig
    seed: int
    agent: Any
    params: StockTradingParams
    run_id: str
    market: MarketData
    layout: ObservationLayout

    @property
    def tickers(self) -> tuple[str, ...]:
        return self.layout.tickers


def _run_id(config_file: Path, model_dir: Path) -> str:
    digest = hashlib.sha256(config_file.read_bytes())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(model_dir)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def _model_input_size(agent: Any) -> int | None:
    """The observation size the model was built for, where the backend says it (native, SB3)."""
    for get in (
        lambda a: a.policy.critic[0].in_features,  # native PPO
        lambda a: a.ddqn.obs_size,  # native DDQN
        lambda a: a.model.observation_space.shape[0],  # SB3
    ):
        try:
            return int(get(agent))
        except (AttributeError, IndexError, TypeError):
            continue
    return None


def check_model_accepts(agent: Any, layout: ObservationLayout, origin: str) -> None:
    """Refuse a model whose input does not fit ``layout`` with a message naming both (never a shape crash).

    Raises:
        ConfigError: naming the layout and the size the model expects.
    """
    expected = _model_input_size(agent)
    problem = None
    if expected is not None and expected != layout.size:
        problem = f"the model takes observations of {expected} values"
    else:
        try:
            with torch.no_grad():
                action = agent.predict(torch.zeros(1, layout.size), deterministic=True)
            width = int(np.asarray(torch.as_tensor(action).shape)[-1])
            if width != len(layout.tickers):
                problem = f"the model outputs {width} actions, not one per ticker ({len(layout.tickers)})"
        except (RuntimeError, ValueError) as exc:
            problem = f"the model does not accept it ({exc})"
    if problem is not None:
        raise ConfigError(
            f"{origin}: observation layout mismatch: the model was trained on another layout than its run describes; "
            f"run layout: {layout.describe()}; {problem}"
        )


def load_trading_run(run_dir: str | Path, seed: int | None = None, use_cache: bool = True) -> TradingRun:
    """Load a run directory written by ``finrl-lite train`` for trading.

    Raises:
        ConfigError: not a run directory, no trained model for the seed, an unsupported environment kind or
            execution rule, or a model that does not fit the run's observation layout.
    """
    run = Path(run_dir)
    cfg = load_run_config(run)
    if cfg.env.kind != "stock_trading":
        raise ConfigError(
            f"{run}: paper trading supports env.kind 'stock_trading'; this run was trained with '{cfg.env.kind}' "
            "(target weights through a softmax), which the paper loop does not trade yet"
        )
    if cfg.env.execution != "next_open":
        raise ConfigError(
            f"{run}: env.execution is '{cfg.env.execution}': it fills at the close the agent just observed, a price no "
            "broker fills at once the bar is over; paper trading needs execution 'next_open' (decide at the close, "
            "fill at the next open)"
        )
    seeds = cfg.train.seeds
    seed = seeds[0] if seed is None else seed
    if seed not in seeds:
        raise ConfigError(f"{run}: seed {seed} is not one of the run's seeds {seeds}")
    model_dir = run / f"seed_{seed}" / "model"
    if not (model_dir / "agent.json").is_file():
        raise ConfigError(
            f"{run}: seed {seed} has no trained model ({model_dir / 'agent.json'} missing); "
            f"train it first: finrl-lite train --resume {run}"
        )
    agent = load_agent(model_dir, env=None)
    params = env_params(cfg.env, evaluation=True)
    assert isinstance(params, StockTradingParams)
    market = prepare_data(cfg, use_cache=use_cache).market
    layout = ObservationLayout.of(params, make_stock_market(params, market))
    check_model_accepts(agent, layout, str(model_dir))
    run_id = _run_id(run / "config.yaml", model_dir)
    logger.info("loaded run %s (id %s, seed %d): %s", run, run_id, seed, layout.describe())
    return TradingRun(run, cfg, seed, agent, params, run_id, market, layout)
