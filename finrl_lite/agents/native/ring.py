"""Ring storage of named per-transition tensors on a device: what the native replay buffers share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from finrl_lite.errors import ConfigError

__all__ = ["TransitionRing"]


class TransitionRing:
    """Fixed-capacity storage of transitions, one tensor per field, overwritten oldest first.

    Args:
        capacity: Transitions kept.
        fields: Each field's row shape and dtype (``{"obs": ((8,), torch.float32), "action": ((), torch.int64)}``).
        device: Where the storage lives.
        what: How errors name the buffer.
    """

    def __init__(
        self, capacity: int, fields: Mapping[str, tuple[tuple[int, ...], torch.dtype]], device: torch.device, what: str
    ) -> None:
        self.capacity, self.what = capacity, what
        self.fields = tuple(fields)
        for name, (shape, dtype) in fields.items():
            setattr(self, name, torch.zeros((capacity, *shape), dtype=dtype, device=device))
        self.device = torch.device(device)
        self.pos = 0
        self.size = 0

    def append(self, rows: Mapping[str, Tensor]) -> None:
        """Write ``N`` rows of every field (wrapping around; the newest ``capacity`` kept; host-side index arithmetic)."""
        n = min(rows[self.fields[0]].shape[0], self.capacity)
        idx = (self.pos + torch.arange(n, device=self.device)) % self.capacity
        for name in self.fields:
            storage = getattr(self, name)
            storage[idx] = rows[name][-n:].to(storage.device, storage.dtype)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample_index(self, batch_size: int, generator: torch.Generator) -> Tensor:
        """Rows of a uniform sample with replacement."""
        return torch.randint(0, self.size, (batch_size,), generator=generator, device=self.device)

    def state_dict(self) -> dict[str, Any]:
        """The stored transitions (the filled rows, copied to the CPU: saving a view would write its whole storage)
        and the write position."""
        return {"pos": self.pos, "size": self.size} | {
            name: getattr(self, name)[: self.size].to("cpu", copy=True) for name in self.fields
        }

    def load_state_dict(self, saved: Mapping[str, Any]) -> None:
        """Refill from :meth:`state_dict` (of a buffer with the same capacity or less, and the same fields and rows)."""
        size = int(saved["size"])
        rows = {name: tuple(saved[name].shape[1:]) if name in saved else "missing" for name in self.fields}
        wrong = [
            f"{name} rows {rows[name]}, here {tuple(getattr(self, name).shape[1:])}"
            for name in self.fields
            if rows[name] != tuple(getattr(self, name).shape[1:])
        ]
        if size > self.capacity or wrong:
            raise ConfigError(
                f"{self.what} of {size} transitions does not fit capacity {self.capacity}"
                + (": " + "; ".join(wrong) if wrong else "")
            )
        for name in self.fields:
            getattr(self, name)[:size] = saved[name].to(self.device)
        self.pos, self.size = int(saved["pos"]), size
