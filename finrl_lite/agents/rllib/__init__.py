"""Ray RLlib backend (new API stack: RLModule / Learner / EnvRunner): PPO and DQN.

Ray is an optional extra (``pip install 'finrl-lite[rllib]'``): importing this package does not import
it; building or loading an agent does, and raises :class:`~finrl_lite.errors.MissingDependencyError`
naming the extra when it is missing.
"""

from finrl_lite.agents.rllib.agent import RLLIB_ALGORITHMS, RLlibAgent, check_hyperparameters
from finrl_lite.agents.rllib.envs import make_rllib_env

__all__ = ["RLLIB_ALGORITHMS", "RLlibAgent", "check_hyperparameters", "make_rllib_env"]
