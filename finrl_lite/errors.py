"""Exceptions raised by finrl_lite.

Every error a user can cause by giving bad input derives from :class:`FinrlLiteError`, so the CLI can
turn it into a one-line message and exit code 2 instead of a traceback.
"""

from __future__ import annotations

__all__ = ["FinrlLiteError", "ConfigError", "DataError", "MissingDependencyError", "TrainingError"]


class FinrlLiteError(Exception):
    """Base class of the errors caused by user input or environment (not by a bug)."""


class ConfigError(FinrlLiteError, ValueError):
    """A configuration file or override is missing, malformed or out of range."""


class DataError(FinrlLiteError, ValueError):
    """Market data is missing, malformed or inconsistent; the message names file, row or field."""


class TrainingError(FinrlLiteError, RuntimeError):
    """Training diverged: a loss or a network weight is no longer finite; the message says when and what to try."""


class MissingDependencyError(FinrlLiteError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


def require(module: str, extra: str, purpose: str) -> object:
    """Import an optional module or raise :class:`MissingDependencyError` naming the pip extra.

    Args:
        module: Importable module name, e.g. ``"alpaca.data"``.
        extra: The finrl-lite extra that installs it, e.g. ``"alpaca"``.
        purpose: What the module is needed for, used in the message.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the optional package '{module.split('.')[0]}': pip install 'finrl-lite[{extra}]'"
        ) from exc
