"""The ``env`` config section: one settings model per env kind, a union discriminated by ``kind``.

Each env kind is declared once, as an :class:`EnvKind` entry of :data:`ENV_KINDS`: its settings model (a
subclass of :class:`EnvConfigBase` whose ``kind`` is a one-value ``Literal``), its vector-environment class
and the function that turns the settings into the environment's parameters, both by import path. This
module imports only pydantic, so :mod:`finrl_lite.config` validates ``env`` without importing torch: a field
or a reward of another kind is an error when the config is loaded, naming the field and what is allowed.

Adding an env kind is one module (the environment, its settings model and parameter builder) plus one entry::

    class MyEnvConfig(EnvConfigBase):
        kind: Literal["my_env"] = "my_env"
        leverage: float = 1.0

    ENV_KINDS.register(EnvKind("my_env", MyEnvConfig, env="mypkg.env:MyVecEnv", params="mypkg.env:my_params"))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, SerializeAsAny, ValidationError, ValidatorFunctionWrapHandler, WrapValidator

from finrl_lite.config_base import StrictModel
from finrl_lite.errors import ConfigError
from finrl_lite.registry import Registry, Target, resolve

__all__ = [
    "DEFAULT_ENV_KIND",
    "ENV_KINDS",
    "EnvConfig",
    "EnvConfigBase",
    "EnvKind",
    "PortfolioEnvConfig",
    "ScalesConfig",
    "StockTradingEnvConfig",
    "env_config_model",
]

DEFAULT_ENV_KIND = "stock_trading"
"""The kind of an ``env`` section that names none."""


class ScalesConfig(StrictModel):
    """Fixed observation scaling factors (never statistics of the data, which would leak the future)."""

    cash: float | None = Field(None, description="Factor on cash; None: 1 / initial_amount.")
    price: float = Field(1.0, description="Factor on prices.")
    holdings: float | None = Field(None, description="Factor on holdings; None: 1 / hmax.")
    features: float = Field(1.0, description="Factor on every per-ticker feature.")
    risk: float = Field(1.0, description="Factor on the risk series when observed.")


class EnvConfigBase(StrictModel):
    """Settings every env kind shares: the batch, the device, the account and the episodes.

    Not built directly: each kind subclasses it with ``kind: Literal["<name>"]`` and its own fields.
    """

    kind: str = Field(description="The env kind (a name of ENV_KINDS): stock_trading (default) or portfolio built in.")
    num_envs: int = Field(64, ge=1, le=1_000_000, description="Environments stepped together in training.")
    initial_amount: float = Field(1_000_000.0, gt=0, description="Starting cash.")
    execution: Literal["next_open", "close"] = Field(
        "next_open", description="Fill at the next bar's open, or at the close just observed (FinRL)."
    )
    features: list[str] | None = Field(None, description="Per-ticker features observed; None: every indicator of the data.")
    reward_scaling: float = Field(1e-4, gt=0, description="Factor on the asset_change / value_change reward.")
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

    def model_post_init(self, context: Any, /) -> None:
        if type(self) is EnvConfigBase:
            raise TypeError("EnvConfigBase holds the shared env settings; build a kind's model (StockTradingEnvConfig...)")


class StockTradingEnvConfig(EnvConfigBase):
    """``env.kind: stock_trading``: shares per ticker, FinRL's market rules (see ``StockTradingParams``)."""

    kind: Literal["stock_trading"] = Field("stock_trading", description="Shares per ticker (the default kind).")
    hmax: float = Field(100.0, gt=0, description="Shares traded by an action of magnitude 1.")
    buy_cost_pct: float = Field(0.001, ge=0, lt=1, description="Fee on a buy's notional (0.001 = 10 bps).")
    sell_cost_pct: float = Field(0.001, ge=0, lt=1, description="Fee on a sell's notional.")
    min_cost: float = Field(0.0, ge=0, description="Minimum fee per executed order.")
    slippage_bps: float = Field(0.0, ge=0, lt=10_000, description="Adverse price move on every fill, in bps.")
    lot_size: int = Field(1, ge=1, description="Shares trade in multiples of this (100 for A-shares).")
    fractional: bool = Field(False, description="Trade fractional shares.")
    short_selling: bool = Field(False, description="Allow negative holdings.")
    t_plus_1: bool = Field(False, description="Shares bought on a day cannot be sold that day.")
    turbulence_threshold: float | None = Field(
        None, description="Liquidate and block buys at or above this risk value; None disables."
    )
    risk_series: Literal["turbulence", "vix"] = Field("turbulence", description="Series compared with the threshold.")
    observe_risk: bool = Field(False, description="Append the risk series to the observation.")
    observe_valid: bool = Field(False, description="Append the per-ticker valid mask to the observation.")
    reward: Literal["asset_change", "log_return", "differential_sharpe"] = Field(
        "asset_change", description="Change of total asset x reward_scaling (FinRL), log return, or differential Sharpe."
    )
    scales: ScalesConfig = Field(default_factory=ScalesConfig)


class PortfolioEnvConfig(EnvConfigBase):
    """``env.kind: portfolio``: target weights by softmax, one fee on the traded notional (see ``PortfolioParams``)."""

    kind: Literal["portfolio"] = Field("portfolio", description="Target portfolio weights by softmax.")
    cost_pct: float = Field(0.001, ge=0, lt=1, description="Fee on the traded notional of a rebalance (0.001 = 10 bps).")
    cash_weight: bool = Field(True, description="The action has a cash weight (N + 1 scores).")
    action_scale: float = Field(5.0, gt=0, description="Scores are multiplied by this before the softmax.")
    lookback: int = Field(20, ge=2, description="Bars in the trailing covariance window.")
    reward: Literal["log_return", "value_change"] = Field(
        "log_return", description="Log return, or change of value x reward_scaling."
    )


@dataclass(frozen=True)
class EnvKind:
    """One env kind.

    Attributes:
        name: the ``env.kind`` value.
        config: its settings model (an :class:`EnvConfigBase` subclass whose ``kind`` defaults to ``name``).
        env: the vector-environment class, called ``env(market, params, num_envs=, device=, seed=, step_mode=)``.
        params: callable ``(config) -> params`` giving the environment's parameters from the settings.
        description: one line for messages and docs.
    """

    name: str
    config: type[EnvConfigBase]
    env: Target
    params: Target
    description: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.config, type) and issubclass(self.config, EnvConfigBase)):
            raise ConfigError(f"env kind '{self.name}': config must subclass EnvConfigBase, got {self.config!r}")
        if self.config.model_fields["kind"].default != self.name:
            raise ConfigError(
                f"env kind '{self.name}': {self.config.__name__}.kind must default to '{self.name}' "
                f"(declare kind: Literal['{self.name}'] = '{self.name}')"
            )

    def build_params(self, config: EnvConfigBase) -> Any:
        """The environment's parameters for ``config`` (the builder is imported now)."""
        return resolve(self.params)(config)

    def env_class(self) -> Any:
        """The vector-environment class (imported now)."""
        return resolve(self.env)


ENV_KINDS: Registry[EnvKind] = Registry(
    "env kind",
    [
        EnvKind(
            DEFAULT_ENV_KIND,
            StockTradingEnvConfig,
            env="finrl_lite.envs.stock_trading:StockTradingVecEnv",
            params="finrl_lite.train.environment:stock_trading_params",
            description="shares per ticker, FinRL's market rules",
        ),
        EnvKind(
            "portfolio",
            PortfolioEnvConfig,
            env="finrl_lite.envs.portfolio:PortfolioAllocationVecEnv",
            params="finrl_lite.train.environment:portfolio_params",
            description="target weights by softmax over scores",
        ),
    ],
)
"""Every env kind, by name."""


def env_config_model(section: Any) -> type[EnvConfigBase] | None:
    """The settings model a raw ``env`` mapping (or settings object) selects by its ``kind``; None: unknown kind."""
    if isinstance(section, EnvConfigBase):
        kind: Any = section.kind
    elif isinstance(section, Mapping):
        kind = section.get("kind", DEFAULT_ENV_KIND)
    else:
        return None
    return ENV_KINDS.get(kind).config if kind in ENV_KINDS else None


def _validate_env_config(value: Any, handler: ValidatorFunctionWrapHandler) -> EnvConfigBase:
    """Validate ``value`` with the settings model of the kind it names (the union's discriminator)."""
    if not isinstance(value, EnvConfigBase | Mapping):
        return handler(value)  # pydantic's own "a valid dictionary" error
    model = env_config_model(value)
    if model is None:
        kind = value.kind if isinstance(value, EnvConfigBase) else value.get("kind")
        error = {"type": "literal_error", "loc": ("kind",), "input": kind, "ctx": {"expected": ENV_KINDS.expected()}}
        raise ValidationError.from_exception_data("EnvConfig", [error])  # type: ignore[list-item]
    if isinstance(value, model):
        return value
    return model.model_validate(value.model_dump() if isinstance(value, EnvConfigBase) else value)


EnvConfig = Annotated[SerializeAsAny[EnvConfigBase], WrapValidator(_validate_env_config)]
"""The ``env`` section: the settings model of the kind it names (``stock_trading`` when it names none)."""
