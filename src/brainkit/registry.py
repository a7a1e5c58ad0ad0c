"""Name -> factory registries: a dataset, encoder, model or objective is one name in a config."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from brainkit.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping of names to factories with helpful errors.

    Parameters
    ----------
    kind : str
        What is registered ("model", "dataset", ...), used in messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, help: str | None = None) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name``; a duplicate name raises."""

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ConfigError(f"{self.kind} {name!r} is already registered; pick another name.")
            self._entries[name] = obj
            doc = help or (getattr(obj, "__doc__", None) or "").strip().splitlines()
            self._help[name] = doc if isinstance(doc, str) else (doc[0] if doc else "")
            return obj

        return decorator

    def get(self, name: str) -> T:
        if name not in self._entries:
            names = sorted(self._entries)
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"Unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(names)}.")
        return self._entries[name]

    def describe(self, name: str) -> str:
        self.get(name)
        return self._help[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


DATASETS: Registry = Registry("dataset")
ENCODERS: Registry = Registry("encoder")
MODELS: Registry = Registry("model")
OBJECTIVES: Registry = Registry("objective")
# A recipe is a whole study protocol (pretrain, fine-tune, evaluate, report) run by `brainkit run NAME`.
RECIPES: Registry = Registry("recipe")
