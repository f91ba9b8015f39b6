"""Node parameters generated from config dataclasses: name, default, description and numeric range.

A node's parameters are the scalar fields of its config dataclasses (nested dataclasses give `a.b` names, a core
config sits under a prefix such as "localizer."). Default, description and range come from each field, declared once
with `dlvf_ros.config.setting` beside the default. `read_node_configs` declares them (ParameterDescriptor) and builds
the configs from the values; `parameter_file_text` writes config/<node>.yaml with each description as a comment
(`tools/write_parameter_files.py`; a test keeps the files equal to the defaults). A node names the parameters it can
change at run time (`runtime`: names, or prefixes ending in "."); the others are read-only, read once at start-up.
An out-of-range or wrongly typed value is a `ParameterError` naming the parameter, its range and the file to fix.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from dlvf_ros.config import ConfigError, from_dict
from dlvf_ros.ros.node_main import StartupError

UNDOCUMENTED = "undocumented"


class ParameterError(ValueError):
    """A node parameter has a wrong type or is out of its range."""


@dataclass(frozen=True)
class ParameterSpec:
    """One ROS parameter: default (bool, int, float or str), description, inclusive range for numbers, and the
    value that stands for None of an optional field."""

    name: str
    default: bool | int | float | str
    description: str
    low: float | None = None
    high: float | None = None
    none_value: bool | int | float | str | None = None
    dynamic: bool = False  # may change at run time (`ros2 param set`)

    def __post_init__(self) -> None:
        if not isinstance(self.default, (bool, int, float, str)):
            raise TypeError(
                f"ParameterSpec {self.name}: default must be bool, int, float or str, got {type(self.default).__name__}"
            )
        if (self.low is None) != (self.high is None):
            raise ValueError(f"ParameterSpec {self.name}: give both low and high, or neither")
        if self.low is None or self.high is None:
            return
        if isinstance(self.default, str):
            raise TypeError(f"ParameterSpec {self.name}: a range needs a numeric default, got {self.default!r}")
        if not self.low <= self.default <= self.high:
            raise ValueError(f"ParameterSpec {self.name}: default {self.default} outside [{self.low}, {self.high}]")

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(name=self.name, description=self.description, read_only=not self.dynamic)
        if self.low is None or self.high is None:
            return descriptor
        if isinstance(self.default, float):
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(self.low), to_value=float(self.high), step=0.0)
            ]
            descriptor.additional_constraints = f"{self.low} <= value <= {self.high}"
        elif isinstance(self.default, int) and not isinstance(self.default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(self.low), to_value=int(self.high), step=1)]
            descriptor.additional_constraints = f"{int(self.low)} <= value <= {int(self.high)}"
        return descriptor


def specs_from_config(config: Any, prefix: str = "") -> list[ParameterSpec]:
    """Specs for every scalar field of a config dataclass instance (nested dataclasses become `a.b` names).

    Defaults are the instance's values; description, range and none value come from the field's metadata
    (`dlvf_ros.config.setting`). A field without a description (a knob added to the core without one) is still
    declared, described as "undocumented: Class.field" without a range, so the node keeps working;
    test_launch_files.py fails on it. An optional field whose value is None is declared with its none value.
    """
    specs = []
    for f in dataclasses.fields(config):
        name = prefix + f.name
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            specs += specs_from_config(value, name + ".")
            continue
        description = f.metadata.get("description") or f"{UNDOCUMENTED}: {type(config).__name__}.{f.name}"
        low, high = f.metadata.get("range", (None, None))
        none_value = f.metadata.get("none_value")
        if none_value is not None:
            description += f" ({none_value!r}: none)"
            value = none_value if value is None else value
        if not isinstance(value, (bool, int, float, str)):
            raise ParameterError(
                f"parameter {name!r} ({type(config).__name__}.{f.name}) has no ROS parameter type "
                f"for its value {value!r}; give the field a none_value (dlvf_ros.config.setting)"
            )
        specs.append(ParameterSpec(name, value, description, low, high, none_value))
    return specs


def is_runtime_parameter(name: str, runtime: Sequence[str]) -> bool:
    """Whether `name` is one of `runtime` (names, or prefixes ending in ".")."""
    return any(name == entry or (entry.endswith(".") and name.startswith(entry)) for entry in runtime)


def node_parameter_specs(configs: Sequence[tuple[type, str]], runtime: Sequence[str] = ()) -> list[ParameterSpec]:
    """Specs of a node's (config class, parameter prefix) pairs, each from the class's defaults; those named by
    `runtime` (names, or prefixes ending in ".") are dynamic."""
    return [
        dataclasses.replace(spec, dynamic=is_runtime_parameter(spec.name, runtime))
        for config_cls, prefix in configs
        for spec in specs_from_config(config_cls(), prefix)
    ]


def declare_parameters(node: Any, specs: list[ParameterSpec]) -> dict[str, Any]:
    """Declare every spec on `node` and return {name: value} (overrides from --params-file / -p applied)."""
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    values = {}
    for spec in specs:
        try:
            node.declare_parameter(spec.name, spec.default, spec.descriptor())
        except InvalidParameterTypeException as exc:
            raise ParameterError(
                f"parameter {spec.name!r} must be of type {type(spec.default).__name__} "
                f"(default {spec.default!r}): {exc}"
            ) from exc
        except InvalidParameterValueException as exc:
            raise ParameterError(
                f"parameter {spec.name!r} is out of its range [{spec.low}, {spec.high}]: {exc}"
            ) from exc
        values[spec.name] = node.get_parameter(spec.name).value
    return values


def config_from_parameters(config_cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """Build `config_cls` (nested) from the parameter values of its specs (`prefix + field[.subfield]`)."""
    nested: dict[str, Any] = {}
    for spec in specs_from_config(config_cls(), prefix):
        if spec.name not in values:
            continue
        value = values[spec.name]
        if spec.none_value is not None and value == spec.none_value:
            value = None
        *parents, leaf = spec.name[len(prefix) :].split(".")
        target = nested
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    try:
        return from_dict(config_cls, nested, source="node parameters")
    except ConfigError as exc:
        raise ParameterError(str(exc)) from exc


def unknown_parameters(given: Sequence[str], declared: Sequence[str]) -> list[str]:
    """The `given` names (params file, `-p`) not in `declared`, each as "name (did you mean closest?)" when a
    declared name is close. rclpy keeps such overrides unused and says nothing."""
    described = []
    for name in sorted(set(given) - set(declared)):
        if name.startswith("qos_overrides."):  # rclpy's QoS override parameters, read by publishers that opt in
            continue
        closest = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
        described.append(f"{name} (did you mean {closest[0]}?)" if closest else name)
    return described


def read_node_configs(
    node: Any, node_name: str, configs: Sequence[tuple[type, str]], runtime: Sequence[str] = ()
) -> list[Any]:
    """Declare the parameters of `configs` ((config class, prefix) pairs; `runtime` ones dynamic) on `node`, then
    build each config.

    A bad value, or a parameter the node does not have (a misspelt name in a params file), is a `StartupError`
    naming the parameter (and the closest known one) and the params file (config/<node_name>.yaml) to fix.
    """
    try:
        values = declare_parameters(node, node_parameter_specs(configs, runtime))
        given = list(getattr(node, "_parameter_overrides", {}))  # rclpy: the values from files and the command line
        unknown = unknown_parameters(given, [*values, *(n for n in given if node.has_parameter(n))])
        if unknown:
            raise ParameterError(f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
        return [config_from_parameters(config_cls, values, prefix) for config_cls, prefix in configs]
    except ParameterError as exc:
        raise StartupError(
            f"{node_name}: bad parameter: {exc}; fix it in the params file "
            f"(config/{node_name}.yaml) or on the command line"
        ) from exc


def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def yaml_parameters(path: str | Path, node_name: str) -> dict[str, Any]:
    """Flat `ros__parameters` of `node_name` in a ROS 2 parameter file (keys `/**`, `/**/node`, `node`, `/node`)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    merged: dict[str, Any] = {}
    for key in ("/**", f"/**/{node_name}", node_name, f"/{node_name}"):
        if key in data:
            merged.update(_flatten(data[key].get("ros__parameters", {})))
    return merged


def parameter_file_text(node_name: str, specs: list[ParameterSpec], header: str) -> str:
    """A ROS 2 parameter file (`/**/NODE: ros__parameters:`, nested names) holding every spec's default, each
    preceded by a comment with its description and range."""
    nested: dict[str, Any] = {}
    for spec in specs:
        *parents, leaf = spec.name.split(".")
        target = nested
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = spec
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"/**/{node_name}:", "  ros__parameters:"]

    def emit(group: dict[str, Any], indent: str) -> None:
        for key, entry in group.items():
            if isinstance(entry, dict):
                lines.append(f"{indent}{key}:")
                emit(entry, indent + "  ")
                continue
            limits = f" [{entry.low}, {entry.high}]" if entry.low is not None else ""
            dynamic = " (can change at run time)" if entry.dynamic else ""
            lines.append(f"{indent}# {entry.description}{limits}{dynamic}")
            lines.append(indent + yaml.safe_dump({key: entry.default}, width=1 << 20).strip())

    emit(nested, "    ")
    return "\n".join(lines) + "\n"
