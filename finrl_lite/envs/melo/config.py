"""The ``melo`` config models (defined in :mod:`finrl_lite.melo_config`, which imports only pydantic)."""

from finrl_lite.melo_config import (
    MeloAgentConfig,
    MeloConfig,
    MeloEnvConfig,
    MeloEvalConfig,
    MeloSimConfig,
    MeloTrainConfig,
)

__all__ = ["MeloAgentConfig", "MeloConfig", "MeloEnvConfig", "MeloEvalConfig", "MeloSimConfig", "MeloTrainConfig"]
