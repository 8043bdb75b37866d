"""MeloVecEnv's newer settings: grid actions, full information, the pooled reward, regime and symbol context."""

from __future__ import annotations

import pytest
import torch

from finrl_lite.envs.melo.config import MeloEnvConfig, MeloSimConfig
from finrl_lite.envs.melo.env import MeloEnvState, MeloVecEnv, column_scores
from finrl_lite.envs.melo.regime import predict_regime, regime_shares, update_regime
from finrl_lite.envs.melo.simulator import PeriodStats, make_tables
from finrl_lite.errors import ConfigError

GRID = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5]
CONTEXT = {"observe_regime": True, "observe_symbol": True, "observe_stats_at": "baseline"}


def _snapshot(env: MeloVecEnv) -> tuple[MeloEnvState, torch.Tensor]:
    return MeloEnvState(*[x.clone() for x in env.state]), env.generator.get_state()


def _restore(env: MeloVecEnv, snap: tuple[MeloEnvState, torch.Tensor]) -> None:
    env.state = MeloEnvState(*[x.clone() for x in snap[0]])
    env.generator.set_state(snap[1])


@pytest.mark.parametrize("mode", ["delta", "grid"])
def test_full_information_reports_what_each_action_would_have_earned(mode: str) -> None:
    """Replaying the same state and flow with each action gives exactly the counterfactual reward and next h."""
    sim = MeloSimConfig(num_envs=4, periods_per_day=6)
    cfg = MeloEnvConfig(action_mode=mode, reward_mode="pooled", instability_threshold=1.2, **CONTEXT)
    full = MeloVecEnv(sim, cfg, seed=2, counterfactual=True)
    plain = MeloVecEnv(sim, cfg, seed=2)
    full.reset()
    plain.reset()
    gen = torch.Generator().manual_seed(0)
    for _ in range(9):  # crosses a day boundary; some rows jump to h_max
        action = torch.randint(0, full.num_actions, (full.num_envs,), generator=gen)
        snap = _snapshot(full)
        _, reward, _, _, info = full.step(action)
        for a in range(full.num_actions):
            _restore(plain, snap)
            obs, r, _, truncated, i = plain.step(torch.full((plain.num_envs,), a))
            assert torch.equal(r, info["action_rewards"][:, a])
            assert torch.equal(i["final_obs"][:, plain.action_obs_column], info["action_next_values"][:, a])
            assert torch.equal(i["final_obs"][:, 1:], info["final_obs"][:, 1:])  # nothing else depends on the action
        assert torch.equal(reward, info["action_rewards"].gather(1, action.unsqueeze(1)).squeeze(1))
        _restore(plain, _snapshot(full))


def test_gathered_agent_column_equals_matching_it_again() -> None:
    """When every reachable h is a matched static column the agent's statistics are gathered, bit for bit."""
    sim = MeloSimConfig(num_envs=8, periods_per_day=20)
    gathered = MeloVecEnv(sim, seed=5, extra_holding_ms=GRID)
    matched = MeloVecEnv(sim, seed=5, extra_holding_ms=[0.3])
    assert gathered._agent_gathered and not matched._agent_gathered
    gathered.reset()
    matched.reset()
    gen = torch.Generator().manual_seed(1)
    for _ in range(25):
        action = torch.randint(0, 5, (gathered.num_envs,), generator=gen)
        o1, r1, _, _, i1 = gathered.step(action)
        o2, r2, _, _, i2 = matched.step(action)
        assert torch.equal(o1, o2) and torch.equal(r1, r2)
        for x, y in zip(i1["stats"], i2["stats"], strict=True):
            assert torch.equal(x[:, :2], y[:, :2])


def test_grid_actions_pick_h_and_an_instability_jump_overrides_them() -> None:
    cfg = MeloEnvConfig(action_mode="grid", instability_threshold=1e-3)
    env = MeloVecEnv(MeloSimConfig(num_envs=1, num_symbols=3, periods_per_day=10), cfg, seed=0)
    env.reset()
    assert env.num_actions == len(GRID) and env.action_high == len(GRID) - 1
    obs, _ = env.reset()
    assert obs[:, 0].tolist() == [0.0, 0.0, 0.0]  # grid actions pick h afresh: the entry says whether h_max is forced
    obs, _, _, _, info = env.step(torch.tensor([0, 3, 9]))
    assert info["h_ms"].tolist() == [0.25, 1.0, 2.5]
    assert bool(env.state.jumped.all()) and obs[:, 0].tolist() == [1.0, 1.0, 1.0]  # every period "unstable" here
    _, _, _, _, info = env.step(torch.tensor([0, 3, 9]))
    assert info["h_ms"].tolist() == [2.5, 2.5, 2.5]


def test_full_information_refuses_actions_that_leave_the_grid() -> None:
    with pytest.raises(ConfigError, match="off that grid"):
        MeloVecEnv(MeloSimConfig(num_envs=1), MeloEnvConfig(action_deltas_ms=[-0.1, 0.0, 0.1]), counterfactual=True)
    with pytest.raises(ConfigError, match="off that grid"):
        MeloVecEnv(MeloSimConfig(num_envs=1), MeloEnvConfig(action_mode="grid", holding_grid_ms=[0.5, 1.0]), counterfactual=True)
    MeloVecEnv(
        MeloSimConfig(num_envs=1),
        MeloEnvConfig(action_mode="grid", instability_threshold=None, holding_grid_ms=[0.5, 1.0]),
        counterfactual=True,
    )


def test_observation_carries_regime_belief_and_symbol() -> None:
    env = MeloVecEnv(MeloSimConfig(num_envs=2, num_symbols=3, periods_per_day=5), MeloEnvConfig(**CONTEXT), seed=0)
    obs, _ = env.reset()
    assert env.observation_size == 2 + 3 + 3 + 4 * 11 and obs.shape == (6, env.observation_size)
    shares = regime_shares(env.tables)
    assert torch.allclose(obs[:, 2:5], shares.expand(6, 3))  # nothing observed yet: the stationary law
    assert obs[:, 5:8].argmax(1).tolist() == [0, 1, 2, 0, 1, 2] and torch.equal(obs[:, 5:8].sum(1), torch.ones(6))
    obs, *_ = env.step(torch.full((6,), 2))
    assert torch.allclose(obs[:, 2:5].sum(1), torch.ones(6)) and torch.equal(obs[:, 2:5], env.state.belief)


def test_regime_filter_by_hand_and_on_simulated_days() -> None:
    sim = MeloSimConfig(num_envs=64, num_symbols=1)
    tables = make_tables(sim, 64)
    p = float(tables.switch_prob)
    shares = regime_shares(tables).double()
    post = torch.tensor([[0.2, 0.5, 0.3]], dtype=torch.float64)
    prior = (1 - p) * post + p * shares
    assert torch.allclose(predict_regime(post, tables).double(), prior, atol=1e-6)
    period = torch.tensor([390])
    rate = (tables.moves_per_period[:1] * float(tables.u_shape[0] + tables.u_shape[1] * (2 * 390.5 / 780 - 1) ** 2)).double()
    rate = rate * tables.regime_rate.double()
    like = torch.exp(40 * torch.log(rate) - rate - (40 * torch.log(rate) - rate).max())
    want = prior * like / (prior * like).sum()
    got = update_regime(post.float(), torch.tensor([40.0]), make_tables(sim, 1), period, 780)
    assert torch.allclose(got.double(), want, atol=1e-5)
    # on simulated periods the filter names the regime of the period just seen most of the time
    env = MeloVecEnv(sim, MeloEnvConfig(**CONTEXT), seed=3)
    env.reset()
    hits = total = 0
    for _ in range(60):
        *_, info = env.step(torch.full((64,), 2))
        hits += int((info["belief"].argmax(1) == info["regime"]).sum())
        total += 64
    assert hits / total > 0.85


def test_pooled_and_published_scores_by_hand() -> None:
    one = lambda *v: torch.tensor([list(v)])  # noqa: E731
    stats = PeriodStats(
        submitted=one(8.0, 8.0),
        filled=one(4.0, 2.0),
        fill_rate=one(0.5, 0.25),
        uninformed_fills=one(2.0, 0.0),
        cost_1s=one(0.2, 0.0),
        cost_5s=one(0.4, 0.0),
        markout_1s=one(0.1, 0.0),
        markout_5s=one(0.2, 0.0),
        cancels=one(4.0, 6.0),
        signal_1s=one(0.05, 0.0),
        signal_5s=one(0.1, 0.0),
    )
    cfg = MeloEnvConfig(reward_lambda=0.6, markout_scale_bps=0.01, fill_rate_scale=0.05, markout_ref_bps=0.02, fills_ref=1.5)
    published = column_scores(stats, cfg, 7.5)
    assert torch.allclose(published, torch.tensor([[0.6 * -5.0 + 0.4 * 10.0, 0.4 * 5.0]]))
    pooled = column_scores(stats, cfg, 7.5, mode="pooled")
    # markout: -(0.05 * 2 - 0.02 * 2) / (1.5 * 0.01) = -4; fills: 4 / (7.5 * 0.05) = 10.667
    assert torch.allclose(pooled, torch.tensor([[0.6 * -4.0 + 0.4 * 4.0 / 0.375, 0.4 * 2.0 / 0.375]]))
    env = MeloVecEnv(MeloSimConfig(num_envs=1), cfg)
    assert env.submitted_ref == pytest.approx(6.0 + (0.47 * 0.3 + 0.394 * 1.0 + 0.136 * 3.0) / 1.0 + 0.5, rel=1e-3)


def test_configs_written_before_the_rename_still_load() -> None:
    assert MeloEnvConfig.model_validate({"reward_markout_mode": "period"}).reward_mode == "published"
    assert MeloEnvConfig.model_validate({"reward_markout_mode": "share_weighted"}).reward_mode == "share_weighted"
    with pytest.raises(ValueError, match="holding_grid_ms"):
        MeloEnvConfig(holding_grid_ms=[1.0, 0.5])
