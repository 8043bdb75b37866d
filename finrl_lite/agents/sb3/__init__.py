"""stable-baselines3 backend."""
