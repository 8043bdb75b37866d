"""An embedded local Ray for one block of work (the ensemble's parallel windows, a population on one machine)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from finrl_lite.errors import require

__all__ = ["local_ray"]


@contextlib.contextmanager
def local_ray(
    num_cpus: int,
    *,
    num_gpus: float | None = None,
    object_store_bytes: int | None = None,
    temp_dir: str | Path | None = None,
    extra: str = "rllib",
    purpose: str = "ensemble.parallel: ray",
) -> Iterator[Any]:
    """The running Ray, or an embedded local one started for the block and shut down after it.

    The local one has ``num_cpus`` CPUs (and ``num_gpus``), no dashboard and usage stats off; its session files go to
    ``temp_dir``, or to a temporary folder removed afterwards (nothing is left in /tmp/ray).

    Raises:
        MissingDependencyError: Ray is not installed (the message names ``extra`` and ``purpose``).
    """
    ray = require("ray", extra, purpose)
    if ray.is_initialized():  # type: ignore[attr-defined]
        yield ray
        return
    temp = str(Path(temp_dir).resolve()) if temp_dir else tempfile.mkdtemp(prefix="finrl_ray_")  # short socket paths
    stats = os.environ.get("RAY_USAGE_STATS_ENABLED")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        ray.init(  # type: ignore[attr-defined]
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            object_store_memory=object_store_bytes,
            _temp_dir=temp,
        )
        yield ray
    finally:
        ray.shutdown()  # type: ignore[attr-defined]
        if stats is None:
            os.environ.pop("RAY_USAGE_STATS_ENABLED", None)
        else:
            os.environ["RAY_USAGE_STATS_ENABLED"] = stats
        if not temp_dir:
            shutil.rmtree(temp, ignore_errors=True)
