"""Random number generators of the native agents: seeded network initialisation that leaves the caller's global
torch RNG untouched, and generator states that travel in checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

__all__ = ["generator_state", "load_generator_state", "seeded_init"]

logger = logging.getLogger(__name__)


@contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for the block (build modules on the CPU inside it), then give the caller's back.

    Only the CPU generator is touched, saved and restored: modules are initialised on the CPU and moved after.
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def generator_state(generator: torch.Generator) -> dict[str, Any]:
    """What :func:`load_generator_state` needs: the device type and the state bytes."""
    return {"device": generator.device.type, "state": generator.get_state()}


def load_generator_state(generator: torch.Generator, saved: dict[str, Any]) -> bool:
    """Restore ``generator`` from :func:`generator_state`; False (and a log line) when it was saved on another
    device type, whose generator states do not convert (a model trained on CUDA, loaded on the CPU to predict)."""
    if saved["device"] != generator.device.type:
        logger.info("generator saved on %s not restored on %s: sampling starts afresh", saved["device"], generator.device.type)
        return False
    generator.set_state(saved["state"])
    return True
