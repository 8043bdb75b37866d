"""The gymnasium ids of the finrl_lite environments, registered once ``finrl_lite`` and gymnasium are both imported.

After ``import finrl_lite`` (in either order with ``import gymnasium``)::

    gymnasium.make("finrl_lite/StockTrading-v0")
    gymnasium.make_vec("finrl_lite/StockTrading-v0", num_envs=64, vectorization_mode="vector_entry_point")

``import finrl_lite`` stays light: it imports neither gymnasium (nor numpy) nor torch. When gymnasium is already
imported the ids are registered at once; otherwise a one-shot import hook registers them right after gymnasium's own
import. Registrations name each factory by import path (``"module:function"``), so the torch environment modules are
imported only when ``gymnasium.make`` / ``make_vec`` first builds one.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["GYM_ENVS", "PORTFOLIO_ID", "STOCK_TRADING_ID", "register_gym_envs", "register_when_gymnasium_is_imported"]

STOCK_TRADING_ID = "finrl_lite/StockTrading-v0"
PORTFOLIO_ID = "finrl_lite/PortfolioAllocation-v0"
MELO_ID = "finrl_lite/Melo-v0"

GYM_ENVS: dict[str, tuple[str, str]] = {
    STOCK_TRADING_ID: (
        "finrl_lite.envs.registration:make_stock_trading_env",
        "finrl_lite.envs.registration:make_stock_trading_vec_env",
    ),
    PORTFOLIO_ID: (
        "finrl_lite.envs.portfolio:make_portfolio_env",
        "finrl_lite.envs.portfolio:make_portfolio_vec_env",
    ),
    MELO_ID: (
        "finrl_lite.envs.melo.registration:make_melo_env",
        "finrl_lite.envs.melo.registration:make_melo_vec_env",
    ),
}
"""Environment id -> (``entry_point``, ``vector_entry_point``) of its gymnasium registration."""


def register_gym_envs() -> None:
    """Register every id of :data:`GYM_ENVS` with gymnasium (idempotent: ids already registered are kept)."""
    import gymnasium

    for env_id, (entry_point, vector_entry_point) in GYM_ENVS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, vector_entry_point=vector_entry_point)


class _RegisteringLoader(importlib.abc.Loader):
    """gymnasium's own loader, followed by :func:`register_gym_envs` once the module has run."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        register_gym_envs()

    def __getattr__(self, name: str) -> Any:  # get_source, get_resource_reader...: the real loader's
        return getattr(self._loader, name)


class _AfterGymnasiumImport(importlib.abc.MetaPathFinder):
    """Finds gymnasium like the other finders would, with a loader that registers our ids after it (once)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "gymnasium":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


def register_when_gymnasium_is_imported() -> None:
    """Register the ids now if gymnasium is imported, else right after its import (what ``import finrl_lite`` does)."""
    gymnasium = sys.modules.get("gymnasium")
    if gymnasium is not None and hasattr(gymnasium, "register"):
        register_gym_envs()
    elif not any(isinstance(finder, _AfterGymnasiumImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterGymnasiumImport())
