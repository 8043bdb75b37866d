"""The native Double DQN behind the Agent interface on the stock-trading env."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from finrl_lite.agents.factory import load_agent, make_agent, save_agent
from finrl_lite.config import load_config
from finrl_lite.data_processors import DataProcessor
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv

REPO = Path(__file__).resolve().parents[2]


def test_tiny_budget_predict_save_load(tmp_path: Path) -> None:
    dp = DataProcessor("synthetic", num_tickers=3, seed=2)
    market = dp.to_market_data(dp.add_indicators(dp.clean(dp.download([], "2019-01-01", "2019-12-31")), ["macd"]))
    env = StockTradingVecEnv(market, StockTradingParams(episode_length=20), num_envs=8, seed=0)
    cfg = load_config(REPO / "configs" / "ddqn.yaml", ["agent.params={batch_size: 16, buffer_size: 500, train_frequency: 2}"])
    agent = make_agent(cfg, env, seed=0)
    seen = []
    agent.learn(160, callback=lambda p: seen.append(p.steps))
    assert agent.num_timesteps == 160 and seen[-1] == 160  # type: ignore[attr-defined]
    obs = torch.rand(5, env.observation_size, dtype=torch.float64)
    action = agent.predict(obs)
    assert action.shape == (5, 3) and set(action.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert (action.abs().sum(1) <= 1).all()  # one trade per step at most
    save_agent(agent, cfg.agent, tmp_path / "m")
    loaded = load_agent(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(obs.numpy()), action.numpy())
