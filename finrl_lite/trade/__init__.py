"""finrl_lite.trade (arrives with its issue)."""
