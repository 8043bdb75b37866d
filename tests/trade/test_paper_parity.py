"""Train/serve parity: the paper loop with the sim broker over the replayed trade split decides exactly what
`finrl-lite backtest` decides on those bars, and ends with the same equity (to 1e-9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from typer.testing import CliRunner

from finrl_lite.agents.factory import load_agent
from finrl_lite.cli import app
from finrl_lite.data_processors.processor import prepare_data
from finrl_lite.train.environment import make_env
from finrl_lite.train.pipeline import load_run_config


def test_equity_matches_the_backtest_command(run_copy: Path, reference_session) -> None:
    result = CliRunner().invoke(app, ["backtest", str(run_copy), "--split", "trade"])
    assert result.exit_code == 0, result.output
    backtest = pd.read_csv(run_copy / "backtest_trade" / "seed_0" / "equity_trade.csv", index_col="date", parse_dates=True)
    paper = pd.Series(
        [r.equity for r in reference_session.reports], index=[pd.Timestamp(r.time) for r in reference_session.reports]
    )
    assert list(paper.index) == list(backtest.index)  # the same bars, from the split's first bar to its last
    assert np.max(np.abs(paper.to_numpy() - backtest["agent"].to_numpy())) <= 1e-9
    assert paper.iloc[-1] != paper.iloc[0]  # the agent traded
    # the baselines the journal keeps bar by bar are the backtest's baselines over the same bars
    from finrl_lite.trade.journal import Journal

    journal = Journal(reference_session.journal, read_only=True)
    assert list(backtest.columns) == ["agent", "buy_and_hold", "equal_weight_index", "index"]
    for name in backtest.columns[1:]:
        kept = np.array([journal.bar(r.time).baselines[name] for r in reference_session.reports])
        assert np.max(np.abs(kept - backtest[name].to_numpy())) <= 1e-9
    journal.close()


def test_every_decision_and_fill_matches_the_environment(tiny_run: Path, reference_session) -> None:
    cfg = load_run_config(tiny_run)
    market = prepare_data(cfg).market.slice("trade")
    agent = load_agent(tiny_run / "seed_0" / "model")
    env = make_env(cfg.env, market, evaluation=True)
    obs, _ = env.reset(seed=0)
    reports, actions = reference_session.reports, reference_session.actions
    tickers = market.tickers
    for k in range(market.num_dates - 1):
        with torch.no_grad():
            action = agent.predict(obs, deterministic=True)
        assert np.array_equal(np.asarray(actions[k], dtype=np.float32), action.reshape(-1).numpy()), f"bar {k}"
        obs, _, _, _, info = env.step(torch.as_tensor(action))
        env_holdings = info["holdings"][0].numpy()
        paper_holdings = np.array([reports[k + 1].positions.get(t, 0.0) for t in tickers])
        assert np.array_equal(env_holdings, paper_holdings), f"fills on bar {k + 1}"
        assert abs(float(info["cash"][0]) - reports[k + 1].cash) <= 1e-9
    # the session went through every path: buys cut by cash, turbulence sells, idle tickers
    from finrl_lite.trade.journal import Journal

    journal = Journal(reference_session.journal, read_only=True)
    orders = journal.orders()
    journal.close()
    assert {"filled", "expired", "accepted"} == {o.status for o in orders}  # accepted: the last bar's, never filled
    assert {"buy", "sell"} == {o.side for o in orders}
    assert any(0 < o.filled_qty < o.qty for o in orders)
