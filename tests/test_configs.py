"""Every shipped config trains and back-tests through the CLI with a tiny budget (its own env and agent settings).

- ``dow30_ppo.yaml`` needs Yahoo Finance: it runs on the synthetic source with the same 29 tickers, dates, splits,
  environment and agent (offline); its Yahoo path is covered offline in tests/test_sources_remote.py.
- ``sp500_csv.yaml`` and ``crypto_csv.yaml`` run on the real files of ../shared/data (skipped when absent).
- the M-ELO, ensemble, population and paper-trading configs have their own commands (``finrl-lite melo``,
  ``ensemble``, ``pbt``, ``paper``), run with a tiny budget by the test files of OWN_COMMAND.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from finrl_lite.cli import app
from finrl_lite.config import load_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
BUDGET = 512
runner = CliRunner()

OFFLINE_STAND_IN = {"dow30_ppo.yaml": ["data.source=synthetic"]}
REAL_FILES = {"sp500_csv.yaml": "sp500_path", "crypto_csv.yaml": "crypto_path"}
OWN_COMMAND = {
    "melo_ddqn.yaml": "tests/melo/test_cli_melo.py",
    "melo_published.yaml": "tests/melo/test_cli_melo.py",
    "ensemble.yaml": "tests/train/test_ensemble.py",
    "paper_sim.yaml": "tests/trade/test_paper_cli.py",
    "pbt.yaml": "tests/test_population.py",
    "pbt_sp500.yaml": "tests/test_population.py",
}
TRAINED_HERE = ["quickstart.yaml", "ddqn.yaml", "portfolio.yaml", "dow30_ppo.yaml", "sp500_csv.yaml", "crypto_csv.yaml"]


def test_every_config_is_covered() -> None:
    shipped = sorted(p.name for p in CONFIGS.glob("*.yaml"))
    assert shipped == sorted([*TRAINED_HERE, *OWN_COMMAND])
    for name, test_file in OWN_COMMAND.items():
        text = (REPO / test_file).read_text()
        assert name in text, (name, test_file)  # the test that runs it names it


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINED_HERE)
def test_config_trains_and_backtests(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    sets = [
        f"train.total_timesteps={BUDGET}",
        "train.checkpoint_every=0",
        "train.seeds=[0]",
        f"data.cache.dir={tmp_path / 'cache'}",
        *OFFLINE_STAND_IN.get(name, []),
    ]
    if name in REAL_FILES:
        sets.append(f"data.path={request.getfixturevalue(REAL_FILES[name])}")
    config = CONFIGS / name
    cfg = load_config(config, sets)
    run = tmp_path / "run"
    args = ["train", "--config", str(config), "--out", str(run)]
    result = runner.invoke(app, [*args, *(a for s in sets for a in ("--set", s))])
    assert result.exit_code == 0, result.output
    progress = json.loads((run / "seed_0" / "progress.json").read_text())
    assert progress["done"] and BUDGET <= progress["steps"] < BUDGET + cfg.env.num_envs  # the budget asked, learned
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == set(cfg.train.eval_splits) and all("agent" in metrics[s] for s in metrics)

    split = "trade" if "trade" in cfg.data.splits else "test"
    result = runner.invoke(app, ["backtest", str(run), "--split", split])
    assert result.exit_code == 0, result.output
    backtest = json.loads((run / f"backtest_{split}.json").read_text())
    assert {"agent", *cfg.train.baselines} <= set(backtest[split])
