"""M-ELO training (both learners, checkpoints, exact resume, the regime table) and the honest evaluation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from finrl_lite.agents.native.full_information import FullInformationDQN
from finrl_lite.errors import ConfigError
from finrl_lite.melo_config import MeloConfig
from finrl_lite.train.melo import (
    TrainingInterrupted,
    evaluate_melo,
    regime_table_of,
    summarize_evaluations,
    train_env_seed,
    train_melo,
)
from finrl_lite.train.melo_eval import frontier_markout
from finrl_lite.train.melo_table import RegimeTable, fit_regime_table

FULL = {
    "sim": {"num_envs": 1, "periods_per_day": 12},
    "env": {
        "action_mode": "grid",
        "reward_mode": "pooled",
        "observe_regime": True,
        "observe_symbol": True,
        "observe_stats_at": "baseline",
    },
    "agent": {
        "learner": "full_information",
        "hidden": [8],
        "batch_size": 16,
        "gradient_steps": 2,
        "gamma": 0.0,
        "buffer_size": 2000,
    },
    "train": {"days": 3, "seed": 1},
    "evaluate": {"static_grid_ms": [0.5, 1.0, 1.5, 2.5]},
}


def _cfg(**updates: object) -> MeloConfig:
    data = {k: dict(v) for k, v in FULL.items()}
    for key, value in updates.items():
        section, field = key.split("__")
        data[section][field] = value
    return MeloConfig.model_validate(data)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("learner", ["full_information", "one_action"])
def test_interrupted_training_resumes_exactly(tmp_path: Path, learner: str) -> None:
    cfg = (
        _cfg(agent__learner=learner) if learner == "full_information" else _cfg(agent__learner=learner, env__action_mode="delta")
    )
    whole = train_melo(cfg)
    days_seen: list[int] = []
    with pytest.raises(TrainingInterrupted) as stopped:
        train_melo(
            cfg, callback=lambda s: days_seen.append(int(s["day"])), run_dir=tmp_path, should_stop=lambda: len(days_seen) >= 2
        )
    assert stopped.value.days == 2 and (tmp_path / "checkpoint" / "agent.pt").is_file()
    assert {p.name for p in (tmp_path / "checkpoint").iterdir()} >= {"agent.pt", "env.pt", "history.json"}
    resumed = train_melo(cfg, run_dir=tmp_path, resume=True)
    assert _same_weights(whole.agent.q, resumed.agent.q) and _same_weights(whole.agent.q_target, resumed.agent.q_target)
    assert [h["mean_reward"] for h in whole.history] == [h["mean_reward"] for h in resumed.history]
    assert resumed.table == whole.table and len(resumed.history) == 3
    full = learner == "full_information"
    assert isinstance(whole.agent, FullInformationDQN) == full and (whole.table is not None) == full
    if not full:  # a one-action simulator matches no grid: the table is a separate pass over the same days
        assert regime_table_of(cfg) == train_melo(cfg.model_copy(update={"agent": _cfg().agent})).table


@pytest.mark.parametrize("crash", ["before_the_swap", "between_the_renames"])
def test_a_checkpoint_swap_interrupted_by_a_crash_resumes(tmp_path: Path, crash: str) -> None:
    cfg = _cfg()
    whole = train_melo(cfg)
    days_seen: list[int] = []
    with pytest.raises(TrainingInterrupted):
        train_melo(
            cfg, callback=lambda s: days_seen.append(int(s["day"])), run_dir=tmp_path, should_stop=lambda: len(days_seen) >= 2
        )
    final = tmp_path / "checkpoint"
    if crash == "before_the_swap":  # the next checkpoint was being staged: incomplete, its history not yet written
        (tmp_path / "checkpoint.new").mkdir()
        (tmp_path / "checkpoint.new" / "agent.pt").write_bytes(b"partial")
    else:  # the staged checkpoint was complete, the old one moved aside, the new one not yet in place
        final.rename(tmp_path / "checkpoint.new")
    resumed = train_melo(cfg, run_dir=tmp_path, resume=True)
    assert _same_weights(whole.agent.q, resumed.agent.q) and len(resumed.history) == 3
    assert not (tmp_path / "checkpoint.new").exists() and not (tmp_path / "checkpoint.old").exists()


def test_resume_without_a_checkpoint_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no checkpoint"):
        train_melo(_cfg(), run_dir=tmp_path, resume=True)


def test_table_of_full_information_training_is_the_table_of_its_training_days() -> None:
    """Actions do not change the order flow: the table summed while training equals a separate pass over the days."""
    cfg = _cfg()
    trained = train_melo(cfg)
    again = fit_regime_table(cfg, train_env_seed(cfg.train.seed), cfg.train.days)
    assert trained.table == again
    assert trained.table.days == 3 and sum(map(sum, trained.table.periods)) == 3 * 12 * 3
    assert all(h in cfg.env.holding_grid_ms for row in trained.table.h_ms for h in row)
    assert RegimeTable.from_dict(trained.table.to_dict()) == trained.table


def test_warm_start_regresses_onto_the_table() -> None:
    cold = train_melo(_cfg(train__days=1, agent__gradient_steps=0))
    warm = train_melo(_cfg(train__days=1, agent__gradient_steps=0, agent__warm_start_days=1, agent__warm_start_steps=50))
    assert not _same_weights(cold.agent.q, warm.agent.q) and _same_weights(warm.agent.q, warm.agent.q_target)


def test_frontier_markout_by_hand() -> None:
    statics = [(0.30, 0.05), (0.20, 0.03), (0.10, 0.02), (0.15, 0.04)]  # (0.15, 0.04) is dominated by (0.20, 0.03)
    assert frontier_markout(0.25, statics) == pytest.approx(0.04)
    assert frontier_markout(0.15, statics) == pytest.approx(0.025)
    assert frontier_markout(0.20, statics) == pytest.approx(0.03)
    assert frontier_markout(0.35, statics) is None and frontier_markout(0.05, statics) is None


def test_a_static_policy_sits_on_the_frontier_and_the_table_is_replayed() -> None:
    """A policy that always picks 1.5 ms has exactly the figures of static 1.5 ms: gap 0, never dominated."""
    cfg = _cfg()
    table = fit_regime_table(cfg, train_env_seed(cfg.train.seed), 2)
    index = cfg.env.holding_grid_ms.index(1.5)
    result = evaluate_melo(lambda obs: torch.full((obs.shape[0],), index), cfg, days=3, seed=2, table=table)
    for figure in ("fill_rate", "markout_bps"):
        assert result["per_day"]["agent"][figure] == result["per_day"]["static 1.5"][figure]
    assert all(g == pytest.approx(0.0, abs=1e-12) for g in result["frontier"]["agent_gap_bps"])
    assert result["targets"]["days_a_static_dominates"] == 0 and not result["targets"]["beats_frontier"]
    assert result["targets"]["days_needed"] == math.ceil(0.9 * 3) and not result["targets"]["met"]
    assert result["best_static_training_ms"] == table.best_static_ms
    assert set(result["spread"]["agent"]) == {"fill_rate", "markout_bps", "objective", "frontier_gap_bps"}
    assert result["spread"]["agent"]["fill_rate"]["n"] == 3
    # the table policy replayed by hand: a constant table is that static
    flat = RegimeTable(table.grid_ms, table.symbols, [[1.0] * 3] * 3, table.periods, 2, table.static, 1.0)
    flat_result = evaluate_melo(lambda obs: torch.full((obs.shape[0],), index), cfg, days=1, seed=2, table=flat)
    assert flat_result["per_day"]["regime_table"]["fill_rate"] == flat_result["per_day"]["static 1"]["fill_rate"]
    two_symbols = RegimeTable(
        table.grid_ms, table.symbols[:2], [row[:2] for row in table.h_ms], table.periods, 2, table.static, 1.0
    )
    with pytest.raises(ConfigError, match="covers 2 symbols"):
        evaluate_melo(lambda obs: torch.full((obs.shape[0],), index), cfg, days=1, seed=2, table=two_symbols)
    with pytest.raises(ConfigError, match="3 regimes"):
        RegimeTable.from_dict(table.to_dict() | {"h_ms": [[1.0, 1.0, 1.0]]})
    summary = summarize_evaluations([result, result], ["a", "b"])
    assert summary["over_training_seeds"]["agent"]["fill_rate"]["mean"] == pytest.approx(
        result["spread"]["agent"]["fill_rate"]["mean"]
    )
    assert summary["over_seed_days"]["agent"]["fill_rate"]["n"] == 6 and summary["met_for_every_run"] is False


def test_the_tables_statics_use_the_configured_markout_horizon() -> None:
    """The training days' statics (and so the best static) are figured at ``env.reward_markout``, as evaluation is."""
    one, five = (fit_regime_table(_cfg(env__reward_markout=h), train_env_seed(1), 1) for h in ("1s", "5s"))
    for h in one.static:
        assert five.static[h]["fill_rate"] == one.static[h]["fill_rate"]  # the same days
        assert five.static[h]["markout_bps"] != one.static[h]["markout_bps"]
