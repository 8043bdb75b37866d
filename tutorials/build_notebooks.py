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


def write(name: str, cells: list) -> Path:
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path = HERE / name
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    write("01_quickstart.ipynb", QUICKSTART)
    write("02_stock_trading.ipynb", STOCK_TRADING)
