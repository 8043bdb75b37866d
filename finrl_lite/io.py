"""Atomic file writes: write to a temporary file in the same folder, then rename.

Temporary files are named ``.<name>.<pid>.<random>.tmp``: the pid of the writer lets
:func:`remove_stale_temp_files` delete the ones a killed process left behind (and only those).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write_json", "atomic_write_text", "pid_alive", "remove_stale_temp_files", "swap_in_directory"]

logger = logging.getLogger(__name__)

_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")
"""A temporary file of :func:`atomic_path`; group 1 is the writer's pid."""


@functools.cache
def _umask() -> int:
    """The process umask (read once; from /proc where it can be read without changing it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (at first use, before any thread writes)
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (signal 0 probes it without touching it)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, else delete it.

    A reader never sees a half-written file, and a failure leaves the previous file untouched. The file gets the
    permissions any new file gets (``0o666`` less the umask), not the ``0o600`` of a bare temporary file.
    Temporary files of ``path`` that a killed writer left behind are deleted first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON to ``path`` atomically (values JSON lacks, such as dates, as strings)."""
    return atomic_write_text(path, json.dumps(payload, indent=1, default=str))


def swap_in_directory(staging: str | Path, final: str | Path) -> Path:
    """Replace directory ``final`` by the complete directory ``staging``: ``final`` is moved to ``<final>.old``, ``staging``
    renamed to ``final``, the old one removed. A crash leaves ``final`` or a complete ``staging`` (and ``<final>.old``)
    for the reader to finish the swap with."""
    staging, final = Path(staging), Path(final)
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def remove_stale_temp_files(directory: str | Path) -> list[Path]:
    """Delete the temporary files of :func:`atomic_path` in ``directory`` whose writer is no longer running
    (a write interrupted by ``kill -9`` or a power cut); returns what was deleted. A live writer's files stay."""
    directory = Path(directory)
    return _remove_stale(directory.iterdir()) if directory.is_dir() else []


def _remove_stale(candidates: Iterable[Path]) -> list[Path]:
    removed: list[Path] = []
    for entry in candidates:
        match = _TEMP_NAME.match(entry.name)
        if match is None or not entry.is_file() or pid_alive(int(match.group(1))):
            continue
        with contextlib.suppress(FileNotFoundError):  # another cleaner got there first
            entry.unlink()
            removed.append(entry)
    if removed:
        logger.info("removed %d temporary file(s) of interrupted writes: %s", len(removed), ", ".join(map(str, removed)))
    return removed
