"""Name -> factory registries: a dataset, encoder, model or objective is one name in a config.

A registry knows the package its entries live in and imports every public module of that package (see
:func:`discover`) the first time it is asked for a name it does not hold, for its names, or to iterate: a new
method registers itself by being a file in the package, with no list to edit. ``import brainkit`` imports none of
them. Registering sets ``registry_name`` on the registered object, which :func:`brainkit.models.save_model` writes.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from brainkit.errors import ConfigError

T = TypeVar("T")


def discover(package_name: str) -> list[str]:
    """Import every module of ``package_name`` and of its subpackages, skipping private (``_``) ones.

    Returns the imported module names. An import error propagates: a module that cannot be imported is a bug to
    see, not an entry to drop silently.
    """
    package = importlib.import_module(package_name)
    imported = []
    for module in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
        if any(part.startswith("_") for part in module.name[len(package_name) + 1 :].split(".")):
            continue
        importlib.import_module(module.name)
        imported.append(module.name)
    return imported


class Registry(Generic[T]):
    """A mapping of names to factories with helpful errors.

    Parameters
    ----------
    kind : str
        What is registered ("model", "dataset", ...), used in messages.
    packages : tuple of str
        The packages whose modules register entries; imported by :meth:`discover`, lazily.
    """

    def __init__(self, kind: str, packages: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.packages = packages
        self._discovered = not packages
        self._entries: dict[str, T] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, help: str | None = None) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name`` and sets its ``registry_name``; a duplicate raises."""

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ConfigError(f"{self.kind} {name!r} is already registered; pick another name.")
            self._entries[name] = obj
            obj.registry_name = name
            doc = help or (getattr(obj, "__doc__", None) or "").strip().splitlines()
            self._help[name] = doc if isinstance(doc, str) else (doc[0] if doc else "")
            return obj

        return decorator

    def discover(self) -> None:
        """Import the registry's packages once (what every look-up does first when it needs to)."""
        if self._discovered:
            return
        self._discovered = True  # before importing: a module that looks a name up must not recurse
        try:
            for package in self.packages:
                discover(package)
        except BaseException:
            self._discovered = False
            raise

    def get(self, name: str) -> T:
        if name not in self._entries:
            self.discover()
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
        self.discover()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self.discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


DATASETS: Registry = Registry("dataset", ("brainkit.data.builtin", "brainkit.data.readers"))
ENCODERS: Registry = Registry("encoder", ("brainkit.stimuli",))
MODELS: Registry = Registry("model", ("brainkit.models",))
OBJECTIVES: Registry = Registry("objective", ("brainkit.objectives",))
# A recipe is a whole study protocol (pretrain, fine-tune, evaluate, report) run by `brainkit run NAME`.
RECIPES: Registry = Registry("recipe", ("brainkit.recipes",))
