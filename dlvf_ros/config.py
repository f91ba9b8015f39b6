"""Typed configuration: dataclasses with defaults in one place, loaded from YAML/JSON and validated on load.

Usage: `cfg = load_config(TrainConfig, "config/train.yaml")` or `from_dict(TrainConfig, {...}, source="...")`.
Unknown keys and wrong types raise `ConfigError` naming the file and the key path.

Settings a user tunes (the node parameters) are declared with `setting(default, "description", (low, high))`: the
description and inclusive range live in the field's metadata, beside the default, and the ROS parameter descriptors
and config/*.yaml are generated from them (`dlvf_ros.ros.node_parameters`). The ranges are checked both on load
(`from_dict`, a `ConfigError` naming the key path) and on construction (a config's `__post_init__` calls
`check_settings`), so a config built in Python is held to them too.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


class ConfigError(ValueError):
    """A configuration file or mapping does not fit its dataclass."""


def setting(
    default: Any = dataclasses.MISSING,
    description: str = "",
    limits: tuple[float, float] | None = None,
    *,
    none_value: bool | int | float | str | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with its documentation: `description` (with units), inclusive `limits` (low, high) of a
    number, and for an optional field the `none_value` that stands for None where None cannot be written (a ROS
    parameter). Stored in the field's metadata under "description", "range" and "none_value"."""
    metadata: dict[str, Any] = {"description": description}
    if limits is not None:
        metadata["range"] = tuple(limits)
    if none_value is not None:
        metadata["none_value"] = none_value
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def setting_with_default(config_cls: type, name: str, default: Any) -> Any:
    """Field `name` of the dataclass `config_cls` (a `setting`) with another default, for a subclass: the
    description and range stay the base class's."""
    base = next(f for f in dataclasses.fields(config_cls) if f.name == name)
    return dataclasses.field(default=default, metadata=base.metadata)


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {annotation.__name__}, got {type(value).__name__}")
        return from_dict(annotation, value, where)
    if origin is typing.Union or str(origin) == "types.UnionType":
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError("; ".join(errors))
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        item_type = args[0] if args else Any
        items = [_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _out_of_range(field: dataclasses.Field, value: Any) -> tuple[float, float] | None:
    """The declared range (low, high) of `field` when `value` is a number (not a bool) that is not finite or lies
    outside it; None when it fits, has no range or is no number (None of an optional field)."""
    limits = field.metadata.get("range")
    if limits is None or isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    low, high = limits
    return None if math.isfinite(value) and low <= value <= high else limits


def check_settings(config: DataclassInstance) -> None:
    """Raise ValueError when a field of the dataclass instance `config` lies outside its declared `setting` range
    (or is not finite); config dataclasses call it first in `__post_init__`."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        limits = _out_of_range(f, value)
        if limits is not None:
            raise ValueError(f"{type(config).__name__}.{f.name} must be in [{limits[0]}, {limits[1]}], got {value}")


def _check_range(field: dataclasses.Field, value: Any, where: str) -> None:
    """A number given for a `setting` must lie within its declared inclusive range (the test of `check_settings`)."""
    limits = _out_of_range(field, value)
    if limits is not None:
        raise ConfigError(f"{where}: {value!r} is outside its range [{limits[0]}, {limits[1]}]")


def from_dict(cls: type[T], data: dict, source: str = "<dict>") -> T:
    """Build dataclass `cls` from a mapping; missing keys keep their defaults, unknown keys and numbers outside a
    `setting`'s range are an error."""
    if data is None:
        data = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown} for {cls.__name__}; known keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _convert(value, hints[name], f"{source}: {name}") for name, value in data.items()}
    for name, value in kwargs.items():
        _check_range(fields[name], value, f"{source}: {name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def load_config(cls: type[T], path: str | Path | None) -> T:
    """Load `cls` from a YAML or JSON file; `None` gives the defaults."""
    if path is None:
        return cls()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} {'is not a file' if path.exists() else 'does not exist'}")
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not text ({exc.reason}); pass a YAML or JSON file") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from exc
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return from_dict(cls, data or {}, str(path))


def to_dict(config: Any) -> dict:
    """Plain-dict view of a config dataclass (for YAML/JSON dumps and model metadata)."""
    return dataclasses.asdict(config)


def save_config(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
