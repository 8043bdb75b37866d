"""Native on-device agents: they read torch tensors straight from the batched environment cores."""

from finrl_lite.agents.native.ddqn import (
    DDQNConfig,
    DoubleDQN,
    QNetwork,
    ReplayBatch,
    ReplayBuffer,
    double_dqn_targets,
    linear_epsilon,
)

__all__ = [
    "DDQNConfig",
    "DoubleDQN",
    "QNetwork",
    "ReplayBatch",
    "ReplayBuffer",
    "double_dqn_targets",
    "linear_epsilon",
]
