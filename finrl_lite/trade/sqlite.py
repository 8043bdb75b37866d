"""The SQLite plumbing of the paper-trading files (the journal and the sim broker's account): durable connections
and atomic transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["connect", "transaction"]


def connect(path: Path | None, read_only: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit, :func:`transaction`): in memory when ``path`` is
    None; a writable file is in WAL mode with full fsync, so a committed write survives a crash of the process or
    the machine."""
    if path is None:
        return sqlite3.connect(":memory:", isolation_level=None)
    if read_only:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic, durable write (BEGIN IMMEDIATE ... COMMIT; rolled back on any exception)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
