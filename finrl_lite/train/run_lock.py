"""An exclusive lock on a run directory, so that two processes never write one run.

``RUN/.lock`` holds the pid of the process that trains or back-tests the run. The lock itself is an ``flock`` on
that file, which the kernel drops when the process ends however it ends (``kill -9`` included): a lock file left
behind by a dead process is stale, detected and taken over (with a warning naming the pid). Where the file system
has no ``flock`` (some network file systems), the pid decides: a lock file whose pid is no longer running is stale.
A second process fails fast with a :class:`~finrl_lite.errors.ConfigError` naming the holder.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path
from types import TracebackType

from finrl_lite.errors import ConfigError
from finrl_lite.io import pid_alive

try:
    import fcntl
except ImportError:  # Windows: the pid decides
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "RunLock"]

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class RunLock:
    """Hold ``directory`` (created if missing) for this process: ``with RunLock(run): ...``.

    Args:
        directory: the run directory.

    Raises:
        ConfigError: on entering, when another running process holds the directory.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, or raise naming the process that holds it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(10):  # a holder that releases while we open may unlink the file under us: open again
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                if not self._lock(fd):
                    raise ConfigError(self._busy_text(self._holder(fd)))
                if not _same_file(fd, self.path):
                    os.close(fd)
                    continue
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            previous = self._holder(fd)
            if previous is not None and previous != os.getpid():
                state = "no longer running" if not pid_alive(previous) else "running, but no longer holding it"
                logger.warning("%s: taking over a stale lock of process %d (%s)", self.directory, previous, state)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._fd = fd
            return
        raise ConfigError(f"{self.path}: could not take the lock (the file keeps changing); is another process starting?")

    def release(self) -> None:
        """Give the lock up and delete the lock file (harmless when not held)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # while still holding it, so nobody locks a file that is about to vanish
        os.close(self._fd)
        self._fd = None

    def _lock(self, fd: int) -> bool:
        """Whether this process now holds ``fd``'s lock."""
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
            except OSError as exc:
                if exc.errno not in _NO_FLOCK:
                    raise
        holder = self._holder(fd)  # no flock here: the pid decides
        return holder is None or holder == os.getpid() or not pid_alive(holder)

    @staticmethod
    def _holder(fd: int) -> int | None:
        text = os.pread(fd, 64, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else None

    def _busy_text(self, holder: int | None) -> str:
        who = f"process {holder}" if holder is not None else "another process"
        return (
            f"{self.directory} is in use by {who} (lock file {self.path}): two processes writing one run directory would "
            f"mix their files. Wait for it to finish or stop it, or use another --out"
        )


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
