"""Name -> factory registries: a dataset, encoder, model or objective is one name in a config.

A registry knows the package its entries live in and imports every public module of that package (see
:func:`discover`) the first time it is asked for a name it does not hold, for its names, or to iterate: a new
method registers itself by being a file in the package, with no list to edit. ``import brainkit`` imports none of
them. Registering sets ``registry_name`` on the registered object, which :func:`brainkit.models.save_model` writes.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import pkgutil
import typing
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

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
        self._details: dict[str, dict[str, str]] = {}

    def register(self, name: str, help: str | None = None, **details: str) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name`` and sets its ``registry_name``; a duplicate raises.

        ``details`` are short texts ``brainkit list`` prints beside the entry (datasets: ``space``, the space
        of the brain values, and ``needs``, what must be on disk).
        """

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ConfigError(f"{self.kind} {name!r} is already registered; pick another name.")
            self._entries[name] = obj
            self._details[name] = dict(details)
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

    def _find(self, name: str) -> None:
        """Make ``name`` registered if some module registers it: first the module of the same name in one of
        the packages (``brainkit.recipes.lite_mind``: a look-up imports only what it needs), then all of them."""
        if name in self._entries or self._discovered:
            return
        for package in self.packages:
            module = f"{package}.{name}"
            if name.isidentifier() and not name.startswith("_") and importlib.util.find_spec(module):
                importlib.import_module(module)
        if name not in self._entries:
            self.discover()

    def get(self, name: str) -> T:
        if name not in self._entries:
            self._find(name)
        if name not in self._entries:
            names = sorted(self._entries)
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"Unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(names)}.")
        return self._entries[name]

    def options_of(self, name: str) -> list[str] | None:
        """The keyword options the factory ``name`` takes (``None``: any). A factory that passes ``**options`` on
        to the class it returns (its return annotation) takes what that class takes."""
        factory: Any = self.get(name)
        for _ in range(2):
            params = inspect.signature(factory).parameters.values()
            named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                return named
            try:
                factory = typing.get_type_hints(factory).get("return")
            except Exception:  # an annotation that does not resolve: nothing more to learn
                return None
            if not isinstance(factory, type):
                return None
        return None

    def check_options(self, name: str, options: dict[str, Any], where: str) -> None:
        """Raise a :class:`ConfigError` (``where``: the config key, e.g. ``data.options``) for the keys of
        ``options`` that the factory ``name`` does not take, before anything is built."""
        known = self.options_of(name)
        unknown = [] if known is None else sorted(set(options) - set(known))
        if unknown:
            close = difflib.get_close_matches(unknown[0], known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{where}: {self.kind} {name!r} takes no option(s) {unknown}.{hint} Its options: "
                f"{', '.join(known) or 'none'}."
            )

    def describe(self, name: str) -> str:
        self.get(name)
        return self._help[name]

    def details(self, name: str) -> dict[str, str]:
        """The texts given to :meth:`register` beside ``help`` (datasets: ``space``, ``needs``)."""
        self.get(name)
        return dict(self._details[name])

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str) and name not in self._entries:
            self._find(name)
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


DATASETS: Registry = Registry("dataset", ("brainkit.data.builtin", "brainkit.data.readers"))
ENCODERS: Registry = Registry("encoder", ("brainkit.stimuli",))
MODELS: Registry = Registry("model", ("brainkit.models",))
OBJECTIVES: Registry = Registry("objective", ("brainkit.objectives",))
# A recipe is a whole study protocol (pretrain, fine-tune, evaluate, report) run by `brainkit run NAME`.
RECIPES: Registry = Registry("recipe", ("brainkit.recipes",))
