"""Named registries of the things a config can name: agent backends, env kinds and data sources.

A registry maps a name to a small frozen entry (a dataclass with a ``name``) that points at its
implementation by import path (``"package.module:Attribute"``), so declaring an entry imports nothing heavy
and :mod:`finrl_lite.config` validates names against the registries without importing torch.

The built-in entries are declared beside their implementations (:mod:`finrl_lite.agents.backends`,
:mod:`finrl_lite.env_config`, :mod:`finrl_lite.data_processors.sources`); a plug-in adds its own with
:meth:`Registry.register` (or :meth:`Registry.registered` for a scope, as tests do) before loading a config
that names it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

from finrl_lite.errors import ConfigError

__all__ = ["Entry", "Registry", "Target", "expected_values", "import_object", "resolve"]


class Entry(Protocol):
    """What a registry holds: anything with a ``name``."""

    @property
    def name(self) -> str: ...


E = TypeVar("E", bound=Entry)

Target = Any
"""An import path ``"package.module:Name"`` (imported when first used) or the object itself."""


def expected_values(names: Iterable[str]) -> str:
    """``'a', 'b' or 'c'``: allowed values as pydantic's literal errors spell them."""
    quoted = [repr(n) for n in names]
    if len(quoted) <= 1:
        return "".join(quoted)
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


class Registry(Generic[E]):
    """Entries by name, in registration order.

    Args:
        label: what an entry is, for messages (``"agent backend"``).
        entries: the built-in entries.
    """

    def __init__(self, label: str, entries: Iterable[E] = ()) -> None:
        self.label = label
        self._entries: dict[str, E] = {}
        for entry in entries:
            self.register(entry)

    def register(self, entry: E) -> E:
        """Add ``entry``; a name already taken is a :class:`ConfigError` (unregister it first to replace it)."""
        if not isinstance(entry.name, str) or not entry.name:
            raise ConfigError(f"{self.label} name must be a non-empty string, got {entry.name!r}")
        if entry.name in self._entries:
            raise ConfigError(f"{self.label} '{entry.name}' is already registered")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> E:
        """Remove and return the entry called ``name``."""
        entry = self.get(name)
        del self._entries[name]
        return entry

    @contextmanager
    def registered(self, entry: E) -> Iterator[E]:
        """Register ``entry`` for the duration of a ``with`` block."""
        self.register(entry)
        try:
            yield entry
        finally:
            self._entries.pop(entry.name, None)

    def get(self, name: str) -> E:
        """The entry called ``name``.

        Raises:
            ConfigError: unknown name (the message lists the known ones).
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(f"unknown {self.label} {name!r}; known: {', '.join(self._entries)}") from None

    def names(self) -> tuple[str, ...]:
        """Registered names, in registration order."""
        return tuple(self._entries)

    def expected(self) -> str:
        """The registered names as an error message lists allowed values (``'a', 'b' or 'c'``)."""
        return expected_values(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[E]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.label!r}, {list(self._entries)})"


def import_object(path: str) -> Any:
    """The object an import path ``"package.module:Name"`` (or ``"...:Name.attribute"``) names.

    Raises:
        ConfigError: a malformed path, a module that does not exist, or a missing attribute. An import
            error raised *inside* an existing module (a missing dependency) propagates unchanged.
    """
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"import path {path!r} must look like 'package.module:Name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
            raise ConfigError(f"import path {path!r}: no module named '{exc.name}'") from exc
        raise
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"import path {path!r}: '{module_name}' has no attribute '{attribute}'") from None
    return obj


def resolve(target: Target) -> Any:
    """The object ``target`` names: an import path is imported (:func:`import_object`), anything else is returned as is."""
    return import_object(target) if isinstance(target, str) else target
