"""Environment steps consumed per second *including learning*: native PPO on StockTradingVecEnv against
SB3 PPO on FinRL's own StockTradingEnv, same data, same run. Prints the throughputs and two ratios:

- ``vs SB3 FinRL tutorial``: SB3 with FinRL's tutorial PPO_PARAMS (one env, n_steps 2048, minibatches of 128,
  10 epochs, ent_coef 0.01, lr 2.5e-4): what a FinRL user runs, the headline ratio;
- ``vs SB3 same settings``: SB3 with the native side's settings: as many FinRL envs (DummyVecEnv) x 32 steps
  per env, 4 epochs x 4 minibatches, the same network (64, 64 tanh, separate actor and critic, orthogonal
  init), initial log-std, annealed learning rate, entropy and loss coefficients, and a running observation
  normalisation (VecNormalize, rewards left alone). SB3's ``clip_range_vf`` clips the value differently from
  our clipped value loss and is left off. This ratio is the implementation alone.

The SB3 same-settings side times one whole iteration (a rollout of num_envs x 32 steps and its update), from
the start of the rollout (the env resets before it excluded); the tutorial side, like the native side, is
timed after a warm-up iteration, and the two are measured in interleaved rounds (``--repeats``) whose medians
give the ratios, the machine being possibly shared.

    python benchmarks/bench_train.py            # ~3 minutes on 2 CPU cores
    python benchmarks/bench_train.py --quick
    python benchmarks/bench_train.py --device cuda --num-envs 4096
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch
from finrl_peer import dow_like_market, finrl_frame, make_finrl_env, quiet

from finrl_lite.agents.native.ppo import NativePPO, PPOConfig
from finrl_lite.config import StockTradingEnvConfig
from finrl_lite.train.environment import make_env

INDICATORS = ["macd", "boll_ub", "boll_lb", "rsi_30", "cci_30", "dx_30", "close_30_sma", "close_60_sma"]
NATIVE = PPOConfig(num_steps=32, num_minibatches=4, update_epochs=4)
"""The native side's settings (the other fields are PPOConfig's defaults)."""


def bench_finrl_sb3(market, steps: int) -> float:  # noqa: ANN001
    """SB3 PPO with FinRL's tutorial settings on one FinRL env."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = make_finrl_env(market, INDICATORS)
    vec = DummyVecEnv([lambda: env])
    # FinRL's tutorial PPO_PARAMS (n_steps 2048, batch 128, ent_coef 0.01, lr 2.5e-4)
    model = PPO("MlpPolicy", vec, n_steps=2048, batch_size=128, ent_coef=0.01, learning_rate=2.5e-4, seed=0, device="cpu")
    with quiet():
        model.learn(2048)  # warm-up
        before, start = model.num_timesteps, time.perf_counter()
        model.learn(steps, reset_num_timesteps=False)  # whole rollouts of 2048 steps
    return (model.num_timesteps - before) / (time.perf_counter() - start)


def bench_sb3_same_settings(market, num_envs: int, cfg: PPOConfig = NATIVE) -> float:  # noqa: ANN001
    """SB3 PPO with the native side's settings on ``num_envs`` FinRL envs: one iteration, timed from its rollout."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    class RolloutClock(BaseCallback):
        start = 0.0

        def _on_rollout_start(self) -> None:
            self.start = self.start or time.perf_counter()

        def _on_step(self) -> bool:
            return True

    frame = finrl_frame(market, INDICATORS)  # one frame shared by the envs
    vec = DummyVecEnv([functools.partial(make_finrl_env, market, INDICATORS, frame=frame)] * num_envs)
    vec = VecNormalize(vec, norm_obs=cfg.norm_obs, norm_reward=False, clip_obs=10.0, gamma=cfg.gamma)
    hidden = list(cfg.hidden_sizes)
    model = PPO(
        "MlpPolicy",
        vec,
        n_steps=cfg.num_steps,
        batch_size=num_envs * cfg.num_steps // cfg.num_minibatches,
        n_epochs=cfg.update_epochs,
        learning_rate=(lambda remaining: cfg.learning_rate * remaining) if cfg.anneal_lr else cfg.learning_rate,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        clip_range=cfg.clip_coef,
        normalize_advantage=cfg.norm_adv,
        ent_coef=cfg.ent_coef,
        vf_coef=cfg.vf_coef,
        max_grad_norm=cfg.max_grad_norm,
        target_kl=cfg.target_kl,
        policy_kwargs={
            "net_arch": {"pi": hidden, "vf": hidden},
            "activation_fn": torch.nn.Tanh,
            "log_std_init": cfg.init_log_std,
        },
        seed=cfg.seed,
        device="cpu",
    )
    clock = RolloutClock()
    with quiet():
        model.learn(num_envs * cfg.num_steps, callback=clock)
    return model.num_timesteps / (time.perf_counter() - clock.start)


def bench_native(market, num_envs: int, steps: int, device: str, dtype: str) -> float:  # noqa: ANN001
    cfg = StockTradingEnvConfig(num_envs=num_envs, episode_length=252, device=device, dtype=dtype, scales={"features": 0.01})
    env = make_env(cfg, market, seed=0)
    agent = NativePPO(env, NATIVE)
    agent.learn(num_envs * NATIVE.num_steps)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    before, start = agent.num_timesteps, time.perf_counter()
    agent.learn(steps)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (agent.num_timesteps - before) / (time.perf_counter() - start)


def _runs(values: list[float]) -> str:
    return f"   (median of {', '.join(f'{v:,.0f}' for v in values)})" if len(values) > 1 else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller budgets")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--dtype", default="float64", choices=["float32", "float64"], help="accounting dtype (float64: the fused CPU step)"
    )
    parser.add_argument("--num-envs", type=int, nargs="*", default=[256, 1024])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for both sides (0: torch's default)")
    parser.add_argument("--tutorial-steps", type=int, help="timed steps of the FinRL-tutorial peer (default 4096, quick 2048)")
    parser.add_argument("--iterations", type=int, help="timed native iterations per num_envs (default 16, quick 4)")
    parser.add_argument(
        "--repeats", type=int, help="rounds of the tutorial peer and the native side, interleaved; medians (default 3, quick 1)"
    )
    parser.add_argument(
        "--same-settings-max-envs",
        type=int,
        default=4096,
        help="run the same-settings SB3 peer only up to this many envs (its FinRL envs step one by one in Python)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    market = dow_like_market().slice(("2013-02-08", "2016-12-31"))
    print(
        f"data: {market.num_tickers} tickers x {market.num_dates} bars, {len(INDICATORS)} indicators; "
        f"torch threads {torch.get_num_threads()}; native PPO: {NATIVE.num_steps} steps per env, "
        f"{NATIVE.update_epochs} epochs x {NATIVE.num_minibatches} minibatches"
    )
    tutorial_steps = args.tutorial_steps or (2048 if args.quick else 4096)
    iterations = args.iterations or (4 if args.quick else 16)
    repeats = args.repeats or (1 if args.quick else 3)
    same = {n: bench_sb3_same_settings(market, n) for n in args.num_envs if n <= args.same_settings_max_envs}  # once
    tutorial: list[float] = []
    ours: dict[int, list[float]] = {n: [] for n in args.num_envs}
    for _ in range(repeats):  # interleaved, so that a busy spell of a shared machine falls on both sides
        tutorial.append(bench_finrl_sb3(market, tutorial_steps))
        for n in args.num_envs:
            ours[n].append(bench_native(market, n, n * NATIVE.num_steps * iterations, args.device, args.dtype))
    peer = statistics.median(tutorial)
    label = "SB3 PPO on FinRL StockTradingEnv, FinRL tutorial settings (1 env, 10 epochs x 128)"
    print(f"{label}: {peer:10,.0f} env-steps/s{_runs(tutorial)}")
    for n in args.num_envs:
        minibatch = n * NATIVE.num_steps // NATIVE.num_minibatches
        settings = f"{n} envs, {NATIVE.update_epochs} epochs x {minibatch:,}"
        if n in same:
            print(f"SB3 PPO on FinRL StockTradingEnv, same settings ({settings}): {same[n]:10,.0f} env-steps/s")
        native = statistics.median(ours[n])
        vs_same = f"   vs SB3 same settings {native / same[n]:8.1f}x" if n in same else ""
        print(
            f"native PPO, StockTradingVecEnv num_envs={n:6d} ({args.device}, {args.dtype}): {native:12,.0f} env-steps/s   "
            f"ratio vs SB3 FinRL tutorial {native / peer:8.1f}x{vs_same}{_runs(ours[n])}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
