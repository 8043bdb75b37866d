"""finrl_lite.train (arrives with its issue)."""
