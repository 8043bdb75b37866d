"""Writes the tutorial notebooks from the cells below (run it after editing them; the tests execute them)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

QUICKSTART = [
    new_markdown_cell(
        "# finrl_lite quick start\n\n"
        "From market data to a trained, back-tested agent in a few cells, on the embedded synthetic market "
        "(offline). The same path runs from the command line:\n\n"
        "```bash\nfinrl-lite train --config configs/quickstart.yaml\nfinrl-lite backtest runs/quickstart --split trade\n```"
    ),
    new_code_cell(
        "import os\nfrom pathlib import Path\n\nimport pandas as pd\n\n"
        "from finrl_lite.config import load_config\nfrom finrl_lite.data_processors import prepare_data\n"
        "from finrl_lite.train.pipeline import backtest_run, train_run\n\n"
        "# The test suite runs this notebook with a tiny budget; raise it for a real run.\n"
        "STEPS = int(os.environ.get('FINRL_LITE_TUTORIAL_STEPS', 50_000))\n"
        "ROOT = Path.cwd().parent if Path.cwd().name == 'tutorials' else Path.cwd()\n"
        "OUT = Path(os.environ.get('FINRL_LITE_TUTORIAL_OUT', 'tutorial_runs'))"
    ),
    new_markdown_cell(
        "## 1. Data\nA config describes the data, the environment, the agent and the splits. "
        "`--set`-style overrides work here too."
    ),
    new_code_cell(
        "cfg = load_config(\n"
        "    ROOT / 'configs' / 'quickstart.yaml', [f'train.total_timesteps={STEPS}', f'data.cache.dir={OUT / \"cache\"}']\n"
        ")\n"
        "market = prepare_data(cfg).market\n"
        "pd.Series(market.summary())"
    ),
    new_markdown_cell(
        "## 2. Train, validate, test\nOne call trains native PPO on the train split and evaluates it against the baselines."
    ),
    new_code_cell(
        "metrics = train_run(cfg, OUT / 'quickstart')\n"
        "table = pd.DataFrame({name: {m: v['mean'] for m, v in curve.items()} for name, curve in metrics['test'].items()}).T\n"
        "table[['cumulative_return', 'sharpe', 'max_drawdown', 'turnover']]"
    ),
    new_markdown_cell("## 3. Back-test on the trade window"),
    new_code_cell(
        "result = backtest_run(OUT / 'quickstart', 'trade')\n"
        "table = pd.DataFrame({name: {m: v['mean'] for m, v in curve.items()} for name, curve in result['trade'].items()}).T\n"
        "table[['cumulative_return', 'sharpe']]"
    ),
    new_code_cell(
        "from IPython.display import Image\n\n"
        "Image(filename=str(OUT / 'quickstart' / 'backtest_trade' / 'seed_0' / 'report_trade.png'))"
    ),
]

STOCK_TRADING = [
    new_markdown_cell(
        "# Stock trading, step by step\n\n"
        "The pieces behind `finrl-lite train`: the data processor, the vectorized torch environment, an agent, "
        "and a back-test against rule-based baselines."
    ),
    new_code_cell(
        "import os\n\nimport matplotlib.pyplot as plt\nimport torch\n\n"
        "from finrl_lite.agents.baselines import BASELINES\nfrom finrl_lite.agents.native.ppo import NativePPO, PPOConfig\n"
        "from finrl_lite.config import StockTradingEnvConfig\nfrom finrl_lite.data_processors import DataProcessor, Splits\n"
        "from finrl_lite.train.backtest import run_agent, run_baseline\nfrom finrl_lite.train.environment import make_env\n\n"
        "STEPS = int(os.environ.get('FINRL_LITE_TUTORIAL_STEPS', 100_000))"
    ),
    new_markdown_cell(
        "## Data: download, clean, indicators, turbulence\nFinRL's `DataProcessor` shape; every step is vectorized over tickers."
    ),
    new_code_cell(
        "dp = DataProcessor('synthetic', num_tickers=8, seed=7, ragged=True)\n"
        "df = dp.download([], '2015-01-02', '2019-12-31', '1d')\n"
        "df = dp.clean(df)\n"
        "df = dp.add_indicators(df, ['macd', 'rsi_30', 'cci_30', 'close_30_sma'])\n"
        "df = dp.add_turbulence(df, window=252)\n"
        "splits = Splits({'train': ('2015-01-02', '2018-06-30'), 'test': ('2018-07-01', '2019-12-31')})\n"
        "market = dp.to_market_data(df, splits)\n"
        "print(market.summary()['valid_fraction'], market.fields)\n"
        "df.head()"
    ),
    new_markdown_cell(
        "## Environment: thousands of episodes per step\n"
        "Actions are in [-1, 1] per ticker, scaled by `hmax` shares; fills at the next bar's open."
    ),
    new_code_cell(
        "env_cfg = StockTradingEnvConfig(num_envs=256, episode_length=126, scales={'features': 0.01})\n"
        "env = make_env(env_cfg, market.slice('train'), seed=0)\n"
        "obs, info = env.reset()\n"
        "obs, reward, terminated, truncated, info = env.step(torch.rand(env.num_envs, env.num_tickers) * 2 - 1)\n"
        "obs.shape, reward[:4], info['portfolio_value'][:4]"
    ),
    new_markdown_cell("## Agent: native PPO on the device"),
    new_code_cell(
        "agent = NativePPO(env, PPOConfig(num_steps=32, seed=0))\n"
        "history = []\n"
        "agent.learn(STEPS, callback=lambda p: history.append((p.steps, p.episode_return)))\n"
        "history[-1]"
    ),
    new_markdown_cell(
        "## Back-test against the baselines\n"
        "Baselines rebalance to target weights through the same environment (fills, fees, lots, T+1) in "
        "`target_weights` mode; the bars before the test split are their history (covariance window, moving "
        "averages), so they trade from the split's first bar, as the agent does."
    ),
    new_code_cell(
        "test = market.slice('test')\n"
        "curves = [run_agent(agent, test, env_cfg)]\n"
        "curves += [run_baseline(cls(), test, env_cfg, history=market) for cls in BASELINES.values()]\n"
        "fig, ax = plt.subplots(figsize=(9, 4))\n"
        "for c in curves:\n    ax.plot(c.dates, c.values / c.values[0], label=c.name, linewidth=2 if c.name == 'agent' else 1)\n"
        "ax.legend()\nax.set_ylabel('value (start = 1)')\n"
        "{c.name: round(c.metrics()['sharpe'], 3) for c in curves}"
    ),
]

PAPER_TRADING = [
    new_markdown_cell(
        "# Paper trading, restart-safe\n\n"
        "A trained agent is only useful if it trades the way it was tested. This notebook walks through "
        "`finrl_lite.trade`, the loop behind `finrl-lite paper`:\n\n"
        "```\nnew bar -> the training pipeline's processing -> observation -> agent -> orders -> risk limits "
        "-> journal -> broker\n```\n\n"
        "It uses the simulated broker and replayed bars, offline. Three promises are checked on the way: the loop "
        "decides exactly what the back-test decides on the same bars, it never sends an order twice, and it "
        "survives being killed at any moment."
    ),
    new_code_cell(
        "import os\nfrom pathlib import Path\n\nimport pandas as pd\n\n"
        "from finrl_lite.config import load_config\nfrom finrl_lite.train.pipeline import backtest_run, train_run\n\n"
        "# The test suite runs this notebook with a tiny budget; raise it for a real run.\n"
        "STEPS = int(os.environ.get('FINRL_LITE_TUTORIAL_STEPS', 50_000))\n"
        "ROOT = Path.cwd().parent if Path.cwd().name == 'tutorials' else Path.cwd()\n"
        "OUT = Path(os.environ.get('FINRL_LITE_TUTORIAL_OUT', 'tutorial_runs'))"
    ),
    new_markdown_cell(
        "## 1. A trained run\n"
        "Paper trading starts from a run directory written by `finrl-lite train`: the resolved config, the data "
        "fingerprint and the model. Here: the quick start agent (native PPO on the synthetic market)."
    ),
    new_code_cell(
        "cfg = load_config(\n"
        "    ROOT / 'configs' / 'quickstart.yaml',\n"
        "    [f'train.total_timesteps={STEPS}', 'env.num_envs=16', 'train.eval_splits=[test]',\n"
        "     f'data.cache.dir={OUT / \"cache\"}'],\n"
        ")\n"
        "RUN = OUT / 'paper_run'\n"
        "train_run(cfg, RUN)\n"
        "sorted(p.name for p in RUN.iterdir())"
    ),
    new_markdown_cell(
        "## 2. Load it for trading\n"
        "`load_trading_run` loads the agent and computes two things the loop relies on:\n\n"
        "- the **run id**, a hash of the config and the model files: every client order id starts with it, and a "
        "journal written by another run (or a retrained one) is refused;\n"
        "- the **observation layout** the model was trained on (tickers x features, plus the optional blocks). "
        "FinRL sets its state size by hand, so a model trained on other tickers fails with a shape error or, worse, "
        "runs on the wrong columns. Here bars that give another layout are refused with both layouts named."
    ),
    new_code_cell(
        "from finrl_lite.trade.run import load_trading_run\n\n"
        "run = load_trading_run(RUN)\n"
        "print('run id', run.run_id)\n"
        "print(run.layout.describe())"
    ),
    new_markdown_cell(
        "## 3. The pieces: feed, broker, journal\n"
        "- The **feed** releases bars one bar time at a time. `ReplayFeed` replays stored bars (here the run's own "
        "trade split); everything before the session start is history, the indicators' warm-up. With `speed` it "
        "waits between bars like a live feed (86400 plays a daily bar per second); `speed=0` does not wait.\n"
        "- The **broker** receives orders keyed by a deterministic client order id. `SimBroker` fills them at the "
        "next bar's open with the environment's own `execute_orders` (fees, lots, cash-limited buys, T+1), and "
        "keeps its account in its own SQLite file, so across restarts it behaves like a remote broker.\n"
        "- The **journal** (SQLite, WAL, `synchronous=FULL`) records every intended order *before* it is sent, and "
        "what the broker answered after."
    ),
    new_code_cell(
        "from finrl_lite.trade.brokers.sim import SimBroker\nfrom finrl_lite.trade.config import PaperConfig\n"
        "from finrl_lite.trade.feeds.replay import ReplayFeed\nfrom finrl_lite.trade.journal import Journal\n"
        "from finrl_lite.trade.loop import PaperTrader\n\n"
        "SESSION = OUT / 'paper_session'\n"
        "trade = run.market.splits['trade']\n\n\n"
        "def open_trader(max_bars=None, risk=None):\n"
        "    config = PaperConfig(max_bars=max_bars, risk=risk or {})\n"
        "    feed = ReplayFeed.from_market(run.market, trade.start, trade.end, speed=0)\n"
        "    broker = SimBroker(SESSION / 'broker.sqlite', run.params, run.tickers, cfg.env.initial_amount, owner=run.run_id)\n"
        "    return PaperTrader(run, broker, feed, Journal(SESSION / 'journal.sqlite'), config)\n\n\n"
        "trader = open_trader(max_bars=10)\n"
        "print(len(trader.feed.history()), 'history rows;', 'session from', trade.start.date(), 'to', trade.end.date())"
    ),
    new_markdown_cell(
        "## 4. Reconcile, then trade\n"
        "`start()` first compares the journal with the broker, order by order (by client order id) and position by "
        "position. The broker is authoritative: what it knows is copied into the journal; an order the journal "
        "intended but the broker never received is marked so explicitly; anything unexplained (a position that "
        "differs, an order of this run the journal never wrote) stops the loop before it trades on a guess.\n\n"
        "`run()` then trades every bar. We stop after 10 bars, as if the process had been stopped."
    ),
    new_code_cell(
        "print(trader.start().summary())\n"
        "rows = []\n"
        "trader.run(on_bar=lambda r: rows.append((r.time, r.kind, round(r.equity, 2), len(r.orders))))\n"
        "trader.broker.close()\ntrader.journal.close()\n"
        "pd.DataFrame(rows, columns=['bar', 'kind', 'equity', 'orders'])"
    ),
    new_markdown_cell(
        "## 5. Restart: the journal knows where it stopped\n"
        "A new process (here: new objects on the same files) reconciles, skips the bars already traded (they only "
        "rebuild the indicators' history) and goes on. A bar whose orders were decided but not all sent when the "
        "process died is finished from the journal, never decided again; the broker rejects a reused client order "
        "id, so an order can never be sent twice. The test suite kills the command-line loop with `kill -9` twenty "
        "times in a session and checks exactly that."
    ),
    new_code_cell(
        "trader = open_trader()\n"
        "print(trader.start().summary())\n"
        "summary = trader.run()\n"
        "print(summary)\n"
        "orders = pd.DataFrame([o.__dict__ for o in trader.journal.orders()])\n"
        "trader.broker.close()\ntrader.journal.close()\n"
        "orders[['bar_time', 'ticker', 'side', 'qty', 'status', 'filled_qty', 'filled_avg_price', 'fee']].tail()"
    ),
    new_markdown_cell(
        "## 6. Train/serve parity\n"
        "The observation comes from the same processing (`process_frame`: cleaning, indicators, turbulence), the "
        "same observation builder and the same action mapper as training, and the sim broker fills with the "
        "environment's execution rules at the next open. So the paper session ends where `finrl-lite backtest` on "
        "the same bars ends, bar for bar."
    ),
    new_code_cell(
        "backtest_run(RUN, 'trade')\n"
        "backtest = pd.read_csv(RUN / 'backtest_trade' / 'seed_0' / 'equity_trade.csv', index_col='date', parse_dates=True)\n"
        "journal = Journal(SESSION / 'journal.sqlite', read_only=True)\n"
        "paper = pd.Series({pd.Timestamp(b.time): b.equity for b in journal.bars()})\n"
        "journal.close()\n"
        "print('largest difference per bar:', float((paper - backtest['agent']).abs().max()))\n"
        "pd.DataFrame({'paper': paper, 'backtest': backtest['agent']}).tail(3)"
    ),
    new_markdown_cell(
        "## 7. Risk limits block, they never clip\n"
        "Limits are checked before an order is journaled as sendable: max order notional, max position weight, a "
        "daily loss stop and a kill-switch file. A breach blocks the whole order; it is logged and journaled with "
        "the numbers that breached, so the agent's decision stays visible. Here a deliberately tight notional "
        "limit ($100) on a fresh session:"
    ),
    new_code_cell(
        "SESSION = OUT / 'paper_session_limits'\n"
        "trader = open_trader(max_bars=3, risk={'max_order_notional': 100})\n"
        "trader.start()\ntrader.run()\n"
        "blocked = [(o.bar_time[:10], o.ticker, o.qty, o.reason) for o in trader.journal.orders(('blocked',))]\n"
        "trader.broker.close()\ntrader.journal.close()\n"
        "pd.DataFrame(blocked, columns=['bar', 'ticker', 'qty', 'reason']).head()"
    ),
    new_markdown_cell(
        "## 8. Status: where the session stands\n"
        "`finrl-lite paper status JOURNAL` reads the journal: account, positions, orders, and P&L against the "
        "baselines over the same bars (buy-and-hold, equal weight, ...), as a table and a PNG."
    ),
    new_code_cell(
        "from IPython.display import Image\n\n"
        "from finrl_lite.trade.status import read_status, write_status_png\n\n"
        "status = read_status(OUT / 'paper_session' / 'journal.sqlite')\n"
        "print('cash', round(status.cash, 2), 'equity', round(status.equity, 2), 'positions', status.positions)\n"
        "display(status.pnl.round(4))\n"
        "Image(filename=str(write_status_png(status, OUT / 'paper_status.png')))"
    ),
    new_markdown_cell(
        "## 9. From the command line, and on Alpaca\n"
        "The same session in two commands:\n\n"
        "```bash\nfinrl-lite paper runs/quickstart --config configs/paper_sim.yaml\n"
        "finrl-lite paper status runs/quickstart/paper/journal.sqlite\n```\n\n"
        "For an Alpaca paper account, export your paper keys as `APCA_API_KEY_ID` and `APCA_API_SECRET_KEY` (they "
        "are read only from the environment, never logged or written) and add `--broker alpaca --feed alpaca`. "
        "Requests have timeouts, reads are retried with backoff that honours Alpaca's rate-limit headers, and an "
        "order whose submit timed out is looked up by its client order id instead of being sent again."
    ),
]


def write(name: str, cells: list) -> Path:
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path = HERE / name
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    write("01_quickstart.ipynb", QUICKSTART)
    write("02_stock_trading.ipynb", STOCK_TRADING)
    write("05_paper_trading.ipynb", PAPER_TRADING)
