"""finrl_lite.agents (arrives with its issue)."""
