"""Typed configuration (pydantic v2) loaded from YAML, with ``section.key=value`` overrides.

Every model forbids unknown keys, and :func:`load_config` turns any validation failure into a
:class:`~finrl_lite.errors.ConfigError` naming the file, the field path and what is allowed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from finrl_lite.errors import ConfigError
from finrl_lite.melo_config import MeloConfig
from finrl_lite.paper_config import PaperConfig

__all__ = [
    "AgentConfig",
    "AppConfig",
    "EnvConfig",
    "TrainConfig",
    "AlpacaConfig",
    "CacheConfig",
    "CleaningConfig",
    "DataConfig",
    "SplitRange",
    "SyntheticConfig",
    "YahooConfig",
    "apply_overrides",
    "load_config",
]

SourceName = Literal["synthetic", "csv", "parquet", "yahoofinance", "alpaca"]

FINRL_DEFAULT_INDICATORS = ["macd", "boll_ub", "boll_lb", "rsi_30", "cci_30", "dx_30", "close_30_sma", "close_60_sma"]


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SyntheticConfig(StrictModel):
    """The embedded synthetic market (the default source)."""

    num_tickers: int = Field(10, ge=1, le=5000, description="Number of synthetic tickers.")
    seed: int = Field(0, ge=0, description="Seed of the generator; the same seed gives the same bytes.")
    num_factors: int = Field(3, ge=0, le=50, description="Sector factors besides the market factor.")
    correlation_band: tuple[float, float] = Field(
        (0.2, 0.45),
        description="Target band of the average pairwise correlation of returns; the generator aims at its middle.",
    )
    annual_volatility: float = Field(0.25, gt=0.0, le=3.0, description="Typical annualised volatility of a ticker.")
    annual_drift: float = Field(0.07, ge=-1.0, le=1.0, description="Average annual log drift.")
    tail_dof: float = Field(4.0, gt=2.0, le=100.0, description="Student-t degrees of freedom of the shocks (fat tails).")
    garch_alpha: float = Field(0.08, ge=0.0, lt=1.0, description="GARCH(1,1) reaction to the last squared shock.")
    garch_beta: float = Field(0.9, ge=0.0, lt=1.0, description="GARCH(1,1) persistence of variance.")
    jump_intensity: float = Field(0.01, ge=0.0, le=1.0, description="Probability of a price jump per ticker per day.")
    jump_scale: float = Field(0.03, ge=0.0, le=1.0, description="Standard deviation of a jump's log size.")
    ragged: bool = Field(False, description="Give one ticker a late listing and another a delisting.")

    @model_validator(mode="after")
    def _check(self) -> SyntheticConfig:
        lo, hi = self.correlation_band
        if not 0.0 <= lo < hi < 1.0:
            raise ValueError(f"correlation_band must satisfy 0 <= low < high < 1, got {self.correlation_band}")
        if self.garch_alpha + self.garch_beta >= 1.0:
            raise ValueError("garch_alpha + garch_beta must be < 1 (stationary variance)")
        return self


class CleaningConfig(StrictModel):
    """How raw bars are checked and aligned."""

    calendar: str | None = Field(
        None, description="exchange_calendars name (XNYS, XLON, 24/7, ...); None: XNYS, or 24/7 for crypto sources."
    )
    on_bad_rows: Literal["drop", "error"] = Field("drop", description="Impossible bars are dropped (reported) or an error.")
    align_to_calendar: bool = Field(True, description="Reindex every ticker on the calendar's sessions.")


class YahooConfig(StrictModel):
    """yfinance download options."""

    auto_adjust: bool = Field(True, description="Adjust OHLC for splits and dividends (yfinance auto_adjust).")
    retries: int = Field(3, ge=0, le=10, description="Retries after a failed request.")
    backoff_seconds: float = Field(1.0, ge=0.0, le=60.0, description="First retry delay; doubled each retry.")
    timeout_seconds: float = Field(30.0, gt=0.0, description="Per-request timeout.")


class AlpacaConfig(StrictModel):
    """alpaca-py historical bars options (keys come only from APCA_API_KEY_ID / APCA_API_SECRET_KEY)."""

    feed: Literal["iex", "sip"] = Field("iex", description="Data feed; free accounts have iex.")
    adjustment: Literal["raw", "split", "dividend", "all"] = Field("all", description="Corporate-action adjustment.")
    crypto: bool = Field(False, description="Use the crypto historical client (tickers like BTC/USD).")


class CacheConfig(StrictModel):
    """Cache of processed data (parquet files keyed by a hash of everything that shapes them)."""

    enabled: bool = Field(True, description="Read and write the cache.")
    dir: str = Field("~/.cache/finrl_lite", description="Folder of cached files.")


class SplitRange(StrictModel):
    """An inclusive date range."""

    start: dt.date | dt.datetime
    end: dt.date | dt.datetime


class DataConfig(StrictModel):
    """Where the data comes from and how it is processed."""

    source: SourceName = Field("synthetic", description="Data source.")
    tickers: list[str] = Field(
        default_factory=list, description="Tickers; empty means all (file) or generated names (synthetic)."
    )
    start: dt.date | dt.datetime = Field(dt.date(2015, 1, 2), description="First date (inclusive).")
    end: dt.date | dt.datetime = Field(dt.date(2019, 12, 31), description="Last date (inclusive).")
    interval: str = Field("1d", description="Bar interval: 1d, or intraday 1m, 5m, 15m, 30m, 1h.")
    path: str | None = Field(None, description="File for the csv / parquet sources (long format; .gz accepted).")
    indicators: list[str] = Field(default_factory=lambda: list(FINRL_DEFAULT_INDICATORS), description="Indicator names.")
    turbulence: bool = Field(True, description="Add the turbulence index (Mahalanobis distance of returns).")
    turbulence_window: int = Field(252, ge=10, le=5000, description="Trailing window of the turbulence index, in bars.")
    vix: bool = Field(False, description="Add the VIX series from the source (synthetic and yahoofinance have one).")
    cleaning: CleaningConfig = Field(default_factory=CleaningConfig)
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    yahoofinance: YahooConfig = Field(default_factory=YahooConfig)
    alpaca: AlpacaConfig = Field(default_factory=AlpacaConfig)
    splits: dict[str, SplitRange] = Field(default_factory=dict, description="Named date ranges: train, validation, test, trade.")
    cache: CacheConfig = Field(default_factory=CacheConfig)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        from finrl_lite.data_processors.intervals import parse_interval

        parse_interval(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if _as_datetime(self.start) > _as_datetime(self.end):
            raise ValueError(f"start {self.start} is after end {self.end}")
        if self.source in ("csv", "parquet") and not self.path:
            raise ValueError(f"source '{self.source}' needs data.path")
        return self


def _as_datetime(value: dt.date | dt.datetime) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime(value.year, value.month, value.day)


class ScalesConfig(StrictModel):
    """Fixed observation scaling factors (never statistics of the data, which would leak the future)."""

    cash: float | None = Field(None, description="Factor on cash; None: 1 / initial_amount.")
    price: float = Field(1.0, description="Factor on prices.")
    holdings: float | None = Field(None, description="Factor on holdings; None: 1 / hmax.")
    features: float = Field(1.0, description="Factor on every per-ticker feature.")
    risk: float = Field(1.0, description="Factor on the risk series when observed.")


class EnvConfig(StrictModel):
    """The trading environment: market rules, accounting and episodes (see ``StockTradingParams``)."""

    kind: Literal["stock_trading", "portfolio"] = Field(
        "stock_trading", description="stock_trading (shares per ticker) or portfolio (target weights by softmax)."
    )
    num_envs: int = Field(64, ge=1, le=1_000_000, description="Environments stepped together in training.")
    hmax: float = Field(100.0, gt=0, description="Shares traded by an action of magnitude 1.")
    initial_amount: float = Field(1_000_000.0, gt=0, description="Starting cash.")
    buy_cost_pct: float = Field(0.001, ge=0, lt=1, description="Fee on a buy's notional (0.001 = 10 bps).")
    sell_cost_pct: float = Field(0.001, ge=0, lt=1, description="Fee on a sell's notional.")
    min_cost: float = Field(0.0, ge=0, description="Minimum fee per executed order.")
    slippage_bps: float = Field(0.0, ge=0, lt=10_000, description="Adverse price move on every fill, in bps.")
    lot_size: int = Field(1, ge=1, description="Shares trade in multiples of this (100 for A-shares).")
    fractional: bool = Field(False, description="Trade fractional shares.")
    short_selling: bool = Field(False, description="Allow negative holdings.")
    t_plus_1: bool = Field(False, description="Shares bought on a day cannot be sold that day.")
    execution: Literal["next_open", "close"] = Field(
        "next_open", description="Fill at the next bar's open, or at the close just observed (FinRL)."
    )
    turbulence_threshold: float | None = Field(
        None, description="Liquidate and block buys at or above this risk value; None disables."
    )
    risk_series: Literal["turbulence", "vix"] = Field("turbulence", description="Series compared with the threshold.")
    observe_risk: bool = Field(False, description="Append the risk series to the observation.")
    observe_valid: bool = Field(False, description="Append the per-ticker valid mask to the observation.")
    features: list[str] | None = Field(None, description="Per-ticker features observed; None: every indicator of the data.")
    reward: Literal["asset_change", "log_return", "differential_sharpe", "value_change"] = Field(
        "asset_change",
        description="Reward: stock_trading takes asset_change, log_return, differential_sharpe; "
        "portfolio log_return or value_change.",
    )
    cash_weight: bool = Field(True, description="portfolio: the action has a cash weight (N + 1 scores).")
    action_scale: float = Field(5.0, gt=0, description="portfolio: scores are multiplied by this before the softmax.")
    lookback: int = Field(20, ge=2, description="portfolio: bars in the trailing covariance window.")
    reward_scaling: float = Field(1e-4, gt=0, description="Factor on the asset_change reward.")
    episode_length: int | None = Field(252, ge=1, description="Steps per training episode; None: to the end of the split.")
    random_start: bool = Field(True, description="Training episodes start at random bars after the warm-up.")
    ruin_fraction: float = Field(0.0, ge=0, lt=1, description="Terminate when total asset <= this fraction of the start.")
    dtype: Literal["float64", "float32"] = Field("float64", description="Accounting dtype.")
    device: str = Field("cpu", description="Torch device of the environments and native agents (cpu, cuda).")
    step_mode: Literal["auto", "eager", "compile", "cuda_graph", "fused"] = Field(
        "auto",
        description="How a step runs: auto (the fused CPU kernel where it applies, else eager torch), "
        "eager, compile, cuda_graph, fused.",
    )
    scales: ScalesConfig = Field(default_factory=ScalesConfig)


AlgoName = Literal["ppo", "a2c", "ddpg", "td3", "sac", "dqn", "ddqn"]


class AgentConfig(StrictModel):
    """The learning agent."""

    backend: Literal["native", "sb3", "rllib"] = Field("native", description="native (on-device torch), sb3 or rllib.")
    algo: AlgoName = Field("ppo", description="Algorithm: native ppo/ddqn; sb3 ppo/a2c/ddpg/td3/sac/dqn/ddqn; rllib ppo/dqn.")
    params: dict[str, Any] = Field(default_factory=dict, description="The algorithm's hyper-parameters (checked by the backend).")


class TrainConfig(StrictModel):
    """Training, evaluation and reporting."""

    total_timesteps: int = Field(100_000, ge=1, description="Environment steps to learn from, per seed.")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="Seeds; several give a mean and 95% CI.")
    train_split: str = Field("train", description="Split the agent learns on.")
    eval_splits: list[str] = Field(default_factory=lambda: ["validation", "test"], description="Splits evaluated after training.")
    checkpoint_every: int = Field(0, ge=0, description="Save a checkpoint every this many steps (0: only at the end).")
    baselines: list[str] = Field(
        default_factory=lambda: ["buy_and_hold", "equal_weight_index", "min_variance", "indicator_crossover"],
        description="Baselines evaluated beside the agent.",
    )


class AppConfig(StrictModel):
    """A whole finrl-lite configuration file."""

    data: DataConfig = Field(default_factory=DataConfig)
    melo: MeloConfig | None = Field(None, description="Dynamic M-ELO environment, Double DQN agent and evaluation.")
    paper: PaperConfig | None = Field(None, description="Paper trading: broker, feed, risk limits (finrl-lite paper).")
    env: EnvConfig = Field(default_factory=EnvConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)


# ---------------------------------------------------------------------- loading


def apply_overrides(raw: dict[str, Any], overrides: list[str], origin: str = "--set") -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{origin} '{item}': expected section.key=value")
        dotted, text = item.split("=", 1)
        keys = [k for k in dotted.strip().split(".") if k]
        if not keys:
            raise ConfigError(f"{origin} '{item}': empty key")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{origin} '{item}': value is not valid YAML ({exc})") from exc
        node = raw
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{origin} '{item}': '{key}' is a value, not a section")
            node = child
        node[keys[-1]] = value
    return raw


def _format_validation_error(origin: str, err: ValidationError, model: type[BaseModel]) -> str:
    lines = [f"{origin}: invalid configuration"]
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, [str(p) for p in e["loc"][:-1]])
            msg = f"unknown key; allowed keys here: {', '.join(allowed)}"
        elif "input" in e and e["type"] not in ("missing",):
            msg = f"{msg} (got {e['input']!r})"
        lines.append(f"  {path}: {msg}")
    return "\n".join(lines)


def _allowed_keys(model: type[BaseModel], path: list[str]) -> list[str]:
    current: Any = model
    for key in path:
        fld = getattr(current, "model_fields", {}).get(key)
        if fld is None:
            return []
        current = fld.annotation
    return sorted(getattr(current, "model_fields", {}))


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> AppConfig:
    """Load a YAML config file, apply overrides and validate.

    Args:
        path: YAML file, or None for the defaults.
        overrides: ``section.key=value`` strings, applied in order.

    Raises:
        ConfigError: missing or unreadable file, bad YAML, unknown key, wrong type or out-of-range value.
    """
    origin = str(path) if path is not None else "<defaults>"
    raw: Any = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{origin}: config file not found")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{origin}: cannot read config file ({exc})") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{origin}: not valid YAML ({exc})") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{origin}: top level must be a mapping of sections, got {type(raw).__name__}")
    apply_overrides(raw, overrides or [])
    try:
        return AppConfig.model_validate(raw)
    except ValidationError as exc:
        if overrides:
            origin = f"{origin} (with --set {' '.join(overrides)})"
        raise ConfigError(_format_validation_error(origin, exc, AppConfig)) from None


def dump_config(config: AppConfig) -> str:
    """The resolved config as YAML (what a run directory stores)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
