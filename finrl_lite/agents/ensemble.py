"""Ensemble policies over trained agents: pick-best, mean action and majority vote.

An :class:`EnsembleAgent` is an :class:`~finrl_lite.agents.base.Agent` made of trained members; it never
learns itself. Its ``mode`` says how the members' actions become one:

* ``pick_best``: the member with the highest ``score`` (a validation metric) acts alone; ties go to the
  earliest member. FinRL's rolling-window ensemble is this mode.
* ``mean``: the members' Box actions averaged entry by entry. For a continuous member that is its order
  size; for a DQN-family member, whose ``predict`` returns the Box action of one discrete choice (hold, or
  buy / sell ``hmax`` shares of one ticker: :mod:`finrl_lite.envs.discrete_actions`), averaging sends each
  member's trade at ``1/M`` of its size, so the ensemble may trade several tickers at once and is no longer
  one of the discrete choices. Use ``vote`` to stay within them.
* ``vote``: a majority vote over the discrete choices of DQN-family members (every member must be one). A tie
  goes to the tied choice of the earliest member, so list members best first (the rolling-window trainer and
  the population's top-k do): a two-member split follows the better one.

Example:
    >>> members = [EnsembleMember("ppo_s0", agent0, AgentConfig(algo="ppo"), score=1.2),
    ...            EnsembleMember("ppo_s1", agent1, AgentConfig(algo="ppo"), score=0.8)]
    >>> policy = EnsembleAgent(members, mode="mean")
    >>> save_ensemble(policy, "runs/x/ensemble")      # a folder load_agent reads
    >>> policy = load_agent("runs/x/ensemble")

Saved layout (:func:`save_ensemble`)::

    DIR/
      agent.json      {"composite": "ensemble", "file": "ensemble.json"} (read by load_agent)
      ensemble.json   the mode and the members in order: name, backend, algo, score
      <name>/         each member as save_agent writes it
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finrl_lite.agents.backends import BACKENDS
from finrl_lite.agents.base import Agent, ProgressCallback
from finrl_lite.agents.factory import load_agent, save_agent, save_composite_agent
from finrl_lite.config import AgentConfig
from finrl_lite.envs.discrete_actions import discrete_to_box
from finrl_lite.errors import ConfigError
from finrl_lite.io import atomic_write_text

__all__ = ["ENSEMBLE_MODES", "EnsembleAgent", "EnsembleMember", "save_ensemble"]

logger = logging.getLogger(__name__)

ENSEMBLE_MODES = ("pick_best", "mean", "vote")
"""How an :class:`EnsembleAgent` combines its members (see the module docstring)."""

_FORMAT = 1
_RESERVED = {"agent.json", "ensemble.json"}


@dataclass(frozen=True)
class EnsembleMember:
    """One trained member of an ensemble.

    Attributes:
        name: unique within the ensemble; also the member's folder name when saved.
        agent: the trained agent.
        config: the agent's ``agent`` config section (backend, algo, params), used to save and load it.
        score: its selection score (a validation metric, higher is better); NaN when unknown.
    """

    name: str
    agent: Agent
    config: AgentConfig
    score: float = float("nan")

    @property
    def discrete(self) -> bool:
        """Whether ``predict`` returns the Box action of a discrete choice (a DQN-family algorithm)."""
        return self.config.algo in BACKENDS.get(self.config.backend).discrete_algos


class EnsembleAgent:
    """A policy over trained members (see the module docstring for the modes).

    Args:
        members: the trained members, in order (best first where order matters: ``vote`` ties, ``pick_best`` ties).
        mode: ``"pick_best"``, ``"mean"`` or ``"vote"``.

    Raises:
        ConfigError: no member, an unknown mode, duplicate or unsafe member names, ``pick_best`` with a member
            without a score, or ``vote`` with a member whose actions are not discrete choices.
    """

    def __init__(self, members: Sequence[EnsembleMember], mode: str = "pick_best") -> None:
        members = tuple(members)
        if not members:
            raise ConfigError("an ensemble needs at least one member")
        if mode not in ENSEMBLE_MODES:
            raise ConfigError(f"unknown ensemble mode {mode!r}; choose one of {', '.join(ENSEMBLE_MODES)}")
        names = [m.name for m in members]
        for name in names:
            if not name or Path(name).name != name or name in (".", "..") or name in _RESERVED:
                raise ConfigError(f"ensemble member name {name!r} must be a plain folder name other than {sorted(_RESERVED)}")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"ensemble member names must be unique; repeated: {', '.join(duplicates)}")
        if mode == "pick_best":
            unscored = [m.name for m in members if math.isnan(m.score)]
            if unscored:
                raise ConfigError(f"pick_best needs a score for every member; no score: {', '.join(unscored)}")
        if mode == "vote":
            continuous = [f"{m.name} ({m.config.backend} {m.config.algo})" for m in members if not m.discrete]
            if continuous:
                raise ConfigError(
                    "vote needs members whose actions are discrete choices (DQN-family algorithms); "
                    f"continuous: {', '.join(continuous)}; use mode 'mean' for them"
                )
        self.members = members
        self.mode = mode

    @property
    def best(self) -> int:
        """Index of the member with the highest score (NaN counts as lowest; ties: the earliest)."""
        scores = [-math.inf if math.isnan(m.score) else m.score for m in self.members]
        return int(np.argmax(scores))

    @property
    def num_timesteps(self) -> int:
        """Environment steps its members learned from, together."""
        return sum(int(getattr(m.agent, "num_timesteps", 0)) for m in self.members)

    def learn(self, total_timesteps: int, callback: ProgressCallback | None = None) -> EnsembleAgent:
        """Not supported: an ensemble is assembled from trained members; train each member, then assemble."""
        raise ConfigError(
            "an EnsembleAgent does not learn: it is assembled from trained agents; train its members and build a new ensemble"
        )

    def predict(self, obs: Any, deterministic: bool = True) -> Any:
        """Actions ``[B, N]`` for observations ``[B, D]`` (numpy in, numpy out; torch in, torch out, on its device).

        ``pick_best`` returns the best member's output unchanged; ``mean`` and ``vote`` return float64 (or the
        members' common wider float type) actions.
        """
        if self.mode == "pick_best":
            return self.members[self.best].agent.predict(obs, deterministic=deterministic)
        device = obs.device if isinstance(obs, torch.Tensor) else torch.device("cpu")
        actions = [torch.as_tensor(m.agent.predict(obs, deterministic=deterministic), device=device) for m in self.members]
        shapes = {tuple(a.shape) for a in actions}
        if len(shapes) != 1:
            listed = ", ".join(f"{m.name} {tuple(a.shape)}" for m, a in zip(self.members, actions, strict=True))
            raise ConfigError(f"ensemble members disagree on the action shape: {listed}")
        dtype = torch.float64
        for a in actions:
            dtype = torch.promote_types(dtype, a.dtype)
        if self.mode == "mean":
            combined = torch.stack([a.to(dtype) for a in actions]).mean(dim=0)
        else:
            choices = torch.stack([_choice_index(a) for a in actions])
            num_tickers = actions[0].shape[-1]
            combined = discrete_to_box(_majority(choices, 2 * num_tickers + 1), num_tickers, dtype=dtype)
            combined = combined.reshape(actions[0].shape)
        return combined if isinstance(obs, torch.Tensor) else combined.cpu().numpy()

    def save(self, path: str | Path, training_state: bool = False) -> Path:
        """Write the manifest to ``path`` and each member into a folder beside it named after the member.

        The members are written first and the manifest last (atomically), so a reader never finds a manifest
        naming a member that is not there. Use :func:`save_ensemble` for a folder that ``load_agent`` reads.

        Args:
            path: the manifest file (``ensemble.json``).
            training_state: passed to every member (see :func:`~finrl_lite.agents.factory.save_agent`).
        """
        path = Path(path)
        for member in self.members:
            save_agent(member.agent, member.config, path.parent / member.name, training_state=training_state)
        manifest = {
            "format": _FORMAT,
            "mode": self.mode,
            "members": [{"name": m.name, "config": m.config.model_dump(mode="json"), "score": m.score} for m in self.members],
        }
        atomic_write_text(path, json.dumps(manifest, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path, env: Any = None) -> EnsembleAgent:
        """Load an ensemble written by :meth:`save` (``env`` is attached to every member).

        Raises:
            ConfigError: the manifest is missing or malformed, or a member cannot be loaded.
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no ensemble manifest here")
        try:
            manifest = json.loads(path.read_text())
            if manifest.get("format") != _FORMAT:
                raise ConfigError(f"format {manifest.get('format')!r}, expected {_FORMAT}")
            members = [
                EnsembleMember(
                    name=entry["name"],
                    agent=load_agent(path.parent / entry["name"], env=env),
                    config=AgentConfig.model_validate(entry["config"]),
                    score=float(entry["score"]),
                )
                for entry in manifest["members"]
            ]
            return cls(members, mode=manifest["mode"])
        except (ValueError, KeyError, TypeError) as exc:  # ConfigError is a ValueError
            raise ConfigError(f"{path}: not a loadable ensemble ({exc})") from None


def save_ensemble(ensemble: EnsembleAgent, directory: str | Path, training_state: bool = False) -> Path:
    """Save ``ensemble`` into ``directory`` (members included) as a folder ``load_agent`` reads.

    Args:
        ensemble: the policy to save.
        directory: the folder to write; created if missing.
        training_state: passed to every member.

    Returns:
        ``directory``.
    """
    return save_composite_agent(ensemble, "ensemble", directory, training_state=training_state)


def _choice_index(box: torch.Tensor) -> torch.Tensor:
    """The discrete choice of Box actions ``[..., N]`` that :func:`discrete_to_box` produced: 0 holds, ``k + 1`` buys
    ticker ``k``, ``N + k + 1`` sells it (the inverse of ``discrete_to_box``), flattened to ``[B]``."""
    box = box.reshape(-1, box.shape[-1])
    n = box.shape[-1]
    code = torch.arange(1, n + 1, device=box.device)
    return ((box > 0.5) * code).sum(dim=-1) + ((box < -0.5) * (code + n)).sum(dim=-1)


def _majority(choices: torch.Tensor, num_choices: int) -> torch.Tensor:
    """Per column of ``choices [M, B]`` the most frequent choice; a tie goes to the tied choice of the earliest row.

    Branch-free on the device: a choice scores ``count * (M + 1) + (M - first row choosing it)``, unique per column.
    """
    m = choices.shape[0]
    chosen = torch.nn.functional.one_hot(choices, num_choices)  # [M, B, C]
    counts = chosen.sum(dim=0)
    rank = torch.arange(m, 0, -1, device=choices.device).view(m, 1, 1)  # earliest member ranks highest
    earliest = (chosen * rank).amax(dim=0)
    return (counts * (m + 1) + earliest).argmax(dim=-1)
