"""Writes tutorials 01 and 02 from the cells below (run it after editing them; tests/test_tutorials.py executes the
notebooks and checks that the committed ones are what this script writes). They are committed without outputs.

    python tutorials/build_notebooks.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------------------- 01

QUICKSTART = [
    new_markdown_cell(
        "# Tutorial 1: the quick start, step by step\n\n"
        "finrl_lite takes a trading idea from market data to a trained, back-tested agent. This notebook runs the "
        "same path as the README's quick start, one step at a time, and explains what each step does, why, and how "
        "to read the numbers it prints:\n\n"
        "1. **the config**: one YAML file describes the data, the splits, the environment, the agent and the budget;\n"
        "2. **the data**: an embedded synthetic market (offline, same seed, same bytes), cleaned, with FinRL's "
        "indicators, turbulence and a VIX-like series;\n"
        "3. **training**: native PPO steps 128 simulated portfolios at once in torch;\n"
        "4. **evaluation**: the agent against rule-based baselines on the validation and test years;\n"
        "5. **back-test** on the trade window, and what to try next.\n\n"
        "From the command line the same run is\n\n"
        "```bash\nfinrl-lite train --config configs/quickstart.yaml --out runs/quickstart\n"
        "finrl-lite backtest runs/quickstart --split trade\n```\n\n"
        "The budget is `FINRL_LITE_TUTORIAL_STEPS` environment steps (the quick start's 50,000 by default; about 15 "
        "seconds on two CPU cores here). The test suite runs this notebook with 512, too few for the agent to learn "
        "anything: the numbers then only show that every step runs."
    ),
    new_code_cell(
        "import os\n"
        "import tempfile\n"
        "from pathlib import Path\n\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "import pandas as pd\n"
        "from IPython.display import display\n\n"
        "from finrl_lite.config import load_config\n"
        "from finrl_lite.data_processors import prepare_data\n"
        "from finrl_lite.train.pipeline import backtest_run, train_run\n\n"
        "STEPS = int(os.environ.get('FINRL_LITE_TUTORIAL_STEPS', 50_000))\n"
        "ROOT = Path.cwd().parent if Path.cwd().name == 'tutorials' else Path.cwd()  # the repository: configs/ is there\n"
        "# Runs go to a new temporary folder (never into the repository); set FINRL_LITE_TUTORIAL_OUT to keep them.\n"
        "OUT = Path(os.environ.get('FINRL_LITE_TUTORIAL_OUT') or tempfile.mkdtemp(prefix='finrl_lite_quickstart_'))\n"
        "RUN = OUT / 'quickstart'\n"
        "print(f'budget: {STEPS:,} environment steps; run directory: {RUN}')"
    ),
    new_markdown_cell(
        "## 1. The config\n\n"
        "`configs/quickstart.yaml` is validated into typed sections when it is loaded: a wrong key, type or range is "
        "an error naming the file and the field, before any work starts. The overrides below are what `--set` does on "
        "the command line.\n\n"
        "The data is cut into four **named, non-overlapping date ranges**. The agent learns on `train` only; "
        "`validation` is for choosing between runs (budgets, hyper-parameters); `test` is looked at once, at the end, "
        "to estimate how a chosen agent does on unseen years; `trade` stands for the period you would trade next. "
        "Keeping them apart is what makes the numbers below mean something."
    ),
    new_code_cell(
        "cfg = load_config(\n"
        "    ROOT / 'configs' / 'quickstart.yaml', [f'train.total_timesteps={STEPS}', f'data.cache.dir={OUT / \"cache\"}']\n"
        ")\n"
        "print(f'data  : {cfg.data.source}, {cfg.data.synthetic.num_tickers} tickers, {cfg.data.start} .. {cfg.data.end}, '\n"
        "      f'bars of {cfg.data.interval}')\n"
        "for name, rng in cfg.data.splits.items():\n"
        "    print(f'  split {name:10s} {rng.start} .. {rng.end}')\n"
        "print(f'env   : {cfg.env.num_envs} episodes at once, {cfg.env.episode_length} days each, '\n"
        "      f'up to {cfg.env.hmax:g} shares per trade, {cfg.env.buy_cost_pct:.1%} fee per side, '\n"
        "      f'{cfg.env.initial_amount:,.0f} starting cash')\n"
        "print(f'agent : {cfg.agent.backend} {cfg.agent.algo} {cfg.agent.params}')\n"
        "print(f'train : {cfg.train.total_timesteps:,} steps, seeds {cfg.train.seeds}, baselines {cfg.train.baselines}')"
    ),
    new_markdown_cell(
        "## 2. The data\n\n"
        "`prepare_data` downloads the bars (here: generates them), aligns every ticker to the exchange calendar, "
        "checks for impossible bars, adds the indicators, the turbulence index and the VIX-like series, and caches "
        "the result keyed by everything that shapes it (a second run reads the cache).\n\n"
        "The synthetic market is a seeded factor model (market and sector factors, fat-tailed GARCH shocks, jumps): "
        "realistic enough to exercise every part of the pipeline, but it is *not* real data, and whether an agent "
        "can beat simple rules on it says little about real markets. `valid_fraction` is the share of (day, ticker) "
        "cells with a real bar; `warmup` is how many bars the longest indicator needs before it is defined."
    ),
    new_code_cell(
        "market = prepare_data(cfg).market\n"
        "display(pd.Series(market.summary()).to_frame('value'))\n\n"
        "close = market.to_frame().pivot(index='date', columns='tic', values='close')\n"
        "fig, ax = plt.subplots(figsize=(9, 3.5))\n"
        "ax.plot(close.index, close / close.iloc[0], linewidth=0.8)\n"
        "for (name, rng), shade in zip(market.splits.items(), ['#eeeeee', '#dde8f5', '#f5e6dd', '#e3f2e1'], strict=False):\n"
        "    ax.axvspan(rng.start, rng.end, color=shade, zorder=0)\n"
        "    ax.text(rng.start, ax.get_ylim()[1], f' {name}', va='top', fontsize=8)\n"
        "ax.set_ylabel('close (first day = 1)')\n"
        "ax.set_title('the ten synthetic tickers and the four splits')\n"
        "plt.show()"
    ),
    new_markdown_cell(
        "## 3. Train\n\n"
        "`train_run` builds `env.num_envs` stock-trading environments as one batched torch environment on the train "
        "split and lets native PPO learn from `train.total_timesteps` environment steps. Each environment is a "
        "portfolio that starts with cash on a random day and trades every ticker once a day for an episode of 252 days; "
        "the action is, per ticker, a number in [-1, 1] times `hmax` shares to sell or buy, filled at the next "
        "day's open after fees. The reward is the change in portfolio value times `reward_scaling` (1e-4), so an "
        "**episode return** of 3 means the portfolio gained about 30,000 on 1,000,000 over the episode.\n\n"
        "PPO learns in rollouts of `num_steps` x `num_envs` = 4,096 steps; the budget asked is the budget used (a "
        "shorter last rollout, never a whole rollout past it). The hook below records the progress the command line "
        "draws as its progress bar. Two curves tell whether learning happens: the mean return of recently finished "
        "episodes (here all 128 episodes have the same length and start together, so they end together, once every "
        "252 x 128 = 32,256 steps: the curve moves in steps), and the value function's *explained variance* after "
        "each update (1 means it predicts the returns perfectly, 0 no better than their mean). The run directory gets "
        "the model, a checkpoint, `train.log` and per-split reports."
    ),
    new_code_cell(
        "progress = []\n"
        "metrics = train_run(cfg, RUN, hook=lambda seed, p: progress.append(p))\n"
        "print(f'learned from {progress[-1].steps:,} environment steps (asked {STEPS:,}) in {len(progress)} updates')\n\n"
        "steps = [p.steps for p in progress]\n"
        "fig, (ax_return, ax_value) = plt.subplots(1, 2, figsize=(10, 3))\n"
        "finished = [(p.steps, p.episode_return) for p in progress if np.isfinite(p.episode_return)]\n"
        "if finished:\n"
        "    ax_return.plot(*zip(*finished, strict=True), marker='.', drawstyle='steps-post')\n"
        "    print(f'mean return of the last finished episodes: {finished[-1][1]:.3f}')\n"
        "else:\n"
        "    print(f'no training episode ended within {steps[-1]:,} steps (episodes are {cfg.env.episode_length} days, '\n"
        "          f'{cfg.env.num_envs} run at once): there is no episode return to show yet')\n"
        "ax_return.set_title('mean return of finished episodes')\n"
        "ax_value.plot(steps, [p.extra['explained_variance'] for p in progress], marker='.')\n"
        "ax_value.set_title('explained variance of the value function')\n"
        "for ax in (ax_return, ax_value):\n"
        "    ax.set_xlabel('environment steps learned')\n"
        "plt.show()"
    ),
    new_markdown_cell(
        "## 4. Validation and test against the baselines\n\n"
        "After training, the agent trades each evaluation split once, deterministically, from its first day, and so do "
        "the baselines, through the same environment rules (fills at the next open, fees):\n\n"
        "- `buy_and_hold`: equal weights on day one, then hold; `equal_weight_index`: equal weights rebalanced;\n"
        "- `min_variance`: the minimum-variance portfolio of the trailing covariance; `indicator_crossover`: a "
        "moving-average / MACD rule; `index`: the market's equal-weight index itself (no costs).\n\n"
        "How to read the columns: **cumulative return** over the split; **Sharpe** (annualised mean over volatility "
        "of daily returns; above 1 is good, negative means it lost money on average); **max drawdown** (the worst "
        "peak-to-trough fall); **annual volatility**; **turnover** (traded value per year over the mean portfolio "
        "value: 1 is trading the whole portfolio once a year); **costs paid** in fees. One seed gives one number per "
        "cell; train with several (`train.seeds`) to get a mean and a 95% confidence interval."
    ),
    new_code_cell(
        "SHOWN = ['cumulative_return', 'sharpe', 'max_drawdown', 'annual_volatility', 'turnover', 'costs_paid']\n\n\n"
        "def table(split_metrics):\n"
        "    return pd.DataFrame({name: {m: s[m]['mean'] for m in SHOWN} for name, s in split_metrics.items()}).T\n\n\n"
        "def reading(t, split):\n"
        "    agent, others = t.loc['agent'], t.drop(index='agent')\n"
        "    rank = int((others['sharpe'] > agent['sharpe']).sum()) + 1\n"
        "    best = others['sharpe'].idxmax()\n"
        "    return (\n"
        "        f\"{split}: the agent returned {agent['cumulative_return']:+.1%} (buy and hold \"\n"
        "        f\"{t.loc['buy_and_hold', 'cumulative_return']:+.1%}) with {agent['annual_volatility']:.1%} volatility \"\n"
        "        f\"(buy and hold {t.loc['buy_and_hold', 'annual_volatility']:.1%}); its Sharpe {agent['sharpe']:.2f} ranks \"\n"
        "        f\"{rank} of {len(t)} (best baseline: {best}, {others.loc[best, 'sharpe']:.2f})\"\n"
        "    )\n\n\n"
        "for split in cfg.train.eval_splits:\n"
        "    display(table(metrics[split]).style.format('{:.3g}').set_caption(split))\n"
        "    print(reading(table(metrics[split]), split))"
    ),
    new_markdown_cell(
        "### An honest reading\n\n"
        "When we ran this notebook with the default budget (50,000 steps, seed 0; the cells above print your own "
        "numbers, which change with the budget and the code version), the 128 training episodes that ended gained "
        "about 3% over their year (episode return 3.2) and the value function's explained variance rose from 0.5 to "
        "0.85: the agent learned something about the training years. On the unseen years it lost about 1% on "
        "validation and 2% on test while buy and hold lost about 15% in both, with 2% to 5% volatility against buy "
        "and hold's 13% to 22%. "
        "That is not skill at picking stocks: the agent learned to keep most of its money in cash, which limits losses "
        "in falling years and gains in rising ones. Its Sharpe ratio on test (-1.5) was no better than buy and "
        "hold's, and the minimum-variance baseline had the best Sharpe on both splits.\n\n"
        "So, at this budget, the agent has not shown an edge over the simplest baselines. Before believing any "
        "agent does, check that it beats them on validation *and* test, over several seeds (the confidence "
        "interval should exclude the baseline), and at a budget where the training curve above has flattened."
    ),
    new_markdown_cell(
        "## 5. Back-test on the trade window\n\n"
        "`backtest_run` (the `finrl-lite backtest` command) loads the saved agent and evaluates it, with every "
        "baseline, on another split, here the last quarter. It writes `backtest_trade.json`, the equity curves as CSV "
        "and a report PNG per seed. Three months is a short window: one or two moves of the market decide it, so read "
        "it as a smoke test of the saved agent, not as evidence."
    ),
    new_code_cell(
        "result = backtest_run(RUN, 'trade')\n"
        "trade = table(result['trade'])\n"
        "display(trade.style.format('{:.3g}').set_caption('trade'))\n"
        "print(reading(trade, 'trade'))\n\n"
        "equity = pd.read_csv(RUN / 'backtest_trade' / 'seed_0' / 'equity_trade.csv', index_col='date', parse_dates=True)\n"
        "ax = (equity / equity.iloc[0]).plot(figsize=(9, 3.5), linewidth=1)\n"
        "ax.set_ylabel('value (start = 1)')\n"
        "ax.set_title('trade window: the agent and the baselines')\n"
        "plt.show()"
    ),
    new_markdown_cell(
        "## What to try next\n\n"
        "- **More budget, more seeds**: `train.total_timesteps=500000` and `train.seeds=[0, 1, 2]`; the tables then "
        "show a mean and a 95% interval per cell.\n"
        "- **Another agent**: `agent.backend=sb3` with `agent.algo=ppo`, `a2c`, `sac`...; `agent.algo=ddqn` (native "
        "Double DQN, `configs/ddqn.yaml`); `agent.backend=rllib` with the `rllib` extra.\n"
        "- **Another environment**: `configs/portfolio.yaml` allocates weights instead of trading shares.\n"
        "- **Real data**: `configs/sp500_csv.yaml` (a local CSV of the S&P 500) or `configs/dow30_ppo.yaml` (Yahoo "
        "Finance, needs the network).\n"
        "- **Step by step**: tutorial 2 builds the same pieces by hand: the data processor, the batched environment, "
        "the agent and the back-test."
    ),
]

# ---------------------------------------------------------------------------------------------------------- 02

STOCK_TRADING = [
    new_markdown_cell(
        "# Tutorial 2: stock trading, piece by piece\n\n"
        "`finrl-lite train` wires four pieces together. This notebook builds them by hand, so that you can change any "
        "of them:\n\n"
        "1. **data**: `DataProcessor` (FinRL's interface): download, clean, indicators, turbulence, splits;\n"
        "2. **environment**: `StockTradingVecEnv`, hundreds of portfolios stepped as one torch operation;\n"
        "3. **agent**: native PPO, learning on the environment's tensors without copies;\n"
        "4. **back-test**: the agent and rule-based baselines on an unseen split, through the same market rules.\n\n"
        "The budget is `FINRL_LITE_TUTORIAL_STEPS` environment steps (100,000 by default; the quick start "
        "trains at about 19,000 per second on two CPU cores); the test suite runs it with 512, which only shows that "
        "each piece runs."
    ),
    new_code_cell(
        "import os\n\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "import pandas as pd\n"
        "import torch\n"
        "from IPython.display import display\n\n"
        "from finrl_lite.agents.baselines import BASELINES, make_baseline\n"
        "from finrl_lite.agents.native.ppo import NativePPO, PPOConfig\n"
        "from finrl_lite.config import StockTradingEnvConfig\n"
        "from finrl_lite.data_processors import DataProcessor, Splits\n"
        "from finrl_lite.train.backtest import run_agent, run_baseline\n"
        "from finrl_lite.train.environment import make_env\n\n"
        "STEPS = int(os.environ.get('FINRL_LITE_TUTORIAL_STEPS', 100_000))\n"
        "print(f'budget: {STEPS:,} environment steps')"
    ),
    new_markdown_cell(
        "## 1. Data\n\n"
        "`download` returns one long frame (`date, tic, open, high, low, close, volume`) whatever the source "
        "(`synthetic`, `csv`, `yahoofinance`, `alpaca`). With `ragged=True` the synthetic market has tickers that list "
        "late or delist early, as real universes do.\n\n"
        "`clean` puts every ticker on the exchange calendar and adds a `valid` column: a ticker's missing days stay "
        "in the panel, marked not valid, with prices carried forward (never backward: that would leak the future) "
        "and NaN before its first bar. Dropping such tickers, as FinRL does, would silently bias the universe towards "
        "survivors. `add_indicators` computes FinRL's indicators for all tickers at once (matching stockstats); "
        "`add_turbulence` adds the Mahalanobis distance of each day's returns from the trailing year, a market "
        "stress gauge an environment can use to stop buying."
    ),
    new_code_cell(
        "dp = DataProcessor('synthetic', num_tickers=8, seed=7, ragged=True)\n"
        "df = dp.download([], '2015-01-02', '2019-12-31', '1d')\n"
        "df = dp.clean(df)\n"
        "df = dp.add_indicators(df, ['macd', 'rsi_30', 'cci_30', 'close_30_sma'])\n"
        "df = dp.add_turbulence(df, window=252)\n"
        "splits = Splits({'train': ('2015-01-02', '2018-06-30'), 'test': ('2018-07-01', '2019-12-31')})\n"
        "market = dp.to_market_data(df, splits)\n"
        "valid = market.summary()['valid_fraction']\n"
        "print(f'{market.num_tickers} tickers x {market.num_dates} days; {valid:.1%} of the cells have a real bar')\n"
        "print('fields:', list(market.fields))\n"
        "after_warmup = df['valid'] & (df['date'] >= market.dates[market.warmup])  # indicators are NaN before\n"
        "display(df[after_warmup].head())\n\n"
        "close = df.pivot(index='date', columns='tic', values='close')\n"
        "close = close.where(df.pivot(index='date', columns='tic', values='valid'))  # forward-filled days left out\n"
        "ax = close.plot(figsize=(9, 3.5), linewidth=0.8, legend=False)\n"
        "ax.axvline(pd.Timestamp('2018-07-01'), color='k', linestyle='--', linewidth=1)\n"
        "ax.set_title('close prices: ragged histories (lines start late or stop early); dashed: train | test')\n"
        "plt.show()"
    ),
    new_markdown_cell(
        "## 2. Environment: hundreds of portfolios in one step\n\n"
        "`make_env` builds `num_envs` independent portfolios on the train split as one batched environment. Each "
        "step takes a `(num_envs, tickers)` tensor of actions in [-1, 1]: times `hmax` (100) shares to buy (> 0) or "
        "sell (< 0); sells are filled before buys, buys are limited by the cash left, every fill is at the next day's "
        "open with a 0.1% fee. The observation is FinRL's state vector `[cash, close x N, holdings x N, indicators x "
        "N]`, scaled. The reward is the change of portfolio value x 1e-4.\n\n"
        "As a yardstick, the cell below runs one whole episode of **random** actions in all 256 portfolios: the "
        "spread of their final values is what luck alone does in 126 days."
    ),
    new_code_cell(
        "env_cfg = StockTradingEnvConfig(num_envs=256, episode_length=126, scales={'features': 0.01})\n"
        "env = make_env(env_cfg, market.slice('train'), seed=0)\n"
        "obs, info = env.reset(seed=0)\n"
        "print('observation', tuple(obs.shape), '| action', (env.num_envs, env.num_tickers))\n\n"
        "generator = torch.Generator().manual_seed(0)\n"
        "final = torch.full((env.num_envs,), float('nan'), dtype=torch.float64)  # value when each first episode ends\n"
        "while bool(final.isnan().any()):\n"
        "    action = torch.rand(env.num_envs, env.num_tickers, generator=generator) * 2 - 1\n"
        "    obs, reward, terminated, truncated, info = env.step(action)\n"
        "    ended = (terminated | truncated) & final.isnan()\n"
        "    final = torch.where(ended, info['portfolio_value'].to(torch.float64), final)\n"
        "final = final.numpy()\n"
        "print(f'random actions, {env.num_envs} portfolios after {env_cfg.episode_length} days: median '\n"
        "      f'{np.median(final):,.0f}, 5%-95% range {np.percentile(final, 5):,.0f} .. {np.percentile(final, 95):,.0f} '\n"
        "      f'(start {env_cfg.initial_amount:,.0f})')"
    ),
    new_markdown_cell(
        "## 3. Agent: PPO on the device\n\n"
        "Native PPO (CleanRL style: clipped objective, GAE, running observation normalisation) collects rollouts of "
        "`num_steps` batched steps straight from the environment's tensors and updates a small policy network after "
        "each. `learn(STEPS)` learns from exactly the budget asked, rounded up to whole batched steps: a budget "
        "smaller than one rollout (32 x 256 = 8,192 steps) is one shorter rollout. The callback receives the progress "
        "after every update: steps so far and the mean return of recently finished episodes."
    ),
    new_code_cell(
        "agent = NativePPO(env, PPOConfig(num_steps=32, seed=0))\n"
        "history = []\n"
        "agent.learn(STEPS, callback=lambda p: history.append((p.steps, p.episode_return)))\n"
        "print(f'learned from {agent.num_timesteps:,} environment steps (asked {STEPS:,}) in {len(history)} updates')\n\n"
        "finished = [(steps, ret) for steps, ret in history if np.isfinite(ret)]\n"
        "if finished:\n"
        "    print(f'mean return of the last finished episodes: {finished[-1][1]:.3f} (reward x 1e-4 of value change)')\n"
        "    fig, ax = plt.subplots(figsize=(9, 3))\n"
        "    ax.plot(*zip(*finished, strict=True), marker='.', drawstyle='steps-post')\n"
        "    ax.set_xlabel('environment steps learned')\n"
        "    ax.set_ylabel('mean episode return')\n"
        "    ax.set_title('the 256 episodes end together every 126 x 256 steps: the curve moves in steps')\n"
        "    plt.show()\n"
        "else:\n"
        "    print(f'no episode ended yet: an episode is {env_cfg.episode_length} steps of each portfolio, '\n"
        "          f'this run took {agent.num_timesteps // env.num_envs} (no episode return to show)')"
    ),
    new_markdown_cell(
        "## 4. Back-test against the baselines\n\n"
        "On the unseen test split, the agent trades one portfolio deterministically. The baselines (buy and hold, "
        "equal-weight index, minimum variance, indicator crossover) decide target weights and trade them through the "
        "same environment rules in `target_weights` mode, so fees and fills are the agent's. The bars before the "
        "test split are their history (covariance window, moving averages), so they trade from its first day, as the "
        "agent does."
    ),
    new_code_cell(
        "test = market.slice('test')\n"
        "curves = [run_agent(agent, test, env_cfg)]\n"
        "curves += [run_baseline(make_baseline(name), test, env_cfg, history=market) for name in BASELINES]\n\n"
        "fig, ax = plt.subplots(figsize=(9, 4))\n"
        "for c in curves:\n"
        "    ax.plot(c.dates, c.values / c.values[0], label=c.name, linewidth=2 if c.name == 'agent' else 1)\n"
        "ax.legend()\n"
        "ax.set_ylabel('value (start = 1)')\n"
        "ax.set_title('test split')\n"
        "plt.show()\n\n"
        "SHOWN = ['cumulative_return', 'sharpe', 'max_drawdown', 'annual_volatility', 'turnover', 'costs_paid']\n"
        "table = pd.DataFrame({c.name: c.metrics() for c in curves}).T[SHOWN]\n"
        "display(table.style.format('{:.3g}'))\n"
        "agent_row, others = table.loc['agent'], table.drop(index='agent')\n"
        "print(f\"agent: {agent_row['cumulative_return']:+.1%} return, Sharpe {agent_row['sharpe']:.2f}, \"\n"
        "      f\"volatility {agent_row['annual_volatility']:.1%}; best baseline by Sharpe: {others['sharpe'].idxmax()} \"\n"
        "      f\"({others['sharpe'].max():.2f}); the agent's Sharpe ranks \"\n"
        "      f\"{int((others['sharpe'] > agent_row['sharpe']).sum()) + 1} of {len(table)}\")"
    ),
    new_markdown_cell(
        "### An honest reading\n\n"
        "When we ran this notebook with the default budget (100,000 steps, seed 0; the cells above print your "
        "numbers, which change with the budget, the seed and the code version), the agent learned something on the "
        "training years: its episodes ended about 5% up on average, where random actions end within a few percent "
        "of the start. On the test split, a falling market for every strategy, it lost 10% against buy and hold's "
        "15%, with less volatility (15% against 25%) and a smaller drawdown (17% against 28%). But its Sharpe ratio "
        "(-0.41) was below buy and hold's (-0.31): it lost less mainly because it held less stock, not because it "
        "chose better stocks. On risk-adjusted terms it did not beat the simplest baseline.\n\n"
        "One seed on one split is an anecdote. To tell skill from luck, train several seeds and compare the spread of "
        "the agent's results with the baselines' (the `train` command does this with `train.seeds` and prints 95% "
        "intervals), and compare with the random-action spread of section 2."
    ),
    new_markdown_cell(
        "## What to try next\n\n"
        "- Observe the risk series (`StockTradingEnvConfig(observe_risk=True, ...)`) or stop buying in turbulent "
        "markets (`turbulence_threshold=...`).\n"
        "- Change the market rules: `lot_size`, `fractional=True`, `short_selling=True`, `t_plus_1=True`, "
        "`slippage_bps`, and see what they cost the agent and the baselines.\n"
        "- Change the reward: `reward='log_return'` or `'differential_sharpe'`.\n"
        "- Swap the agent: any backend's agent takes the same environment "
        "(`finrl_lite.agents.factory.make_agent(config, env)`), e.g. SB3's SAC or the native Double DQN.\n"
        "- Use real data: `DataProcessor('csv', path=...)` with the S&P 500 file, or `'yahoofinance'` online.\n"
        "- Tutorial 3 applies the same machinery to a market-microstructure problem (Nasdaq's M-ELO order type)."
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
        "import os\nimport tempfile\nfrom pathlib import Path\n\nimport pandas as pd\n\n"
        "from finrl_lite.config import load_config\nfrom finrl_lite.train.pipeline import backtest_run, train_run\n\n"
        "# The test suite runs this notebook with a tiny budget; raise it for a real run.\n"
        "STEPS = int(os.environ.get('FINRL_LITE_TUTORIAL_STEPS', 50_000))\n"
        "ROOT = Path.cwd().parent if Path.cwd().name == 'tutorials' else Path.cwd()\n"
        "# Runs go to a new temporary folder (never into the repository); set FINRL_LITE_TUTORIAL_OUT to keep them.\n"
        "OUT = Path(os.environ.get('FINRL_LITE_TUTORIAL_OUT') or tempfile.mkdtemp(prefix='finrl_lite_paper_'))"
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

POPULATION = [
    new_markdown_cell(
        "# Populations and ensembles\n\n"
        "One PPO run depends a lot on its hyper-parameters (learning rate, entropy bonus, clip range, discount, "
        "rollout length), and the best values change while the agent learns. **Population-based training** "
        "(PBT, Jaderberg et al. 2017) trains a population of agents at once and, every few thousand steps, lets the "
        "worst ones copy the weights of the best ones (*exploit*) and then perturb their hyper-parameters (*explore*). "
        "The result is a schedule of hyper-parameters found while training, at the cost of one population.\n\n"
        "finrl_lite runs the population on **Ray Tune** (`PopulationBasedTraining`, or `PB2`): on an embedded local Ray by "
        "default, on a cluster with `--address auto` (the same command runs on KubeRay GPU pods, `deploy/kuberay`). "
        "Three choices keep it honest:\n\n"
        "* trials are ranked on a back-test of the **validation split** (Sharpe by default), never on their training return;\n"
        "* an exploited trial really continues from the donor's checkpoint (weights, optimizer, step count, and the "
        "training environment's state) with its *own* new hyper-parameters;\n"
        "* the top agents and their ensemble are judged on the **test split**, against the baselines.\n\n"
        "The same steps from the command line:\n\n"
        "```bash\nfinrl-lite pbt --config configs/pbt.yaml --out runs/pbt\nfinrl-lite backtest runs/pbt --split trade\n"
        "finrl-lite ensemble --config configs/ensemble.yaml --out runs/ensemble\n```"
    ),
    new_code_cell(
        "import logging\nimport os\nimport tempfile\nfrom pathlib import Path\n\n"
        "import pandas as pd\nfrom IPython.display import Image, display\n\n"
        "from finrl_lite.config import load_config\nfrom finrl_lite.train.population import run_population\n\n"
        "# Tune's result logger warns when a trial PBT restarted has no result file yet (the leaderboard does not use them).\n"
        "logging.getLogger('ray.tune.logger').setLevel(logging.ERROR)\n"
        "# The test suite runs this notebook with a tiny budget; raise it for a real run.\n"
        "STEPS = int(os.environ.get('FINRL_LITE_TUTORIAL_STEPS', 60_000))  # environment steps per trial\n"
        "ROOT = Path.cwd().parent if Path.cwd().name == 'tutorials' else Path.cwd()\n"
        "# Runs go to a new temporary folder (never into the repository); set FINRL_LITE_TUTORIAL_OUT to keep them.\n"
        "OUT = Path(os.environ.get('FINRL_LITE_TUTORIAL_OUT') or tempfile.mkdtemp(prefix='finrl_lite_population_'))\n"
        "os.environ.setdefault('RAY_USAGE_STATS_ENABLED', '0')"
    ),
    new_markdown_cell(
        "## 1. The population\n"
        "`configs/pbt.yaml` is the quick-start market plus a `population:` section. Each trial learns `STEPS` "
        "environment steps; every `perturbation_interval` steps it back-tests its agent on the validation split and "
        "reports the metrics with a checkpoint. At each report PBT ranks the trial: a trial in the bottom "
        "`quantile_fraction` copies a top trial's checkpoint, then each mutated hyper-parameter is multiplied by 0.8 or "
        "1.2 (clipped back into its range) or resampled. The names are checked against what the agent can change while "
        "training, so a typo fails here, not an hour into the run."
    ),
    new_code_cell(
        "cfg = load_config(\n"
        "    ROOT / 'configs' / 'pbt.yaml',\n"
        "    [\n"
        "        f'train.total_timesteps={STEPS}',\n"
        "        f'population.perturbation_interval={max(STEPS // 6, 1)}',\n"
        "        'population.num_samples=4',\n"
        "        'population.top_k=2',\n"
        "        'population.num_cpus=2',\n"
        "        'env.num_envs=16',\n"
        "        f'data.cache.dir={OUT / \"cache\"}',\n"
        "    ],\n"
        ")\n"
        "pd.DataFrame({name: m.model_dump() for name, m in cfg.population.mutations.items()}).T"
    ),
    new_markdown_cell(
        "## 2. Run it\n"
        "`run_population` prepares the data, builds one trial's agent here to check the config, starts Ray, runs the "
        "population and then writes the run directory: `leaderboard.csv`, `population.png`, the top agents "
        "(`top_1/`, `top_2/`, loadable with `load_agent` and by `finrl-lite backtest`) and their ensemble (`ensemble/`, "
        "the mean of their actions)."
    ),
    new_code_cell(
        "import shutil\n\n"
        "shutil.rmtree(OUT / 'pbt', ignore_errors=True)  # re-running the notebook starts a new population\n"
        "metrics = run_population(cfg, OUT / 'pbt')\n"
        "sorted(p.name for p in (OUT / 'pbt').iterdir())"
    ),
    new_markdown_cell(
        "## 3. The leaderboard\n"
        "One row per report: the trial, its step count, the validation metrics, the hyper-parameters it trained with, "
        "the node it ran on, and for the first report after an exploit the **parent** trial whose checkpoint it "
        "continued from. `exploits.csv` is Ray's own log of the same events (`pbt_global.txt`) with the values before "
        "and after the perturbation."
    ),
    new_code_cell(
        "board = pd.read_csv(OUT / 'pbt' / 'leaderboard.csv', keep_default_na=False)\n"
        "hyper = list(cfg.population.mutations)\n"
        "board[['rank', 'trial_id', 'env_steps', 'validation_sharpe', *hyper, 'parent_trial']]"
    ),
    new_code_cell(
        "exploits = OUT / 'pbt' / 'exploits.csv'\n"
        "pd.read_csv(exploits) if exploits.is_file() else 'no exploit in this run (a tiny budget leaves little time)'"
    ),
    new_markdown_cell(
        "Each line is a trial's validation Sharpe over its training steps; an **x** with a dashed line is an exploit: "
        "the trial jumped to a copy of a better trial's checkpoint."
    ),
    new_code_cell("display(Image(filename=str(OUT / 'pbt' / 'population.png')))"),
    new_markdown_cell(
        "## 4. Out of sample\n"
        "The ranking used the validation split, so the validation numbers of the winners are optimistic by "
        "construction (they were selected on them). The test split was never looked at: that is where to judge them, "
        "against the baselines that trade through the same environment (fees, lots, next-open fills)."
    ),
    new_code_cell(
        "def table(split):\n"
        "    frame = pd.DataFrame({name: {m: v['mean'] for m, v in curve.items()} for name, curve in metrics[split].items()}).T\n"
        "    return frame[['cumulative_return', 'sharpe', 'max_drawdown', 'turnover']]\n\n\n"
        "test = table('test')\n"
        "test"
    ),
    new_code_cell("display(Image(filename=str(OUT / 'pbt' / 'report_test.png')))"),
    new_markdown_cell(
        "## 5. The other way to combine agents: FinRL's rolling-window ensemble\n"
        "PBT searches hyper-parameters once and then trusts one validation period. FinRL's ensemble strategy re-selects "
        "instead: `finrl-lite ensemble` (`configs/ensemble.yaml`) cuts the test split into trade windows of "
        "`rebalance_window` bars; before each window every candidate (PPO with two seeds, a faster PPO, a Double DQN) "
        "trains from scratch on every bar before the window's validation window, is scored there (Sharpe annualised "
        "from the bar interval; FinRL uses a literal `sqrt(4)`), and the best one trades the window. The windows chain "
        "into one out-of-sample account: cash and holdings carry from one window to the next."
    ),
    new_code_cell(
        "from finrl_lite.train.ensemble import ensemble_run\n\n"
        "ens_cfg = load_config(\n"
        "    ROOT / 'configs' / 'ensemble.yaml',\n"
        "    [f'train.total_timesteps={STEPS}', 'ensemble.parallel=none', f'data.cache.dir={OUT / \"cache\"}'],\n"
        ")\n"
        "rolling = ensemble_run(ens_cfg, OUT / 'ensemble')\n"
        "rolling.picks"
    ),
    new_code_cell("display(Image(filename=str(OUT / 'ensemble' / 'report_test.png')))"),
    new_markdown_cell(
        "## 6. Reading it honestly\n"
        "A Sharpe ratio estimated on a short window is noisy: its standard error is roughly "
        "`sqrt((1 + SR^2 / 2) / n)` per bar (Lo, 2002), about `sqrt(252 / n)` annualised, so on the ~190 test days "
        "here a difference below about 1.2 is within noise. The rolling ensemble trades from its first window's start, "
        "which may be a few bars into the split. The cell below states what the numbers say, whatever they say."
    ),
    new_code_cell(
        "import math\n\n"
        "rolling_test = pd.DataFrame({n: {m: v['mean'] for m, v in c.items()} for n, c in rolling.metrics['test'].items()}).T\n"
        "scores = pd.concat([test, rolling_test.loc[['agent']].rename(index={'agent': 'rolling ensemble'})])\n"
        "agents = [name for name in scores.index if name.startswith('top_') or 'ensemble' in name]\n"
        "baselines = scores.drop(index=agents)\n"
        "best_baseline = baselines['sharpe'].idxmax()\n"
        "days = len(pd.read_csv(OUT / 'pbt' / 'equity_test.csv'))\n"
        "noise = math.sqrt(252 / days)\n"
        "for name in agents:\n"
        "    gap = scores.loc[name, 'sharpe'] - baselines.loc[best_baseline, 'sharpe']\n"
        "    verdict = 'within noise of' if abs(gap) < noise else ('above' if gap > 0 else 'below')\n"
        "    print(f'{name}: test Sharpe {scores.loc[name, \"sharpe\"]:.2f}, {verdict} the best baseline '\n"
        "          f'({best_baseline}, {baselines.loc[best_baseline, \"sharpe\"]:.2f}; one standard error ~ {noise:.2f})')\n"
        "scores[['cumulative_return', 'sharpe', 'max_drawdown']]"
    ),
    new_markdown_cell(
        "With the tutorial's budget the agents have barely trained, and the synthetic market has no edge an agent can "
        "be sure to find: expect them to land near the baselines, on either side. The README's *Honest results* run "
        "`configs/pbt_sp500.yaml` on real S&P 500 data, three seeds, against a single PPO run of the same total budget: "
        "there the population's validation winners did not beat the single run, nor buying and holding, on the test "
        "split, and every gap was within one standard error. To go further: raise `STEPS`, grow "
        "`population.num_samples`, try `population.scheduler: pb2`, or join a Ray cluster with "
        "`run_population(cfg, out, address='auto')`."
    ),
]


def notebook(cells: list) -> nbformat.NotebookNode:
    """A notebook of ``cells`` with the python3 kernel, no outputs and stable cell ids (a rebuild changes nothing)."""
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number:02d}"
    return nb


NOTEBOOKS = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_stock_trading.ipynb": STOCK_TRADING,
    "04_population.ipynb": POPULATION,
    "05_paper_trading.ipynb": PAPER_TRADING,
}


def write(name: str, cells: list, folder: Path = HERE) -> Path:
    """Write one notebook into ``folder``."""
    path = folder / name
    nbformat.write(notebook(cells), path)
    return path


if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        write(name, cells)
