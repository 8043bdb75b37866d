"""The gymnasium registration `finrl_lite/Melo-v0` (single and vector entry points)."""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium.utils.env_checker import check_env

from finrl_lite.envs.melo.registration import MELO_ID, register_melo


def test_make_and_check_env() -> None:
    register_melo()
    register_melo()  # idempotent
    env = gymnasium.make(MELO_ID, config={"sim": {"periods_per_day": 5}})
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_make_vec_same_step_autoreset() -> None:
    register_melo()
    venv = gymnasium.make_vec(
        MELO_ID, num_envs=6, vectorization_mode="vector_entry_point", config={"sim": {"periods_per_day": 3}}, num_symbols=3
    )
    obs, _ = venv.reset(seed=1)
    assert obs.shape == (6, venv.single_observation_space.shape[0]) and obs.dtype == np.float32
    for _ in range(3):
        obs, reward, terminated, truncated, infos = venv.step(venv.action_space.sample())
    assert truncated.all() and not terminated.any()
    assert infos["_final_obs"].all() and infos["final_obs"][0].shape == obs[0].shape
    assert reward.shape == (6,) and set(infos) >= {"fill_rate", "markout_1s_bps", "h_ms"}
    assert np.allclose(obs[:, 1], 0.0)  # the new day starts at time-of-day 0
    venv.close()


def test_sb3_trains_on_melo() -> None:
    """SB3 learns on the registered env unchanged (tiny budget; nothing about skill is claimed)."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    register_melo()
    env = gymnasium.make(MELO_ID, config={"sim": {"periods_per_day": 8}})
    sb3_check_env(env.unwrapped, warn=False)
    model = DQN("MlpPolicy", env, learning_starts=8, buffer_size=200, batch_size=8, train_freq=4, seed=0, device="cpu")
    model.learn(48)
    action, _ = model.predict(env.observation_space.sample(), deterministic=True)
    assert env.action_space.contains(int(action))
    assert model._n_updates > 0


def test_rllib_trains_on_melo() -> None:
    """RLlib's new API stack trains DQN on the registered env id (tiny budget)."""
    import pytest

    pytest.importorskip("ray.rllib")
    import ray
    from ray.rllib.algorithms.dqn import DQNConfig
    from ray.tune.registry import register_env

    register_melo()
    register_env("finrl_lite_melo_test", lambda cfg: gymnasium.make(MELO_ID, config={"sim": {"periods_per_day": 8}}))
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        config = (
            DQNConfig()
            .environment("finrl_lite_melo_test")
            .env_runners(num_env_runners=0)
            .learners(num_learners=0)
            .debugging(seed=0)
            .training(train_batch_size=16, num_steps_sampled_before_learning_starts=16)
            .reporting(min_sample_timesteps_per_iteration=32)
            .rl_module(model_config={"fcnet_hiddens": [16]})
        )
        algo = config.build_algo()
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 32
        algo.stop()
    finally:
        if started:
            ray.shutdown()
