"""Typed configuration (pydantic v2) loaded from YAML, with ``section.key=value`` overrides.

Every model forbids unknown keys, and :func:`load_config` turns any validation failure into a
:class:`~finrl_lite.errors.ConfigError` naming the file, the field path and what is allowed.

Names are checked against their registries (:mod:`finrl_lite.registry`): ``agent.backend`` and ``agent.algo``
against :data:`~finrl_lite.agents.backends.BACKENDS`, ``data.source`` against
:data:`~finrl_lite.data_processors.sources.SOURCES`, and ``env`` is validated by the settings model of the
kind it names (:data:`~finrl_lite.env_config.ENV_KINDS`). None of them imports torch.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from finrl_lite.agents.backends import BACKENDS
from finrl_lite.config_base import StrictModel
from finrl_lite.data_processors.sources import SOURCES
from finrl_lite.env_config import (
    ENV_KINDS,
    EnvConfig,
    EnvConfigBase,
    PortfolioEnvConfig,
    ScalesConfig,
    StockTradingEnvConfig,
    env_config_model,
)
from finrl_lite.errors import ConfigError
from finrl_lite.melo_config import MeloConfig
from finrl_lite.paper_config import PaperConfig
from finrl_lite.population_config import PopulationConfig
from finrl_lite.registry import Registry, expected_values

__all__ = [
    "AgentConfig",
    "AppConfig",
    "CandidateConfig",
    "EnsembleConfig",
    "EnsembleTurbulenceConfig",
    "EnvConfig",
    "EnvConfigBase",
    "PopulationConfig",
    "PortfolioEnvConfig",
    "ScalesConfig",
    "StockTradingEnvConfig",
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

_PANDAS_INDEX = re.compile(r"^Unnamed: \d+$")
"""A column pandas names when it reads a file whose row index was written without a name."""

FINRL_DEFAULT_INDICATORS = ["macd", "boll_ub", "boll_lb", "rsi_30", "cci_30", "dx_30", "close_30_sma", "close_60_sma"]


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
    max_price_jump: float | None = Field(
        1.75,
        gt=1.0,
        description="A close more than this factor above or below both the previous and the next close of its ticker "
        "is a bad print, handled like an impossible bar; a move beyond it that lasts (spin-off, unadjusted split) is "
        "kept and reported. None: no check.",
    )


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

    source: str = Field(
        "synthetic", description="Data source: synthetic, csv, parquet, yahoofinance, alpaca, or a registered one."
    )
    tickers: list[str] = Field(
        default_factory=list, description="Tickers; empty means all (file) or generated names (synthetic)."
    )
    start: dt.date | dt.datetime = Field(dt.date(2015, 1, 2), description="First date (inclusive).")
    end: dt.date | dt.datetime = Field(dt.date(2019, 12, 31), description="Last date (inclusive).")
    interval: str = Field("1d", description="Bar interval: 1d, or intraday 1m, 5m, 15m, 30m, 1h.")
    path: str | None = Field(
        None,
        description="File for the csv / parquet sources (long format; .gz accepted); a relative path in a config file is "
        "relative to that file's folder, one given with --set to the working directory.",
    )
    date_format: str = Field(
        "ISO8601",
        description="Format of the file's date column: ISO8601 (2015-01-02, 2015-01-02 09:30:00, with or without an "
        "offset) or one strftime format for every row, e.g. '%d/%m/%Y'.",
    )
    timezone: str | None = Field(
        None,
        description="Timezone of the file's naive intraday timestamps (e.g. America/New_York, UTC); None: the "
        "calendar's timezone. Timestamps with an offset are converted as they say.",
    )
    extra_features: list[str] = Field(
        default_factory=list,
        description="Numeric columns of the file observed as per-ticker features, besides OHLCV and the indicators "
        "(other columns are never observed).",
    )
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

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return _registered(SOURCES, value)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        from finrl_lite.data_processors.intervals import parse_interval

        parse_interval(value)
        return value

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, value: str) -> str:
        if value != "ISO8601" and "%" not in value:
            raise ValueError("expected ISO8601 or a strftime format such as '%Y-%m-%d' or '%d/%m/%Y' (one format for every row)")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError("not a known IANA timezone; e.g. America/New_York, Europe/London, UTC") from None
        return value

    @field_validator("extra_features")
    @classmethod
    def _extra_features(cls, value: list[str]) -> list[str]:
        reserved = [v for v in value if v in ("date", "tic", "valid", "open", "high", "low", "close", "volume")]
        if reserved:
            raise ValueError(f"{reserved} are not extra features (date, tic, valid and OHLCV are always read)")
        index = [v for v in value if _PANDAS_INDEX.match(v)]
        if index:
            raise ValueError(f"{index} is a row index pandas wrote into the file, not a feature")
        return value

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if _as_datetime(self.start) > _as_datetime(self.end):
            raise ValueError(f"start {self.start} is after end {self.end}")
        if SOURCES.get(self.source).takes_path and not self.path:
            raise ValueError(f"source '{self.source}' needs data.path")
        return self


def _registered(registry: Registry[Any], value: str) -> str:
    """``value`` when ``registry`` has it; else the literal error pydantic gives (listing what is registered)."""
    if value not in registry:
        raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": registry.expected()})
    return value


def _as_datetime(value: dt.date | dt.datetime) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime(value.year, value.month, value.day)


class AgentConfig(StrictModel):
    """The learning agent: a backend of :data:`~finrl_lite.agents.backends.BACKENDS` and one of its algorithms."""

    backend: str = Field("native", description="Agent backend: native (on-device torch), sb3, rllib, or a registered one.")
    algo: str = Field(
        "ppo", description="Algorithm of the backend: native ppo/ddqn; sb3 ppo/a2c/ddpg/td3/sac/dqn/ddqn; rllib ppo/dqn."
    )
    params: dict[str, Any] = Field(default_factory=dict, description="The algorithm's hyper-parameters (checked by the backend).")

    @field_validator("backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        return _registered(BACKENDS, value)

    @field_validator("algo")
    @classmethod
    def _algo(cls, value: str, info: ValidationInfo) -> str:
        backend = info.data.get("backend")
        if backend is None:  # the backend itself was refused; that error says enough
            return value
        algos = BACKENDS.get(backend).algos
        if value not in algos:
            raise PydanticCustomError(
                "algo_not_on_backend",
                "not available on backend '{backend}'; expected {expected}",
                {"backend": backend, "expected": expected_values(algos)},
            )
        return value


class TrainConfig(StrictModel):
    """Training, evaluation and reporting."""

    total_timesteps: int = Field(100_000, ge=1, description="Environment steps to learn from, per seed.")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="Seeds; several give a mean and 95% CI.")
    train_split: str = Field("train", description="Split the agent learns on.")
    eval_splits: list[str] = Field(default_factory=lambda: ["validation", "test"], description="Splits evaluated after training.")
    checkpoint_every: int = Field(
        0,
        ge=0,
        description="Checkpoint (agent, training state, env snapshot) after the first iteration past each multiple of "
        "this many steps; `train --resume` continues from it exactly (0: no checkpoints).",
    )
    baselines: list[str] = Field(
        default_factory=lambda: ["buy_and_hold", "equal_weight_index", "min_variance", "indicator_crossover"],
        description="Baselines evaluated beside the agent.",
    )


def _discrete_algos(backend: str) -> frozenset[str]:
    return BACKENDS.get(backend).discrete_algos


class CandidateConfig(AgentConfig):
    """One candidate of the rolling-window ensemble: an agent config trained once per seed in every window."""

    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Name in reports and folders; each seed adds _s<seed>. Default: the algo, prefixed by the backend "
        "unless native.",
    )
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="One member per seed.")
    total_timesteps: int | None = Field(None, ge=1, description="Training steps per window; None: train.total_timesteps.")

    def agent_config(self) -> AgentConfig:
        """The agent config of its members (without the candidate's own fields)."""
        return AgentConfig(backend=self.backend, algo=self.algo, params=self.params)

    def member_names(self) -> list[str]:
        """``<name>_s<seed>`` for every seed."""
        base = self.name or (self.algo if self.backend == "native" else f"{self.backend}_{self.algo}")
        return [f"{base}_s{seed}" for seed in self.seeds]


class EnsembleTurbulenceConfig(StrictModel):
    """The turbulence threshold of each window's validation and trading (FinRL's adaptive rule, done as documented).

    In-sample values are the risk series (``env.risk_series``) on the window's training bars after the warm-up,
    leaving out zeros (the turbulence index is 0 where it is not defined yet).
    """

    mode: Literal["adaptive", "fixed", "none"] = Field(
        "adaptive",
        description="adaptive: the in-sample `quantile` when the mean risk of the `lookback` bars up to the validation "
        "window's first bar is above it (turbulent), else the in-sample `calm_quantile`; fixed: the in-sample `quantile` "
        "in every window; none: env.turbulence_threshold as configured.",
    )
    quantile: float = Field(0.90, gt=0.0, le=1.0, description="In-sample quantile: the threshold of a turbulent period.")
    calm_quantile: float = Field(1.0, gt=0.0, le=1.0, description="In-sample quantile in a calm period (1.0: the maximum).")
    lookback: int = Field(63, ge=1, description="Bars whose mean risk decides calm or turbulent (FinRL: 63, a quarter).")

    @model_validator(mode="after")
    def _check(self) -> EnsembleTurbulenceConfig:
        if self.calm_quantile < self.quantile:
            raise ValueError(f"calm_quantile {self.calm_quantile} must be >= quantile {self.quantile}")
        return self


class EnsembleConfig(StrictModel):
    """`finrl-lite ensemble`: FinRL's rolling-window ensemble. Windows are in bars of the data's interval.

    The trade windows tile the split ``split``; before each, ``validation_window`` bars validate every candidate
    member trained on the bars before them, and the best by ``metric`` (``policy``) trades the window.
    """

    split: str = Field("test", description="The out-of-sample span the trade windows tile (a data split).")
    rebalance_window: int = Field(63, ge=1, description="Bars each pick trades before the next window (FinRL: 63).")
    validation_window: int = Field(
        63, ge=2, description="Bars before a trade window that score the candidates (a Sharpe ratio needs 2 returns)."
    )
    train_window: int | None = Field(
        None, ge=2, description="Training bars before each validation window; None: every bar from the data's start (FinRL)."
    )
    candidates: list[CandidateConfig] = Field(min_length=1, description="The candidate agents trained in every window.")
    metric: Literal["sharpe", "sortino", "calmar", "cumulative_return", "annual_return", "max_drawdown"] = Field(
        "sharpe", description="Validation metric that ranks the members (higher is better), annualised from the interval."
    )
    policy: Literal["pick_best", "mean", "vote"] = Field(
        "pick_best", description="How a window's members trade: the best alone (FinRL), mean action, or majority vote."
    )
    turbulence: EnsembleTurbulenceConfig = Field(default_factory=EnsembleTurbulenceConfig)
    parallel: Literal["auto", "ray", "none"] = Field(
        "auto", description="Train the members of every window as Ray tasks (auto: when Ray is installed) or one by one."
    )
    num_cpus: int = Field(2, ge=1, le=1024, description="CPUs of the local Ray started for the run (one per task).")

    @model_validator(mode="after")
    def _check(self) -> EnsembleConfig:
        names = [name for c in self.candidates for name in c.member_names()]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"candidate members need unique names (name the candidates); repeated: {', '.join(repeated)}")
        if self.policy == "vote":
            continuous = [f"{c.backend} {c.algo}" for c in self.candidates if c.algo not in _discrete_algos(c.backend)]
            if continuous:
                raise ValueError(f"policy 'vote' needs DQN-family candidates (discrete actions); not: {', '.join(continuous)}")
        return self


class AppConfig(StrictModel):
    """A whole finrl-lite configuration file."""

    data: DataConfig = Field(default_factory=DataConfig)
    melo: MeloConfig | None = Field(None, description="Dynamic M-ELO environment, Double DQN agent and evaluation.")
    paper: PaperConfig | None = Field(None, description="Paper trading: broker, feed, risk limits (finrl-lite paper).")
    env: EnvConfig = Field(
        default_factory=StockTradingEnvConfig, description="The trading environment; its kind selects its fields."
    )
    agent: AgentConfig = Field(default_factory=AgentConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    ensemble: EnsembleConfig | None = Field(None, description="Rolling-window ensemble (`finrl-lite ensemble`).")
    population: PopulationConfig | None = Field(
        None, description="Population-based training (`finrl-lite pbt`): scheduler, population, mutations, resources."
    )

    @model_validator(mode="after")
    def _population_agent(self) -> AppConfig:
        """Every mutated name is a hyper-parameter the agent can change while training, within its valid range; a GPU
        share per trial needs a GPU env; a voting ensemble needs discrete-action agents."""
        if self.population is None:
            return self
        backend = BACKENDS.get(self.agent.backend)
        tunable = backend.tunable(self.agent.algo)
        owner = f"agent {self.agent.backend} {self.agent.algo}"
        gpu = self.population.resources_per_trial.gpu
        if gpu > 0 and self.env.device == "cpu":
            raise ValueError(
                f"population.resources_per_trial.gpu is {gpu:g} but env.device is cpu: the GPU share would sit idle; "
                "set env.device=cuda, or resources_per_trial.gpu=0"
            )
        if self.population.ensemble == "vote" and self.agent.algo not in backend.discrete_algos:
            raise ValueError(f"population.ensemble: vote needs discrete-action agents; {owner} is continuous (use mean)")
        for name, mutation in self.population.mutations.items():
            if name not in tunable:
                allowed = ", ".join(sorted(tunable)) or "none (population-based training cannot mutate this agent)"
                raise ValueError(
                    f"population.mutations.{name}: not a hyper-parameter {owner} can change during training; allowed: {allowed}"
                )
            spec = tunable[name]
            outside = [v for v in mutation.candidates() if not spec.contains(v)]
            if outside:
                raise ValueError(
                    f"population.mutations.{name}: {', '.join(map(str, outside))} outside the valid range "
                    f"{spec.describe()} of {owner}'s {name}"
                )
        return self


# ---------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, except that a date-like scalar that is no real date (``2019-11-31``) stays a string,
    so that validation names the field that holds it instead of YAML failing without a location."""


def _timestamp_or_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_or_text)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


_SECRET = re.compile(r"secret|password|passwd|passphrase|token|credential|api_?key|key_?id|private_?key", re.IGNORECASE)
"""Keys whose values are never echoed in a message."""


def _is_secret(key: object) -> bool:
    return isinstance(key, str) and _SECRET.search(key) is not None


def _redacted(value: Any) -> Any:
    """``value`` with the values of secret-looking keys replaced by ``***`` (for messages)."""
    if isinstance(value, dict):
        return {k: "***" if _is_secret(k) else _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _shown(item: str) -> str:
    """An override as a message shows it: ``key=***`` when the key looks like a secret or the value names one."""
    dotted, sep, text = item.partition("=")
    secret = any(_is_secret(k) for k in dotted.split(".")) or _SECRET.search(text) is not None  # or a mapping with one
    return f"{dotted}=***" if sep and secret else item


def apply_overrides(raw: dict[str, Any], overrides: list[str], origin: str = "--set") -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a nested dict, in place.

    Messages never show the value of a key that looks like a secret (``*secret*``, ``*token*``, ``*password*``...).
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{origin} '{_shown(item)}': expected section.key=value")
        dotted, text = item.split("=", 1)
        keys = [k for k in dotted.strip().split(".") if k]
        if not keys:
            raise ConfigError(f"{origin} '{_shown(item)}': empty key")
        try:
            value = _yaml(text)
        except yaml.YAMLError as exc:
            detail = "" if any(_is_secret(k) for k in keys) else f" ({exc})"
            raise ConfigError(f"{origin} '{_shown(item)}': value is not valid YAML{detail}") from None
        node = raw
        for key in keys[:-1]:
            if node.get(key) is None:  # absent, or an optional section left empty (`paper: null`)
                node[key] = {}
            child = node[key]
            if not isinstance(child, dict):
                raise ConfigError(f"{origin} '{_shown(item)}': '{key}' is a value, not a section")
            node = child
        node[keys[-1]] = value
    return raw


_UNION_MEMBER_TAGS = {"date", "datetime", "int", "float", "str", "bool", "none"}
"""Where pydantic names the member of a union (``date | datetime``) a value failed; no config field is so named."""


def _format_validation_error(origin: str, err: ValidationError, model: type[BaseModel], raw: Any) -> str:
    lines = [f"{origin}: invalid configuration"]
    seen: set[str] = set()
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        while len(loc) > 1 and loc[-1] in _UNION_MEMBER_TAGS:  # `end.date`, `end.datetime`: one line for `end`
            loc.pop()
        path = ".".join(loc) or "(top level)"
        if path in seen:
            continue
        seen.add(path)
        msg = e["msg"]
        section = _section_model(model, raw, loc[:-1])
        if e["type"] == "extra_forbidden":
            allowed = sorted(section.model_fields) if section is not None else []
            msg = f"unknown key; allowed keys here: {', '.join(allowed)}"
        elif "input" in e and e["type"] not in ("missing",) and loc and not any(_is_secret(k) for k in loc):
            msg = f"{msg} (got {_redacted(e['input'])!r})"  # not the whole file for a check across sections
        if loc and section is not None and issubclass(section, EnvConfigBase):
            msg += _env_kind_note(section, loc[-1])
        lines.append(f"  {path}: {msg}")
    return "\n".join(lines)


def _section_model(model: type[BaseModel], raw: Any, path: list[str]) -> type[BaseModel] | None:
    """The model that validates the section at ``path`` of the raw config (for ``env``: the model of its kind)."""
    current: type[BaseModel] | None = model
    node = raw
    for key in path:
        fld = current.model_fields.get(key) if current is not None else None
        if fld is None:
            return None
        node = node.get(key) if isinstance(node, dict) else None
        current = _model_of(fld.annotation, node)
    return current


def _model_of(annotation: Any, node: Any) -> type[BaseModel] | None:
    candidates = [annotation, *get_args(annotation)]  # a model, or an optional one
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, EnvConfigBase):
            return env_config_model(node if node is not None else {})
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _env_kind_note(section: type[EnvConfigBase], key: str) -> str:
    """Which env kind a kind-specific field belongs to, so a field of another kind reads as such."""
    kind = section.model_fields["kind"].default
    if key in section.model_fields:
        return "" if key in EnvConfigBase.model_fields else f" (for env.kind '{kind}')"
    owners = [entry.name for entry in ENV_KINDS if key in entry.config.model_fields]
    if owners:
        return f" ('{key}' is a setting of env.kind {', '.join(owners)}, not of '{kind}')"
    return f" (env.kind '{kind}')"


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> AppConfig:
    """Load a YAML config file, apply overrides and validate.

    A relative ``data.path`` written in the file is relative to the file's folder; one given in ``overrides`` is
    relative to the working directory. Either way the loaded config holds it absolute.

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
            raw = _yaml(p.read_text()) or {}
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{origin}: cannot read config file ({exc})") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{origin}: not valid YAML ({exc})") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{origin}: top level must be a mapping of sections, got {type(raw).__name__}")
        _resolve_data_path(raw, p.parent)
    apply_overrides(raw, overrides or [])
    _resolve_data_path(raw, Path.cwd())
    try:
        return AppConfig.model_validate(raw)
    except ValidationError as exc:
        if overrides:
            origin = f"{origin} (with --set {' '.join(map(_shown, overrides))})"
        raise ConfigError(_format_validation_error(origin, exc, AppConfig, raw)) from None


def _resolve_data_path(raw: dict[str, Any], base: Path) -> None:
    """Make a relative ``data.path`` absolute against ``base`` (``~`` expands to the home folder)."""
    data = raw.get("data")
    path = data.get("path") if isinstance(data, dict) else None
    if isinstance(path, str) and path and not Path(path).expanduser().is_absolute():
        data["path"] = os.path.abspath(base / path)


def dump_config(config: AppConfig) -> str:
    """The resolved config as YAML (what a run directory stores)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
