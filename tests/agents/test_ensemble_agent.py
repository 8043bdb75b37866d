"""Ensemble policies over trained agents: hand-computed pick-best, mean and vote; save/load round trips."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from finrl_lite.agents.backends import BACKENDS, AgentBackend
from finrl_lite.agents.ensemble import EnsembleAgent, EnsembleMember, save_ensemble
from finrl_lite.agents.factory import load_agent, make_agent
from finrl_lite.config import AgentConfig
from finrl_lite.data_processors import DataProcessor
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.errors import ConfigError

N = 3  # tickers of the toy actions


class LinearToy:
    """A continuous toy: ``tanh(obs @ weights)``, saved as JSON."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)
        self.num_timesteps = 10

    def learn(self, total_timesteps: int, callback: Any = None) -> LinearToy:
        return self

    def predict(self, obs: Any, deterministic: bool = True) -> Any:
        if isinstance(obs, torch.Tensor):
            return torch.tanh(obs.to(torch.float64) @ torch.as_tensor(self.weights, device=obs.device))
        return np.tanh(np.asarray(obs, dtype=np.float64) @ self.weights)

    def save(self, path: str | Path, training_state: bool = False) -> Path:
        Path(path).write_text(json.dumps({"weights": self.weights.tolist()}))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, env: Any = None) -> LinearToy:
        return cls(np.array(json.loads(Path(path).read_text())["weights"]))


class ChoiceToy:
    """A DQN-like toy: the choice of row ``i`` is ``choices[i]``, returned as ``discrete_to_box`` would (float64)."""

    def __init__(self, choices: list[int]) -> None:
        self.choices = list(choices)

    def learn(self, total_timesteps: int, callback: Any = None) -> ChoiceToy:
        return self

    def predict(self, obs: Any, deterministic: bool = True) -> Any:
        box = np.zeros((len(self.choices), N))
        for row, c in enumerate(self.choices):
            if 1 <= c <= N:
                box[row, c - 1] = 1.0
            elif c > N:
                box[row, c - N - 1] = -1.0
        return torch.as_tensor(box, device=obs.device) if isinstance(obs, torch.Tensor) else box

    def save(self, path: str | Path, training_state: bool = False) -> Path:
        Path(path).write_text(json.dumps({"choices": self.choices}))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, env: Any = None) -> ChoiceToy:
        return cls(json.loads(Path(path).read_text())["choices"])


@pytest.fixture(autouse=True)
def toy_backend() -> Iterator[AgentBackend]:
    algos = {"linear": LinearToy, "choice": ChoiceToy}
    backend = AgentBackend(name="toy", algos=algos, build=LinearToy, file_name="toy.json", discrete_algos={"choice"})
    with BACKENDS.registered(backend):
        yield backend


# Built without validation: the toy backend is registered only while a test runs.
LINEAR = AgentConfig.model_construct(backend="toy", algo="linear", params={})
CHOICE = AgentConfig.model_construct(backend="toy", algo="choice", params={})


def _linear(name: str, seed: int, score: float = float("nan")) -> EnsembleMember:
    weights = np.random.default_rng(seed).normal(size=(4, N))
    return EnsembleMember(name, LinearToy(weights), LINEAR, score)


def _choice(name: str, choices: list[int], score: float = float("nan")) -> EnsembleMember:
    return EnsembleMember(name, ChoiceToy(choices), CHOICE, score)


OBS = np.random.default_rng(0).normal(size=(5, 4))


def test_pick_best_acts_as_the_highest_score_ties_to_the_earliest() -> None:
    members = [_linear("a", 0, 0.5), _linear("b", 1, 1.5), _linear("c", 2, 1.5), _linear("d", 3, -1.0)]
    policy = EnsembleAgent(members)
    assert policy.best == 1
    np.testing.assert_array_equal(policy.predict(OBS), np.tanh(OBS @ members[1].agent.weights))
    with_nan = EnsembleAgent([_linear("a", 0, float("-inf")), _linear("b", 1, -3.0)])
    assert with_nan.best == 1


def test_mean_is_the_entrywise_average_numpy_and_torch() -> None:
    members = [_linear("a", 0), _linear("b", 1), _linear("c", 2)]
    policy = EnsembleAgent(members, mode="mean")
    by_hand = sum(np.tanh(OBS @ m.agent.weights) for m in members) / 3
    out = policy.predict(OBS)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_allclose(out, by_hand, rtol=0, atol=1e-15)
    out_t = policy.predict(torch.as_tensor(OBS))
    assert isinstance(out_t, torch.Tensor)
    np.testing.assert_allclose(out_t.numpy(), by_hand, rtol=0, atol=1e-15)


def test_mean_of_discrete_members_sends_each_trade_at_a_fraction() -> None:
    # Buy ticker 0 / buy ticker 0 / sell ticker 2 -> 2/3 of a buy of ticker 0 and 1/3 of a sell of ticker 2.
    policy = EnsembleAgent([_choice("a", [1]), _choice("b", [1]), _choice("c", [6])], mode="mean")
    np.testing.assert_allclose(policy.predict(OBS[:1]), [[2 / 3, 0.0, -1 / 3]], rtol=0, atol=1e-15)


# Rows: three members' choices (0 hold, 1..3 buy, 4..6 sell) and the vote.
VOTES = [
    ((2, 2, 5), 2),  # majority
    ((4, 1, 4), 4),  # majority against the first member
    ((3, 6, 0), 3),  # three-way tie: the first member's choice
    ((0, 5, 5), 5),
    ((6, 6, 6), 6),
]


def test_vote_is_the_majority_ties_go_to_the_earliest_member() -> None:
    columns = list(zip(*(row for row, _ in VOTES), strict=True))
    policy = EnsembleAgent([_choice(f"m{k}", list(col)) for k, col in enumerate(columns)], mode="vote")
    expected = ChoiceToy([vote for _, vote in VOTES]).predict(OBS)
    np.testing.assert_array_equal(policy.predict(OBS), expected)
    np.testing.assert_array_equal(policy.predict(torch.as_tensor(OBS)).numpy(), expected)


def test_vote_two_way_split_follows_the_first_member() -> None:
    first, second = [1, 0, 5, 6, 2], [4, 3, 0, 6, 2]
    assert np.array_equal(
        EnsembleAgent([_choice("a", first), _choice("b", second)], mode="vote").predict(OBS), ChoiceToy(first).predict(OBS)
    )
    assert np.array_equal(
        EnsembleAgent([_choice("b", second), _choice("a", first)], mode="vote").predict(OBS), ChoiceToy(second).predict(OBS)
    )


@pytest.mark.parametrize(
    ("members", "mode", "message"),
    [
        ([], "mean", "at least one member"),
        ([_linear("a", 0, 1.0)], "median", "unknown ensemble mode 'median'"),
        ([_linear("a", 0, 1.0), _linear("a", 1, 2.0)], "pick_best", "unique; repeated: a"),
        ([_linear("../x", 0, 1.0)], "mean", "plain folder name"),
        ([_linear("agent.json", 0, 1.0)], "mean", "plain folder name"),
        ([_linear("a", 0, 1.0), _linear("b", 1)], "pick_best", "no score: b"),
        ([_choice("a", [1]), _linear("b", 1)], "vote", r"continuous: b \(toy linear\)"),
    ],
)
def test_bad_ensembles_are_refused(members: list[EnsembleMember], mode: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EnsembleAgent(members, mode=mode)


def test_members_with_other_action_shapes_are_a_clear_error() -> None:
    wide = EnsembleMember("wide", LinearToy(np.ones((4, N + 1))), LINEAR)
    with pytest.raises(ConfigError, match=r"disagree on the action shape: a \(5, 3\), wide \(5, 4\)"):
        EnsembleAgent([_linear("a", 0), wide], mode="mean").predict(OBS)


def test_an_ensemble_does_not_learn() -> None:
    with pytest.raises(ConfigError, match="does not learn"):
        EnsembleAgent([_linear("a", 0, 1.0)]).learn(100)


@pytest.mark.parametrize("mode", ["pick_best", "mean"])
def test_save_load_round_trip_through_load_agent(tmp_path: Path, mode: str) -> None:
    policy = EnsembleAgent([_linear("x", 0, 0.25), _linear("y", 1, 2.0), _linear("z", 2, float("-inf"))], mode=mode)
    directory = save_ensemble(policy, tmp_path / "ens")
    assert json.loads((directory / "agent.json").read_text()) == {"composite": "ensemble", "file": "ensemble.json"}
    assert {p.name for p in directory.iterdir()} == {"agent.json", "ensemble.json", "x", "y", "z"}
    loaded = load_agent(directory)
    assert isinstance(loaded, EnsembleAgent) and loaded.mode == mode
    assert [(m.name, m.score, m.config) for m in loaded.members] == [(m.name, m.score, m.config) for m in policy.members]
    np.testing.assert_array_equal(loaded.predict(OBS), policy.predict(OBS))


def test_vote_round_trip_keeps_member_order(tmp_path: Path) -> None:
    policy = EnsembleAgent([_choice("b", [1, 2, 3]), _choice("a", [4, 5, 6])], mode="vote")
    loaded = load_agent(save_ensemble(policy, tmp_path / "v"))
    assert [m.name for m in loaded.members] == ["b", "a"]
    np.testing.assert_array_equal(loaded.predict(OBS[:3]), policy.predict(OBS[:3]))


def test_a_damaged_manifest_is_a_clear_error(tmp_path: Path) -> None:
    directory = save_ensemble(EnsembleAgent([_linear("a", 0, 1.0)]), tmp_path / "e")
    (directory / "ensemble.json").write_text(json.dumps({"format": 1, "mode": "mean", "members": [{"name": "gone"}]}))
    with pytest.raises(ConfigError, match=r"ensemble.json: not a loadable ensemble"):
        load_agent(directory)
    (directory / "agent.json").write_text(json.dumps({"composite": "committee", "file": "ensemble.json"}))
    with pytest.raises(ConfigError, match="unknown composite agent 'committee'"):
        load_agent(directory)


def _env() -> StockTradingVecEnv:
    dp = DataProcessor("synthetic", num_tickers=N, seed=2)
    market = dp.to_market_data(dp.add_indicators(dp.clean(dp.download([], "2019-01-01", "2019-06-30")), ["macd"]))
    return StockTradingVecEnv(market, StockTradingParams(episode_length=20), num_envs=2, seed=0)


def test_native_members_mean_and_vote_round_trip(tmp_path: Path) -> None:
    env = _env()
    ppo, ddqn = AgentConfig(algo="ppo"), AgentConfig(algo="ddqn")
    members = [
        EnsembleMember("ppo0", make_agent(ppo, env, seed=0), ppo, 1.0),
        EnsembleMember("ddqn0", make_agent(ddqn, env, seed=0), ddqn, 0.5),
        EnsembleMember("ddqn1", make_agent(ddqn, env, seed=1), ddqn, 0.7),
    ]
    obs = torch.rand(6, env.observation_size, dtype=torch.float64)
    mean = EnsembleAgent(members, mode="mean")
    by_hand = sum(m.agent.predict(obs).to(torch.float64) for m in members) / 3
    torch.testing.assert_close(mean.predict(obs), by_hand, rtol=0, atol=1e-12)
    loaded = load_agent(save_ensemble(mean, tmp_path / "mean"))
    torch.testing.assert_close(loaded.predict(obs), mean.predict(obs), rtol=0, atol=0)

    vote = EnsembleAgent(members[1:], mode="vote")  # two members: every split follows ddqn0
    torch.testing.assert_close(vote.predict(obs), members[1].agent.predict(obs), rtol=0, atol=0)
    torch.testing.assert_close(load_agent(save_ensemble(vote, tmp_path / "vote")).predict(obs), vote.predict(obs))


def test_backends_declare_their_discrete_algorithms() -> None:
    assert {(b.name, a) for b in BACKENDS if b.name != "toy" for a in b.discrete_algos} == {
        ("native", "ddqn"),
        ("sb3", "dqn"),
        ("sb3", "ddqn"),
        ("rllib", "dqn"),
    }
    with pytest.raises(ConfigError, match=r"discrete_algos \['dqn'\] are not among its algos"):
        AgentBackend(name="x", algos={"ppo": LinearToy}, build=LinearToy, file_name="m", discrete_algos={"dqn"})
