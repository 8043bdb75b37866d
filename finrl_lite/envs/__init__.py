"""finrl_lite.envs (arrives with its issue)."""
