"""Gymnasium registration of the M-ELO environment as ``finrl_lite/Melo-v0``.

After :func:`register_melo`::

    gymnasium.make("finrl_lite/Melo-v0")                                          # one symbol stream
    gymnasium.make_vec("finrl_lite/Melo-v0", num_envs=64, vectorization_mode="vector_entry_point")
"""

from __future__ import annotations

import gymnasium

__all__ = ["MELO_ID", "register_melo"]

MELO_ID = "finrl_lite/Melo-v0"


def register_melo() -> None:
    """Register ``finrl_lite/Melo-v0`` with gymnasium (idempotent)."""
    if MELO_ID in gymnasium.registry:
        return
    gymnasium.register(
        id=MELO_ID,
        entry_point="finrl_lite.envs.melo.gym_adapter:MeloGymEnv",
        vector_entry_point="finrl_lite.envs.melo.gym_adapter:MeloGymVectorEnv",
        max_episode_steps=None,
    )
