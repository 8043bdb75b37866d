"""The native torch vector-environment interface that every adapter wraps."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch

from finrl_lite.envs.market import seed_keys
from finrl_lite.envs.resources import check_batch_memory, resolve_device
from finrl_lite.errors import ConfigError, MissingDependencyError

__all__ = ["DEFERRED_ACTION_CHECKS", "STEP_WORKING_SETS", "BatchedEnv", "TorchVecEnv", "same_step_autoreset", "where_state"]

logger = logging.getLogger(__name__)

STEP_WORKING_SETS = 8
"""Copies of a batch's state and observation a step holds at once (see :meth:`BatchedEnv.memory_estimate`)."""

DEFERRED_ACTION_CHECKS = 256
"""Steps between host reads of the non-finite-action mask of device actions (see :meth:`BatchedEnv.step`)."""


@runtime_checkable
class TorchVecEnv(Protocol):
    """A batch of environments whose observations, rewards and flags are torch tensors on ``device``.

    ``reset(seed)`` returns ``(obs, info)``; ``step(action)`` returns ``(obs, reward, terminated,
    truncated, info)``. Finished environments reset inside ``step`` (same-step autoreset);
    ``info["final_obs"]`` holds the last observation of every environment, which is the terminal one
    where ``terminated | truncated``. The other ``info`` entries are ``[B, ...]`` tensors of diagnostics;
    an environment may add structured entries (NamedTuples of tensors), which the numpy adapters leave out.
    An environment that holds device memory also has ``close()`` (every :class:`BatchedEnv` does), which the
    adapters call when they are closed.

    The action space is a Box or a discrete set, told apart by :attr:`num_actions`:

    * Box (``num_actions is None``): ``step`` takes ``[B, action_size]`` floats in
      ``[action_low, action_high]``.
    * Discrete (``num_actions`` an int): ``step`` takes ``[B]`` int64 indices in ``[0, num_actions)``;
      ``action_size`` is 1 and ``[action_low, action_high]`` is ``[0, num_actions - 1]``, the index range.

    Attributes:
        num_envs: Batch size B.
        observation_size: Length D of the flat observation.
        action_size: Length of a Box action vector (1 for a discrete environment).
        action_low: Lower bound of every action entry.
        action_high: Upper bound of every action entry.
        num_actions: Number of discrete actions, or None for a Box action space.
        device: Torch device of every tensor.
    """

    num_envs: int
    observation_size: int
    action_size: int
    action_low: float
    action_high: float
    num_actions: int | None
    device: torch.device

    def reset(self, seed: int | Sequence[int] | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        """Reset every environment; ``(obs [B, D], info)``."""
        ...

    def step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """``(obs [B, D], reward [B], terminated [B], truncated [B], info)``."""
        ...


StepOut = tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Any]


class BatchedEnv:
    """Shared machinery of the torch vector environments: generator, seeding, step modes, state holding.

    A subclass sets ``observation_size``, ``action_size`` (and ``num_actions`` for a discrete action
    space, see :class:`TorchVecEnv`), ``params`` (with a ``dtype``; Box environments), and implements
    :meth:`_reset_state` and :meth:`_core_step` (functions of the state; :func:`same_step_autoreset`
    ends the step). The whole state of the batch is :attr:`state` (a NamedTuple of tensors) and
    :attr:`generator`.

    Args:
        num_envs: Number of environments.
        device: Torch device.
        seed: Seed of the generator that draws the per-environment keys.
        step_mode: ``"auto"`` (``"fused"`` where the environment has a fused CPU step that supports its
            settings, else ``"eager"``), ``"eager"``, ``"compile"`` (``torch.compile``; each instance
            compiles on its first step, about 40 s on a small CPU, and dynamo's per-function recompile
            limit, 8 by default, applies to all instances of a class in a process), ``"cuda_graph"``
            (CUDA only: captured on the first step, replayed after) or ``"fused"`` (a compiled CPU kernel
            of the whole step, where the environment has one).
        autoreset: Reset finished environments inside ``step``.
        final_obs: Return the terminal observation in ``info["final_obs"]``.

    Raises:
        ConfigError: a device this machine does not have (see :func:`~finrl_lite.envs.resources.resolve_device`).

    A Box action with a non-finite entry is an error naming the environment row, unless the environment gives
    non-finite entries a meaning (``nan_actions="hold"`` of the stock-trading environment); see :meth:`step` for
    what the check costs. The first :meth:`reset` refuses a batch that cannot fit in memory (:meth:`memory_estimate`).
    Use :meth:`close` (or a ``with`` block) to release the batch's device memory.
    """

    action_low: float = -1.0
    action_high: float = 1.0
    num_actions: int | None = None
    num_envs: int
    observation_size: int
    action_size: int
    device: torch.device

    def __init__(
        self,
        num_envs: int,
        device: str | torch.device,
        seed: int | None,
        step_mode: str,
        autoreset: bool,
        final_obs: bool,
    ) -> None:
        if num_envs < 1:
            raise ConfigError("num_envs must be >= 1")
        if step_mode not in ("auto", "eager", "compile", "cuda_graph", "fused"):
            raise ConfigError("step_mode must be 'auto', 'eager', 'compile', 'cuda_graph' or 'fused'")
        self.device = resolve_device(device)
        if step_mode == "cuda_graph" and self.device.type != "cuda":
            raise ConfigError("step_mode='cuda_graph' needs a CUDA device")
        if step_mode == "auto":
            step_mode = "fused" if self._fused_supported() else "eager"
        elif step_mode == "fused":
            self._check_fused()
        self.num_envs = num_envs
        self.autoreset = autoreset
        self.final_obs = final_obs
        self.step_mode = step_mode
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed if seed is not None else int(np.random.SeedSequence().entropy % (2**63)))
        self.state: Any = None
        self._step_fn: Callable[[Any, torch.Tensor], StepOut] = self._core_step
        if step_mode == "compile":
            self._step_fn = torch.compile(self._core_step, dynamic=False)
        elif step_mode == "fused":
            self._step_fn = self._fused_step
        self._graph: _CudaGraphStep | None = None
        self._memory_checked = False
        self._closed = False
        self._bad_action_rows: torch.Tensor | None = None  # deferred check of device actions
        self._steps_since_action_check = 0

    # ------------------------------------------------------------------ subclass hooks
    def _reset_state(self, keys: torch.Tensor | None) -> tuple[Any, torch.Tensor, dict[str, torch.Tensor]]:
        """``(state, obs, info)`` of fresh episodes (keys drawn from :attr:`generator` when ``None``)."""
        raise NotImplementedError

    def _core_step(self, state: Any, action: torch.Tensor) -> StepOut:
        """``(state, obs, reward, terminated, truncated, info NamedTuple)``."""
        raise NotImplementedError

    def _check_fused(self) -> None:
        """Raise :class:`ConfigError` (or :class:`MissingDependencyError`) when ``step_mode="fused"`` cannot
        run these settings; environments with a fused step override it."""
        raise ConfigError(f"{type(self).__name__} has no fused step; use step_mode 'eager', 'compile' or 'cuda_graph'")

    def _fused_supported(self) -> bool:
        """Whether ``step_mode="auto"`` picks :meth:`_fused_step`."""
        try:
            self._check_fused()
        except (ConfigError, MissingDependencyError) as exc:
            logger.debug("%s: fused step not used: %s", type(self).__name__, exc)
            return False
        return True

    def _fused_step(self, state: Any, action: torch.Tensor) -> StepOut:
        """:meth:`_core_step` as one compiled CPU kernel (subclasses that have one)."""
        raise NotImplementedError

    @property
    def _action_dtype(self) -> torch.dtype:
        return self.params.dtype  # type: ignore[attr-defined, no-any-return]

    @property
    def _nan_actions_hold(self) -> bool:
        """Whether a non-finite action entry has a meaning here (the stock-trading ``nan_actions="hold"``)."""
        return False

    def _release(self) -> None:
        """Drop the subclass's device tensors (market, tables); :meth:`close` calls it once."""

    # ------------------------------------------------------------------ resources
    def memory_estimate(self) -> int:
        """Bytes a step of the whole batch is expected to hold: the state and observation of one environment
        (measured on a one-environment reset, which draws nothing from :attr:`generator`) x ``num_envs`` x
        :data:`STEP_WORKING_SETS` (the stepped state, the fresh episodes of the autoreset, the observations and the
        temporaries of a step). The market tensors, shared by all environments, are not counted."""
        state, obs, _ = self._reset_state(seed_keys([0], self.device))
        per_env = sum(x.element_size() * x.numel() for x in state) + obs.element_size() * obs.numel()
        return per_env * self.num_envs * STEP_WORKING_SETS

    def check_memory(self, available: int | None = None) -> None:
        """Refuse a batch whose :meth:`memory_estimate` exceeds the device's free memory (``available`` bytes, by
        default what :func:`~finrl_lite.envs.resources.available_memory` reports).

        Raises:
            ConfigError: naming both numbers.
        """
        what = f"{type(self).__name__} with num_envs={self.num_envs}"
        check_batch_memory(self.memory_estimate(), self.device, what, available)
        self._memory_checked = True

    def close(self) -> None:
        """Release the state and the device tensors (market, CUDA graph); :meth:`reset` and :meth:`step` then refuse.

        Closing twice is harmless. Checks the actions not yet checked first (see :meth:`check_actions`).
        """
        if self._closed:
            return
        try:
            self.check_actions()
        finally:
            self._closed = True
            self.state = None
            self._graph = None
            self._bad_action_rows = None
            self._release()

    def __enter__(self) -> BatchedEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_open(self) -> None:
        if self._closed:
            raise ConfigError(f"{type(self).__name__} is closed; build a new environment")

    # ------------------------------------------------------------------ public API
    def reset(self, seed: int | Sequence[int] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reset every environment.

        Args:
            seed: An int reseeds the generator that draws the per-environment keys; a sequence gives
                environment ``i`` the key of seed ``i`` (a batch then equals single environments run with
                those seeds).

        Returns:
            ``(obs [B, D], info)``.
        """
        self._require_open()
        if not self._memory_checked:
            self.check_memory()
        keys = None
        if isinstance(seed, Sequence):
            if len(seed) != self.num_envs:
                raise ConfigError(f"got {len(seed)} seeds for {self.num_envs} environments")
            keys = seed_keys(list(seed), self.device)
        elif seed is not None:
            self.generator.manual_seed(int(seed))
        self.state, obs, info = self._reset_state(keys)
        return obs, info

    def step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step every environment with ``action``: ``[B, A]`` floats, or ``[B]`` indices for a discrete
        environment (moved to the env device and dtype; no broadcasting).

        A Box action with a NaN or infinite entry is a :class:`ConfigError` naming the environment row, unless the
        environment gives it a meaning (``nan_actions="hold"``). The check costs nothing on the GPU path's timeline:
        an action that arrives on the host (numpy, a CPU tensor: the SB3 and gymnasium adapters) is checked there
        before it moves, one pass over its ``B x A`` numbers; an action already on an accelerator is checked on the
        device without a host sync (its non-finite rows accumulate in a ``[B]`` mask) and the mask is read every
        :data:`DEFERRED_ACTION_CHECKS` steps, in :meth:`check_actions`, :meth:`state_dict` and :meth:`close`, so the
        error comes at most that many steps late.

        Returns:
            ``(obs, reward, terminated, truncated, info)``, all tensors on the env device.
        """
        self._require_open()
        if self.state is None:
            raise ConfigError("call reset() before step()")
        action = torch.as_tensor(action)
        if self.num_actions is None:
            if not self._nan_actions_hold:
                self._check_finite(action)
            action = action.to(self.device, self._action_dtype)
            expected, what = (self.num_envs, self.action_size), "(num_envs, action_size)"
        else:
            action = action.to(self.device, torch.int64)
            expected, what = (self.num_envs,), "(num_envs,) action indices"
        if tuple(action.shape) != expected:
            raise ConfigError(f"action has shape {tuple(action.shape)}; expected {what} = {expected}")
        if self.step_mode == "cuda_graph":
            if self._graph is None:
                self._graph = _CudaGraphStep(self._core_step, self.state, action)
            out = self._graph(self.state, action)
        else:
            out = self._step_fn(self.state, action)
        self.state, obs, reward, terminated, truncated, info = out
        return obs, reward, terminated, truncated, info._asdict()

    def _check_finite(self, action: torch.Tensor) -> None:
        """Raise on a non-finite action entry now (host actions) or soon (device actions; see :meth:`step`)."""
        if action.dim() != 2 or action.shape[0] != self.num_envs:
            return  # the shape check names the problem
        if _on_host(action):
            if not bool(torch.isfinite(action).all()):
                self._raise_non_finite(~torch.isfinite(action).all(dim=1), action)
            return
        bad = ~torch.isfinite(action).all(dim=1)
        self._bad_action_rows = bad if self._bad_action_rows is None else self._bad_action_rows | bad
        self._steps_since_action_check += 1
        if self._steps_since_action_check >= DEFERRED_ACTION_CHECKS:
            self.check_actions()

    def check_actions(self) -> None:
        """Read the non-finite device actions of the steps since the last check (one host read; see :meth:`step`).

        Raises:
            ConfigError: naming the environment rows.
        """
        rows, self._bad_action_rows, self._steps_since_action_check = self._bad_action_rows, None, 0
        if rows is not None and bool(rows.any()):
            self._raise_non_finite(rows.cpu(), None)

    def _raise_non_finite(self, rows: torch.Tensor, action: torch.Tensor | None) -> None:
        bad = torch.nonzero(rows).flatten().tolist()
        first = f" ({action[bad[0]].tolist()})" if action is not None else " in one of the last steps"
        more = f" (and {len(bad) - 1} other row(s): {bad[1:6]}{'...' if len(bad) > 6 else ''})" if len(bad) > 1 else ""
        raise ConfigError(
            f"{type(self).__name__}: the action of environment row {bad[0]} is not finite{first}{more}; actions must "
            f"be finite numbers in [{self.action_low}, {self.action_high}] (a NaN action usually comes from a diverged "
            f"policy); an environment built with nan_actions='hold' reads NaN as 'no order'"
        )

    # ------------------------------------------------------------------ snapshot (exact resume)
    def state_dict(self) -> dict[str, Any]:
        """A snapshot from which :meth:`load_state_dict` continues identically.

        Raises:
            ConfigError: a device action not yet checked was not finite (see :meth:`step`).

        Returns:
            ``{"num_envs", "device", "state", "generator"}``: the state NamedTuple's tensors cloned to the CPU (a dict by
            field name; None before the first :meth:`reset`) and the key generator's state. Subclasses with more
            mutable state extend both methods.
        """
        self.check_actions()
        state = (
            None
            if self.state is None
            else {name: value.detach().to("cpu", copy=True) for name, value in self.state._asdict().items()}
        )
        return {"num_envs": self.num_envs, "device": self.device.type, "state": state, "generator": self.generator.get_state()}

    def load_state_dict(self, snapshot: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict` of an environment built with the same settings and data.

        Raises:
            ConfigError: the snapshot is of another batch size, device type, state type or shape.
        """
        self._require_open()
        name = type(self).__name__
        if snapshot["num_envs"] != self.num_envs:
            raise ConfigError(f"{name} snapshot holds {snapshot['num_envs']} environments; this one has {self.num_envs}")
        if snapshot["device"] != self.device.type:  # generator states differ between device types
            raise ConfigError(f"{name} snapshot was taken on {snapshot['device']}; this environment runs on {self.device.type}")
        saved = snapshot["state"]
        if saved is None:
            self.state = None
        else:
            template = self.state if self.state is not None else self._reset_state(None)[0]  # the generator is set below
            if set(saved) != set(template._fields):
                raise ConfigError(f"{name} snapshot has state fields {sorted(saved)}; expected {sorted(template._fields)}")
            fields = {}
            for field, current in template._asdict().items():
                value = saved[field]
                if value.shape != current.shape or value.dtype != current.dtype:
                    raise ConfigError(
                        f"{name} snapshot field '{field}' is {value.dtype} {tuple(value.shape)}; "
                        f"this environment's is {current.dtype} {tuple(current.shape)} (other settings or data?)"
                    )
                fields[field] = value.to(self.device, copy=True)
            self.state = type(template)(**fields)
        self.generator.set_state(snapshot["generator"])


def _on_host(action: torch.Tensor) -> bool:
    """Whether reading ``action`` costs no device sync (it is in host memory)."""
    return action.device.type == "cpu"


def where_state(mask: torch.Tensor, a: Any, b: Any) -> Any:
    """Per environment: the NamedTuple state ``a`` where ``mask [B]`` else ``b`` (branch-free)."""
    out = []
    for x, y in zip(a, b, strict=True):
        out.append(torch.where(mask.view(-1, *([1] * (x.dim() - 1))), x, y))
    return type(a)(*out)


State = TypeVar("State", bound=tuple)  # a NamedTuple of tensors


def same_step_autoreset(
    stepped: State,
    done: torch.Tensor,
    fresh: Callable[[State], State],
    observe: Callable[[State], torch.Tensor],
    *,
    autoreset: bool = True,
    final_obs: bool = True,
) -> tuple[State, torch.Tensor, torch.Tensor]:
    """The end of every environment's step, written once (as gymnax wraps ``step_env`` and ``reset_env``).

    The environment computes the stepped state (its rules, no reset); this selects, per environment and
    branch-free, a fresh episode where ``done`` and the stepped state elsewhere, and observes the result.

    Args:
        stepped: The state after the step, before any reset (NamedTuple of ``[B, ...]`` tensors).
        done: ``[B]`` bool, the environments whose episode just ended (``terminated | truncated``).
        fresh: New episodes for every environment, from ``stepped`` (its keys and episode counters); only
            the rows where ``done`` are kept.
        observe: The ``[B, D]`` observation of a state.
        autoreset: Reset finished environments; without it ``stepped`` is the next state (a finished
            environment waits for ``reset``).
        final_obs: Observe ``stepped`` a second time; without it the returned final observation is the
            returned observation, which is not the terminal one where ``done`` and ``autoreset``.

    Returns:
        ``(state, obs, final_obs)``: the next state, its observation (a new episode's first where
        ``done``) and the observation of ``stepped`` (the last of a finished episode), for
        ``info["final_obs"]``.
    """
    if not autoreset:
        obs = observe(stepped)
        return stepped, obs, obs
    state = where_state(done, fresh(stepped), stepped)
    obs = observe(state)
    return state, obs, observe(stepped) if final_obs else obs


def _clone_tuple(x: Any) -> Any:
    return type(x)(*[t.clone() for t in x])


class _CudaGraphStep:
    """A step function captured once in a CUDA graph; inputs are copied into static buffers, outputs cloned."""

    def __init__(self, fn: Callable[[Any, torch.Tensor], StepOut], state: Any, action: torch.Tensor) -> None:
        self.static_state = _clone_tuple(state)
        self.static_action = action.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm up kernels and the allocator before capture
                fn(self.static_state, self.static_action)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = fn(self.static_state, self.static_action)

    def __call__(self, state: Any, action: torch.Tensor) -> StepOut:
        for dst, src in zip(self.static_state, state, strict=True):
            dst.copy_(src)
        self.static_action.copy_(action)
        self.graph.replay()
        new_state, obs, reward, terminated, truncated, info = self.static_out
        return _clone_tuple(new_state), obs.clone(), reward.clone(), terminated.clone(), truncated.clone(), _clone_tuple(info)
