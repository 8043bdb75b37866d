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
        "import logging\nimport os\nfrom pathlib import Path\n\n"
        "import pandas as pd\nfrom IPython.display import Image, display\n\n"
        "from finrl_lite.config import load_config\nfrom finrl_lite.train.population import run_population\n\n"
        "# Tune's result logger warns when a trial PBT restarted has no result file yet (the leaderboard does not use them).\n"
        "logging.getLogger('ray.tune.logger').setLevel(logging.ERROR)\n"
        "# The test suite runs this notebook with a tiny budget; raise it for a real run.\n"
        "STEPS = int(os.environ.get('FINRL_LITE_TUTORIAL_STEPS', 60_000))  # environment steps per trial\n"
        "ROOT = Path.cwd().parent if Path.cwd().name == 'tutorials' else Path.cwd()\n"
        "OUT = Path(os.environ.get('FINRL_LITE_TUTORIAL_OUT', 'tutorial_runs'))\n"
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


def write(name: str, cells: list) -> Path:
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path = HERE / name
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    write("01_quickstart.ipynb", QUICKSTART)
    write("02_stock_trading.ipynb", STOCK_TRADING)
    write("04_population.ipynb", POPULATION)
