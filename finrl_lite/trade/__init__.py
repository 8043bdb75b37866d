"""Paper trading: a restart-safe loop from new bars to broker orders.

``finrl-lite paper`` builds a session with :func:`finrl_lite.trade.session.open_session`: the trained run
(:mod:`~finrl_lite.trade.run`), a feed (:mod:`~finrl_lite.trade.feeds`: replay, alpaca), a broker
(:mod:`~finrl_lite.trade.brokers`: sim, alpaca), the SQLite journal (:mod:`~finrl_lite.trade.journal`), risk
limits (:mod:`~finrl_lite.trade.risk`), and :class:`~finrl_lite.trade.loop.PaperTrader`, which reconciles the
journal with the broker (:mod:`~finrl_lite.trade.reconcile`) and trades bar by bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finrl_lite.lazy import lazy_exports

__all__ = ["Journal", "PaperConfig", "PaperTrader", "ReplayFeed", "SimBroker", "load_paper_config", "open_session"]

__getattr__ = lazy_exports(
    __name__,
    {
        "Journal": ".journal",
        "PaperConfig": ".config",
        "load_paper_config": ".config",
        "PaperTrader": ".loop",
        "ReplayFeed": ".feeds.replay",
        "SimBroker": ".brokers.sim",
        "open_session": ".session",
    },
)

if TYPE_CHECKING:
    from finrl_lite.trade.brokers.sim import SimBroker
    from finrl_lite.trade.config import PaperConfig, load_paper_config
    from finrl_lite.trade.feeds.replay import ReplayFeed
    from finrl_lite.trade.journal import Journal
    from finrl_lite.trade.loop import PaperTrader
    from finrl_lite.trade.session import open_session
