"""Broker adapters: :class:`~finrl_lite.trade.brokers.sim.SimBroker` (the environment's fills, its own SQLite
account) and :class:`~finrl_lite.trade.brokers.alpaca.AlpacaBroker` (an Alpaca paper account; needs alpaca-py)."""
