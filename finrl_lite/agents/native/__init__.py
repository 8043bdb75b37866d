"""Native on-device agents: they read torch tensors straight from the batched environment cores."""

from finrl_lite.agents.native.ddqn import (
    BatchedTorchEnv,
    DDQNConfig,
    DoubleDQN,
    QNetwork,
    ReplayBatch,
    ReplayBuffer,
    double_dqn_targets,
    linear_epsilon,
)

__all__ = [
    "BatchedTorchEnv",
    "DDQNConfig",
    "DoubleDQN",
    "QNetwork",
    "ReplayBatch",
    "ReplayBuffer",
    "double_dqn_targets",
    "linear_epsilon",
]
