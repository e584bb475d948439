"""One registry per kind of thing (datasets, models, attacks): names map to factories.

The CLI's choices, the suite validator and `robustinv list` all read the same registries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from robustinv.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name → object mapping filled by a decorator; duplicate names raise."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def checked_name(self, name: str) -> str:
        """`name` when registered; else ValueError listing the valid names (what a pydantic validator raises)."""
        if name not in self._entries:
            raise ValueError(str(UnknownNameError(self.kind, name, self.names())))
        return name

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
