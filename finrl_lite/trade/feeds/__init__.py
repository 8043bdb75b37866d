"""Bar feeds: :class:`~finrl_lite.trade.feeds.replay.ReplayFeed` (stored bars on a clock) and
:class:`~finrl_lite.trade.feeds.alpaca.AlpacaFeed` (the latest completed bars from Alpaca; needs alpaca-py)."""
