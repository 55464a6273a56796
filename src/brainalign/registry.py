"""The one registry type: named entries of one kind (metrics, model kinds, dataset kinds), in
registration order, with lookups whose errors name the config key and list what is known."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, entry: T, *, replace: bool = False) -> T:
        name = entry.name
        if name in self._entries and not replace and self._entries[name] != entry:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def get(self, name: str, key: str | None = None) -> T:
        try:
            return self._entries[name]
        except KeyError:
            where = f"config key '{key}': " if key else ""
            raise ValueError(f"{where}unknown {self.what} '{name}' (known: {', '.join(self._entries)})") from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def items(self):
        return self._entries.items()

    def pop(self, name: str) -> T:
        return self._entries.pop(name)
