"""Fork server for the kill -9 test: imports `finrl-lite` once, then forks one child per request.

Each child runs the real CLI (``finrl_lite.cli.app`` with the request's arguments) with its output in a log
file; the test kills it with SIGKILL. Forking from a process that has already imported torch, pandas and
the library keeps 21 starts of the CLI within the test's budget; the server itself never runs a torch
operation, so the children start from a clean state. Protocol on stdin/stdout, one JSON object per line:
request ``{"argv": [...], "log": path}`` -> ``{"pid": n}``, then ``{"pid": n, "signal": s, "code": c}`` when it ends.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def main() -> None:
    import exchange_calendars  # noqa: F401
    import torch._dynamo  # noqa: F401  (imported when the agent builds its optimizer: 1 s)

    import finrl_lite.agents.native.ppo  # noqa: F401
    import finrl_lite.trade.session  # noqa: F401
    from finrl_lite.cli import app

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            code = 0
            try:
                app(args=request["argv"], prog_name="finrl-lite")
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        signal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        print(json.dumps({"pid": pid, "signal": signal, "code": code}), flush=True)


if __name__ == "__main__":
    main()
