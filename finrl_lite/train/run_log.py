"""A run's log file, started only once the run directory is locked (so that a process refused by the lock writes
nothing into the run it was refused)."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["run_log"]


@contextlib.contextmanager
def run_log(directory: Path, name: str) -> Iterator[Callable[[], None]]:
    """Collect the ``finrl_lite`` log of a run; the yielded function starts writing it (and what came before) to
    ``directory/name``, once the run directory is locked. Records below the logger's level are never made: the CLI
    sets it to INFO."""
    root = logging.getLogger("finrl_lite")
    buffer = logging.handlers.MemoryHandler(capacity=100_000, flushLevel=logging.CRITICAL + 1, flushOnClose=False)
    root.addHandler(buffer)
    handlers: list[logging.Handler] = [buffer]

    def start() -> None:
        file = logging.FileHandler(directory / name)
        file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        buffer.setTarget(file)
        buffer.flush()
        root.removeHandler(buffer)
        root.addHandler(file)
        handlers.append(file)

    try:
        yield start
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
