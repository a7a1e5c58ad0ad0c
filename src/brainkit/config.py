"""Frozen dataclass configs: YAML files and ``--set key=value`` overrides in, JSON out.

Unknown keys, wrong types and out-of-range values raise :class:`ConfigError`; nothing in a config is executed.

Bounds are declared next to the default: ``epochs: int = bounded(20, ge=1)``, ``dropout: float = bounded(0.0,
ge=0, lt=1)``, ``schedule: str = choice("cosine", SCHEDULES)`` (or by hand, ``field(metadata={"range": (lo, hi)})``,
``{"min": x}``, ``{"choices": (...)}``; a ``"fix"`` entry says what the value means). :func:`from_dict` checks them
before building the config, naming the field's whole path (``lite_mind config.training.epochs``), and a config
class that derives from :class:`Checked` (or calls :func:`check_bounds` in its ``__post_init__``) checks them at
construction, so Python users get the same errors. A bound on a list/tuple field applies to each item; ``None``
(an optional field left unset) passes; numbers under a bound must be finite.

YAML is read with a loader of its own (:func:`read_yaml`): ``1e-4`` is a number (YAML 1.2, not the string of YAML
1.1), dates stay strings, duplicate keys are errors, and config files are limited in size
(:data:`MAX_CONFIG_BYTES`) and in what their aliases expand to (:data:`MAX_CONFIG_NODES`), so a small file cannot
expand into gigabytes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from brainkit.errors import ConfigError

C = TypeVar("C")
MAX_CONFIG_BYTES = 1 << 20  # 1 MiB: a config file is a page of settings, not data
MAX_CONFIG_NODES = 100_000  # values a YAML document may expand to through its aliases
BOUND_KEYS = ("range", "min", "ge", "gt", "le", "lt", "choices")


# ------------------------------------------------------------------------------------------------ bounds
def bounded(
    default: Any = dataclasses.MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    fix: str = "",
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field whose numbers (each item, for a tuple) must lie within ``ge``/``gt``/``le``/``lt``."""
    bounds = {k: v for k, v in {"ge": ge, "gt": gt, "le": le, "lt": lt}.items() if v is not None}
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={**bounds, "fix": fix}
    )


def choice(default: Any, choices: tuple[Any, ...], fix: str = "") -> Any:
    """A dataclass field whose value must be one of ``choices``."""
    return dataclasses.field(default=default, metadata={"choices": tuple(choices), "fix": fix})


def _limits(bounds: dict[str, Any]) -> tuple[tuple[Any, bool] | None, tuple[Any, bool] | None]:
    """(lower, upper) limits as (value, inclusive), each None when absent: ``range`` is inclusive both ways,
    ``min`` is ``ge``."""
    low, high = bounds.get("range", (None, None))
    low = next((v for v in (low, bounds.get("ge"), bounds.get("min")) if v is not None), None)
    high = high if high is not None else bounds.get("le")
    lower = (low, True) if low is not None else ((bounds["gt"], False) if "gt" in bounds else None)
    upper = (high, True) if high is not None else ((bounds["lt"], False) if "lt" in bounds else None)
    return lower, upper


def _allowed(bounds: dict[str, Any]) -> str:
    """The bounds of a field in words: ``x >= 1``, ``0 <= x < 1``, ``one of ('adamw', 'adam')``."""
    if "choices" in bounds:
        return f"one of {tuple(bounds['choices'])}"
    lower, upper = _limits(bounds)
    if lower and upper:
        return f"{lower[0]} {'<=' if lower[1] else '<'} x {'<=' if upper[1] else '<'} {upper[0]}"
    if lower:
        return f"x {'>=' if lower[1] else '>'} {lower[0]}"
    return f"x {'<=' if upper[1] else '<'} {upper[0]}" if upper else "any value"


def _inside(value: Any, bounds: dict[str, Any]) -> bool:
    if "choices" in bounds:
        return value in bounds["choices"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True  # a wrong type is the type check's to report
    lower, upper = _limits(bounds)
    return (
        math.isfinite(value)
        and (lower is None or value > lower[0] or (lower[1] and value == lower[0]))
        and (upper is None or value < upper[0] or (upper[1] and value == upper[0]))
    )


def check_value(value: Any, metadata: Any, where: str) -> None:
    """Raise a one-line :class:`ConfigError` when ``value`` lies outside the bounds in a field's ``metadata``."""
    bounds = {k: metadata[k] for k in BOUND_KEYS if k in metadata}
    if not bounds or value is None:
        return
    items = list(enumerate(value)) if isinstance(value, list | tuple) else [(None, value)]
    for index, item in items:
        if not _inside(item, bounds):
            name = where if index is None else f"{where}[{index}]"
            hint = f" ({metadata['fix']})" if metadata.get("fix") else ""
            key = name.rsplit(".", 1)[-1]
            if "choices" in bounds:
                raise ConfigError(f"{name}={item!r} is not allowed: set {key} to {_allowed(bounds)}{hint}.")
            finite = "a finite " if isinstance(item, float) and not math.isfinite(item) else ""
            raise ConfigError(
                f"{name}={item!r} is out of range: allowed {finite}{_allowed(bounds)}{hint}. "
                f"Set {key} to a value within that range."
            )


def check_bounds(config: Any, where: str | None = None) -> None:
    """Check every bounded field of the dataclass instance ``config`` (what :class:`Checked` does)."""
    where = where or type(config).__name__
    for f in dataclasses.fields(config):
        check_value(getattr(config, f.name), f.metadata, f"{where}.{f.name}")


class Checked:
    """Mix into a (frozen) dataclass config: its declared bounds are checked when it is built."""

    def __post_init__(self) -> None:
        check_bounds(self)


def _check_type(value: Any, annotation: Any, where: str) -> Any:
    """Return ``value`` coerced to ``annotation`` where lossless (int -> float, list -> tuple), else raise."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in args:
            try:
                return _check_type(value, option, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{where}: {value!r} fits none of {annotation}.")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null, found {value!r}.")
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {annotation.__name__}, found {value!r}.")
        return from_dict(annotation, value, where=where)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, found {type(value).__name__} {value!r}.")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, found {len(value)}.")
            items = [_check_type(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_type = args[0] if args else Any
            items = [_check_type(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, found {value!r}.")
        return dict(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, found {type(value).__name__} {value!r}.")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, found {type(value).__name__} {value!r}.")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, found {value!r}.")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, found {type(value).__name__} {value!r}.")
        return value
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise ConfigError(f"{where}: expected {annotation.__name__}, found {value!r}.")
    return value


def from_dict(cls: type[C], data: dict[str, Any], where: str | None = None) -> C:
    """Build the dataclass ``cls`` from a plain mapping, checking keys and types."""
    where = where or cls.__name__
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, found {type(data).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}. Known keys: {sorted(fields)}.")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _check_type(value, hints[name], f"{where}.{name}") for name, value in data.items()}
    for name, value in kwargs.items():
        check_value(value, fields[name].metadata, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready mapping of a (nested) dataclass config; tuples become lists."""

    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    return convert(config)


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats (``1e-4``), dates left as strings, and duplicate keys refused."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r}: each key may appear once; delete one",
                    key_node.start_mark,
                )
            if isinstance(key, typing.Hashable):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _expanded_size(node: yaml.Node, sizes: dict[int, int], where: str) -> int:
    """How many values ``node`` stands for once its aliases are expanded (shared nodes counted each time)."""
    if sizes.get(id(node)) == -1:
        raise ConfigError(f"{where} holds a YAML alias that refers to itself; write the values out.")
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = -1  # being counted
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes, where) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(
            _expanded_size(k, sizes, where) + _expanded_size(v, sizes, where) for k, v in node.value
        )
    else:
        size = 1
    sizes[id(node)] = size
    return size


def read_yaml(text: str, where: str) -> Any:
    """Parse one YAML document (a config file or a ``--set`` value) with :class:`_Loader`'s rules; an alias
    expansion beyond :data:`MAX_CONFIG_NODES` values, malformed YAML or a duplicate key is a ConfigError."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, where) > MAX_CONFIG_NODES:
            raise ConfigError(
                f"{where} expands to more than {MAX_CONFIG_NODES:,} values through its YAML aliases (&name / "
                "*name); write the values out, or use fewer aliases."
            )
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise ConfigError(f"{where} is not valid YAML: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise ConfigError(f"{where} is nested too deeply to be a config.") from None
    finally:
        loader.dispose()


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value`` (value read as YAML: numbers, lists, true/false, null)."""
    if "=" not in text:
        raise ConfigError(f"Override {text!r} is not of the form key=value (for example training.epochs=5).")
    key, raw = text.split("=", 1)
    if not key.strip() or not all(part.strip() for part in key.split(".")):
        raise ConfigError(f"Override {text!r} has an empty key (or an empty part between dots).")
    return [part.strip() for part in key.split(".")], read_yaml(
        raw, f"Override {text!r}"
    ) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key=value`` override set (nested keys with dots)."""
    result = json.loads(json.dumps(data))
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"Override {text!r}: {part!r} is not a section.")
            node = child
        node[path[-1]] = value
    return result


def read_config_text(path: str | Path) -> str:
    """The text of a config file: at most :data:`MAX_CONFIG_BYTES`, UTF-8; clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"Config file {path} does not exist. Pass a YAML file or a preset name (brainkit list)."
        )
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"Config file {path} has {size:,} bytes, more than a config may ({MAX_CONFIG_BYTES:,}); is it a "
            "config file? Data go in data.options (e.g. root), not in the config."
        )
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"Config file {path} is not UTF-8 text (byte {err.start} is {err.object[err.start]:#04x}); save it "
            "as UTF-8."
        ) from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ConfigError(f"Duplicate key(s) {duplicates}: each key may appear once; delete one of them.")
    return dict(pairs)


def _mapping(data: Any, path: str | Path) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(
            f"Config file {path} must hold a mapping at top level, found {type(data).__name__}."
        )
    return data


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping (size, encoding, syntax, duplicate keys and alias expansion
    checked: :func:`read_config_text`, :func:`read_yaml`)."""
    return _mapping(read_yaml(read_config_text(path), f"Config file {path}"), path)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML config file, or a JSON one (``.json``: read as JSON, duplicate keys refused), as a mapping."""
    if Path(path).suffix.lower() != ".json":
        return load_yaml(path)
    try:
        return _mapping(json.loads(read_config_text(path), object_pairs_hook=_unique_keys), path)
    except json.JSONDecodeError as err:
        raise ConfigError(f"Config file {path} is not valid JSON: {err}") from None


def replace(config: C, **changes: Any) -> C:
    """``dataclasses.replace`` that re-checks types."""
    return from_dict(type(config), {**to_dict(config), **changes})
