"""Loading the paper-trading config: the ``paper:`` section of a YAML file (``configs/paper_sim.yaml``).

The run directory says what the agent learned on; this section says where and how it trades. ``--set``
overrides name its keys without the section (``--set risk.max_order_notional=1e5``).
"""

from __future__ import annotations

from pathlib import Path

from finrl_lite.config import load_config
from finrl_lite.paper_config import AlpacaConfig, PaperConfig, ReconcileConfig, ReplayConfig, RiskConfig

__all__ = ["AlpacaConfig", "PaperConfig", "ReconcileConfig", "ReplayConfig", "RiskConfig", "load_paper_config"]


def load_paper_config(path: str | Path | None, overrides: list[str] | None = None) -> PaperConfig:
    """The ``paper:`` section of a YAML config (defaults without a file or a section), with overrides applied.

    Raises:
        ConfigError: missing or unreadable file, bad YAML, unknown key, wrong type or out-of-range value (named
            ``paper.<field>``).
    """
    cfg = load_config(path, [f"paper.{item}" for item in overrides or []])  # `paper: null` with overrides: a new section
    return cfg.paper if cfg.paper is not None else PaperConfig()
