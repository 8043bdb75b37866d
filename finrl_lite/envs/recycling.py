"""Reuse the memory of output tensors that nothing references any more.

A step of thousands of environments returns megabytes of fresh tensors (observations above all). On a
CPU, allocations that large are mapped from the OS every time, and touching the new pages costs as much
as the step itself. :class:`TensorRecycler` keeps the storages of the large outputs it handed out and
gives one out again only when nothing else holds it: no tensor, view or numpy array of the caller's, no
reference to the storage object, and not moved to shared memory (sent to another process). A
caller that keeps every observation therefore gets fresh memory each step, as without recycling; one
that drops them (copies them into a rollout buffer, say) gets the same pages back.
"""

from __future__ import annotations

import sys

import torch

__all__ = ["TensorRecycler"]

_use_count = getattr(torch._C, "_storage_Use_Count", None)


def _python_refs(storage: torch.UntypedStorage) -> int:
    return sys.getrefcount(storage)


def _refs_when_only_pooled() -> int:
    """References to a pooled storage's Python object that the pool's own check makes (same code shape)."""
    kept = [torch.UntypedStorage(8)]
    for storage in kept:
        return _python_refs(storage)
    raise AssertionError  # pragma: no cover


_POOLED_REFS = _refs_when_only_pooled()


class TensorRecycler:
    """Hands out contiguous tensors, reusing the storage of earlier ones that are no longer referenced.

    Args:
        min_bytes: Smaller tensors are allocated fresh (small allocations are cheap and cached by malloc).
        depth: Storages kept per (shape, dtype).
    """

    def __init__(self, min_bytes: int = 1 << 18, depth: int = 3) -> None:
        self.min_bytes = min_bytes
        self.depth = depth
        self._pool: dict[tuple[tuple[int, ...], torch.dtype], list[torch.UntypedStorage]] = {}

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised CPU tensor of ``shape`` and ``dtype``, on recycled memory when some is free."""
        numel = 1
        for dim in shape:
            numel *= dim
        if _use_count is None or numel * dtype.itemsize < self.min_bytes:
            return torch.empty(shape, dtype=dtype)
        kept = self._pool.setdefault((shape, dtype), [])
        kept[:] = [storage for storage in kept if not storage.is_shared()]  # sent to another process: theirs now
        for storage in kept:
            # free: no tensor, view or numpy array uses the memory, and nobody holds the storage object itself
            if _use_count(storage._cdata) == 1 and _python_refs(storage) <= _POOLED_REFS:
                return torch.empty(0, dtype=dtype).set_(storage, 0, shape)
        tensor = torch.empty(shape, dtype=dtype)
        if len(kept) < self.depth:
            kept.append(tensor.untyped_storage())
        return tensor
