"""What a batch of environments asks of the machine: a device that exists, and memory for its state.

Both are checked before anything large is allocated, so that a config naming ``device: cuda`` on a machine
without a GPU, or a ``num_envs`` that cannot fit, is a clear :class:`~finrl_lite.errors.ConfigError` rather than a
traceback from deep inside torch or a process the kernel kills.
"""

from __future__ import annotations

from pathlib import Path

import torch

from finrl_lite.errors import ConfigError

__all__ = ["available_memory", "check_batch_memory", "format_bytes", "resolve_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device that this machine has.

    Raises:
        ConfigError: not a device name torch knows, or an accelerator torch does not see (the message says what
            torch reports: its version, the CUDA it was built with, the number of visible GPUs).
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {str(device)!r} is not a torch device ({exc}); use 'cpu' or 'cuda' (or 'cuda:N')") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        if count == 0:
            raise ConfigError(
                f"device '{device}': no CUDA GPU is usable here: torch {torch.__version__} ({built}) reports "
                f"torch.cuda.is_available() = False; use device: cpu, or install a CUDA build of torch on a GPU machine"
            )
        if resolved.index is not None and resolved.index >= count:
            raise ConfigError(f"device '{device}': torch sees {count} CUDA GPU(s) (cuda:0..cuda:{count - 1})")
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device '{device}': torch {torch.__version__} reports torch.backends.mps.is_available() = False")
    return resolved


def _cgroup_headroom() -> int | None:
    """Bytes the process's cgroup (a container's memory limit) still allows, if it sets a limit."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # v1
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:  # "max", or v1's huge number: no limit
            return max(int(limit) - usage, 0)
    return None


def available_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on ``device`` (None where it cannot be told).

    CPU: the kernel's ``MemAvailable`` (or free pages), capped by a container's memory limit; CUDA: the free memory
    ``torch.cuda.mem_get_info`` reports.
    """
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    free: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError):
        pass
    if free is None:
        try:
            import os

            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    headroom = _cgroup_headroom()
    return free if headroom is None else min(free, headroom)


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units (``1.5 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def check_batch_memory(needed: int, device: torch.device, what: str, available: int | None = None) -> None:
    """Refuse a batch whose estimated memory ``needed`` exceeds what ``device`` has free.

    Args:
        needed: estimated bytes.
        device: where the batch lives.
        what: the batch, for the message (``"StockTradingVecEnv with num_envs=1000000"``).
        available: free bytes (default: :func:`available_memory`); nothing is checked where it is unknown.

    Raises:
        ConfigError: naming both numbers.
    """
    free = available_memory(device) if available is None else available
    if free is not None and needed > free:
        raise ConfigError(
            f"{what} needs about {format_bytes(needed)} on {device}, more than the {format_bytes(free)} available; "
            f"lower env.num_envs"
        )
