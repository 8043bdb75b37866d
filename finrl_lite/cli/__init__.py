"""`finrl-lite`: the command line (typer + rich). The CLI owns progress, console output and paths.

Each command group lives in its own module and is attached to the root app by :func:`register_commands`.
"""

from __future__ import annotations

from finrl_lite.cli.app import app, main

__all__ = ["app", "main", "register_commands"]

_registered = False


def register_commands() -> None:
    """Attach every command group to the root app (idempotent)."""
    global _registered
    if _registered:
        return
    from finrl_lite.cli.data import data_app
    from finrl_lite.cli.ensemble import ensemble
    from finrl_lite.cli.melo import melo_app
    from finrl_lite.cli.paper import paper_app
    from finrl_lite.cli.population import pbt
    from finrl_lite.cli.train import backtest, train

    app.add_typer(data_app, name="data")
    app.add_typer(melo_app, name="melo")
    app.add_typer(paper_app, name="paper")
    app.command("train")(train)
    app.command("backtest")(backtest)
    app.command("pbt")(pbt)
    app.command("ensemble")(ensemble)
    _registered = True


register_commands()
