"""Crash safety: `kill -9` the paper loop 20 times at random moments of a replay session, restarting each time.

The broker must never hold an order twice, the journal must equal the broker, and the session must end exactly
where the uninterrupted one ends (same orders, same fills, same equity on every bar).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _paper_helpers import Session, broker_orders, journal_equity, journal_orders

REPO = Path(__file__).resolve().parents[2]
FORK_SERVER = Path(__file__).with_name("fork_server.py")


class ForkServer:
    """Client of tests/trade/fork_server.py: starts `finrl-lite` children and kills them."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
        self.proc = subprocess.Popen(
            [sys.executable, str(FORK_SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert json.loads(self._read()) == {"ready": True}

    def _read(self) -> str:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        assert line, "fork server died"
        return line

    def start(self, argv: list[str], log: Path) -> int:
        self.proc.stdin.write(json.dumps({"argv": argv, "log": str(log)}) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return int(json.loads(self._read())["pid"])

    def wait(self) -> dict[str, int]:
        return json.loads(self._read())

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(timeout=30)


def _bar_lines(log: Path, offset: int) -> list[float]:
    return [0.0] * (log.read_text()[offset:].count("\nbar ") if log.exists() else 0)


def _mid_bar(journal: Path, broker: Path) -> bool:
    """The kill left a bar half done: orders decided and not all sent, or fills the journal has not seen yet."""
    from finrl_lite.trade.journal import Journal

    j = Journal(journal, read_only=True)
    try:
        decided = j.in_flight_bar() is not None
        last = j.last_finished_bar()
    finally:
        j.close()
    at_broker = broker_orders(broker) if broker.exists() else {}
    unseen = any(v[3] != journal_orders(journal).get(cid, (None,) * 4)[3] for cid, v in at_broker.items())
    return decided or unseen or last is None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for_bars(log: Path, offset: int, pid: int, count: int) -> list[float]:
    """Times at which the child printed its first ``count`` bars (fewer if it ended first)."""
    seen: list[float] = []
    while len(seen) < count and _alive(pid):
        printed = len(_bar_lines(log, offset))
        seen += [time.monotonic()] * (printed - len(seen))
        time.sleep(0.002)
    return seen[:count]


def _sleep_within_the_bar(log: Path, offset: int, pid: int, seconds: float) -> bool:
    """Sleep ``seconds``, or less when the child finishes its next bar first (a bar's length varies with the load);
    True when it did."""
    bars = len(_bar_lines(log, offset))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _alive(pid):
        if len(_bar_lines(log, offset)) != bars:
            return True
        time.sleep(0.002)
    return False


@pytest.mark.slow
def test_twenty_kill_minus_nine_restarts(tiny_run: Path, reference_session: Session, tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    broker = journal.with_name("journal.sim_broker.sqlite")
    log = tmp_path / "children.log"
    argv = ["paper", str(tiny_run), "--journal", str(journal), "--no-live"]
    rng = random.Random(12)
    server = ForkServer()
    kills, progress, mid_bar = 0, [], 0
    per_bar: float | None = None
    try:
        for _ in range(20):
            offset = len(log.read_text()) if log.exists() else 0
            pid = server.start(argv, log)
            if per_bar is not None and rng.random() < 0.2:  # while it loads the run, reconciles, rebuilds its history
                time.sleep(rng.uniform(0.0, 0.5))
            elif per_bar is None:  # the first child: learn how long a bar takes here
                seen = _wait_for_bars(log, offset, pid, 3)
                per_bar = (seen[-1] - seen[0]) / 2 if len(seen) == 3 else 0.05
            else:  # while it trades: at a random point of the bar after its first one (so 20 kills fit the session)
                first = _wait_for_bars(log, offset, pid, 1)
                if _sleep_within_the_bar(log, offset, pid, rng.uniform(0.0, per_bar)) and first:
                    per_bar = 0.5 * per_bar + 0.5 * (time.monotonic() - first[0])  # bars run faster than measured
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # it had already finished
                pass
            ended = server.wait()
            kills += ended["signal"] == signal.SIGKILL
            assert ended["signal"] == signal.SIGKILL or ended["code"] == 0, log.read_text()[offset:]
            if journal.exists():
                done = journal_equity(journal)
                progress.append(len(done))
                mid_bar += _mid_bar(journal, broker)
        pid = server.start(argv, log)  # the last start runs to the end of the session
        assert server.wait() == {"pid": pid, "signal": 0, "code": 0}, log.read_text()[-3000:]
    finally:
        server.close()

    assert kills >= 15  # most children were killed, not finished
    assert len(set(progress)) >= 5  # the kills landed at many different points of the session
    # the broker never received an order twice, and holds exactly the uninterrupted session's orders and fills
    at_broker = broker_orders(broker)
    keys = [(cid.rsplit("-", 3)[0], v[0], v[1]) for cid, v in at_broker.items()]
    assert len(keys) == len(set(keys))
    assert at_broker == broker_orders(reference_session.broker)
    # journal == broker: every order the journal sent is the broker's, with the broker's status and fills
    journaled = {cid: v for cid, v in journal_orders(journal).items() if v[3] != "not_received"}
    assert journaled == at_broker
    # and the session ends exactly where the uninterrupted one ends, bar by bar
    assert journal_equity(journal) == journal_equity(reference_session.journal)
    print(f"kills {kills}, bars done after each kill {progress}, kills that left a bar half done {mid_bar}")
