"""Environment steps consumed per second *including learning*: native PPO on StockTradingVecEnv against
SB3 PPO on FinRL's own StockTradingEnv, same data, same run. Prints both and the ratio.

    python benchmarks/bench_train.py            # ~2 minutes on 2 CPU cores
    python benchmarks/bench_train.py --quick
    python benchmarks/bench_train.py --device cuda --num-envs 4096
"""

from __future__ import annotations

import argparse
import time

import torch
from finrl_peer import dow_like_market, make_finrl_env, quiet

from finrl_lite.agents.native.ppo import NativePPO, PPOConfig
from finrl_lite.config import StockTradingEnvConfig
from finrl_lite.train.environment import make_env

INDICATORS = ["macd", "boll_ub", "boll_lb", "rsi_30", "cci_30", "dx_30", "close_30_sma", "close_60_sma"]


def bench_finrl_sb3(market, steps: int) -> float:  # noqa: ANN001
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = make_finrl_env(market, INDICATORS)
    vec = DummyVecEnv([lambda: env])
    # FinRL's tutorial PPO_PARAMS (n_steps 2048, batch 128, ent_coef 0.01, lr 2.5e-4)
    model = PPO("MlpPolicy", vec, n_steps=2048, batch_size=128, ent_coef=0.01, learning_rate=2.5e-4, seed=0, device="cpu")
    with quiet():
        model.learn(2048)  # warm-up
        start = time.perf_counter()
        model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - start)


def bench_native(market, num_envs: int, steps: int, device: str, dtype: str) -> float:  # noqa: ANN001
    cfg = StockTradingEnvConfig(num_envs=num_envs, episode_length=252, device=device, dtype=dtype, scales={"features": 0.01})
    env = make_env(cfg, market, seed=0)
    agent = NativePPO(env, PPOConfig(num_steps=32, num_minibatches=4, update_epochs=4))
    agent.learn(num_envs * 32)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    before, start = agent.num_timesteps, time.perf_counter()
    agent.learn(steps)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (agent.num_timesteps - before) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller budgets")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--dtype", default="float64", choices=["float32", "float64"], help="accounting dtype (float64: the fused CPU step)"
    )
    parser.add_argument("--num-envs", type=int, nargs="*", default=[256, 1024])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for both sides (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    market = dow_like_market().slice(("2013-02-08", "2016-12-31"))
    print(
        f"data: {market.num_tickers} tickers x {market.num_dates} bars, {len(INDICATORS)} indicators; "
        f"torch threads {torch.get_num_threads()}"
    )
    peer_steps = 2048 if args.quick else 4096
    peer = bench_finrl_sb3(market, peer_steps)
    print(f"SB3 PPO on FinRL StockTradingEnv: {peer:10,.0f} env-steps/s (learning included)")
    for n in args.num_envs:
        steps = n * 32 * (4 if args.quick else 16)
        ours = bench_native(market, n, steps, args.device, args.dtype)
        print(
            f"native PPO, StockTradingVecEnv num_envs={n:6d} ({args.device}, {args.dtype}): "
            f"{ours:12,.0f} env-steps/s   ratio {ours / peer:8.1f}x"
        )


if __name__ == "__main__":
    main()
