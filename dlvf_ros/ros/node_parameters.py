"""Node parameters declared from one table: name, default, description and numeric range (ParameterDescriptor).

A node lists `ParameterSpec`s (defaults taken from its typed config dataclasses, so they live in one place) and calls
`read_node_configs` (`declare_parameters`, then `config_from_parameters` per config); config/<node>.yaml mirrors the
same defaults (a test keeps them equal). Parameters are read-only: the nodes read them once at start-up. An out-of-range
or wrongly typed value is a `ParameterError` naming the parameter, its range and the file to fix.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from dlvf_ros.config import ConfigError, from_dict
from dlvf_ros.ros.node_main import StartupError


class ParameterError(ValueError):
    """A node parameter has a wrong type or is out of its range."""


@dataclass(frozen=True)
class ParameterSpec:
    """One ROS parameter: default (bool, int, float or str), description, inclusive range for numbers."""

    name: str
    default: bool | int | float | str
    description: str
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.default, (bool, int, float, str)):
            raise TypeError(
                f"ParameterSpec {self.name}: default must be bool, int, float or str, got {type(self.default).__name__}"
            )
        if (self.low is None) != (self.high is None):
            raise ValueError(f"ParameterSpec {self.name}: give both low and high, or neither")
        if self.low is not None and not (self.low <= self.default <= self.high):
            raise ValueError(f"ParameterSpec {self.name}: default {self.default} outside [{self.low}, {self.high}]")

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(name=self.name, description=self.description, read_only=True)
        if self.low is not None and isinstance(self.default, float):
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(self.low), to_value=float(self.high), step=0.0)
            ]
            descriptor.additional_constraints = f"{self.low} <= value <= {self.high}"
        elif self.low is not None and isinstance(self.default, int) and not isinstance(self.default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(self.low), to_value=int(self.high), step=1)]
            descriptor.additional_constraints = f"{int(self.low)} <= value <= {int(self.high)}"
        return descriptor


@dataclass(frozen=True)
class Doc:
    """How one config field appears as a parameter: description, inclusive range, the value that stands for None."""

    description: str
    low: float | None = None
    high: float | None = None
    none_value: bool | int | float | str | None = None


def prefixed_docs(prefix: str, docs: dict[str, Doc]) -> dict[str, Doc]:
    """`docs` with every name under `prefix` (the parameter names of a nested config, e.g. "localizer.ransac.")."""
    return {prefix + name: doc for name, doc in docs.items()}


def stereo_node_docs() -> dict[str, Doc]:
    """Docs of the node-level fields both nodes have: stereo input, watchdog, diagnostics, odometry, torch threads."""
    return {
        "queue_size": Doc("messages kept per stereo input while waiting for a synchronised set", 1, 1000),
        "slop_s": Doc(
            "largest stamp difference (s) within a synchronised left/right image + camera_info set", 0.0, 10.0
        ),
        "no_input_warning_s": Doc(
            "warn (log + diagnostics) when no synchronised stereo set arrived for this long (s)", 0.1, 3600.0
        ),
        "diagnostics_period_s": Doc("period (s) of the summary status on /diagnostics", 0.05, 3600.0),
        "odometry_horizon_s": Doc("odometry history kept for lookups at image stamps (s)", 0.1, 3600.0),
        "odometry_max_gap_s": Doc("largest gap (s) between odometry samples to interpolate across", 0.001, 60.0),
        "odometry_max_hold_s": Doc(
            "an image up to this much (s) newer than the newest odometry uses that odometry", 0.0, 60.0
        ),
        "odometry_wait_s": Doc(
            "wait up to this long (s, wall clock) for odometry at or after an image's stamp", 0.0, 10.0
        ),
        "torch_threads": Doc("CPU threads for the learned and xfeat backends (torch.set_num_threads)", 1, 256),
    }


def sgbm_docs(prefix: str) -> dict[str, Doc]:
    """Docs of the `SgbmConfig` fields (shared by both nodes) under `prefix` (e.g. "teach.sgbm.")."""
    return prefixed_docs(
        prefix,
        {
            "min_disparity": Doc("SGBM minimum disparity (px)", -1024, 1024),
            "num_disparities": Doc("SGBM disparity search range (px, a multiple of 16)", 16, 1024),
            "block_size": Doc("SGBM block size (odd, px)", 1, 51),
            "p1": Doc("SGBM smoothness penalty P1", 0, 100_000),
            "p2": Doc("SGBM smoothness penalty P2 (> P1)", 0, 100_000),
            "disp12_max_diff": Doc("SGBM left-right check tolerance (px; -1: off)", -1, 1024),
            "uniqueness_ratio": Doc("SGBM uniqueness ratio (%)", 0, 100),
            "speckle_window_size": Doc("SGBM speckle filter window (px; 0: off)", 0, 10_000),
            "speckle_range": Doc("SGBM speckle filter disparity range", 0, 1024),
            "pre_filter_cap": Doc("SGBM pre-filter cap", 1, 63),
            "mode": Doc("SGBM mode: sgbm, hh or sgbm_3way"),
        },
    )


UNDOCUMENTED = "undocumented"


def specs_from_config(config: Any, docs: dict[str, Doc], prefix: str = "") -> list[ParameterSpec]:
    """Specs for every scalar field of a config dataclass instance (nested dataclasses become `a.b` names).

    Defaults are the instance's values. `docs` is keyed by full parameter name. A field without an entry (a knob
    added to the core after the node's table was written) is still declared, described as
    "undocumented: Class.field" without a range, so the node keeps working; test_launch_files.py fails on it.
    An optional field whose value is None is declared with its `Doc.none_value`.
    """
    specs = []
    for f in dataclasses.fields(config):
        name = prefix + f.name
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            specs += specs_from_config(value, docs, name + ".")
            continue
        doc = docs.get(name, Doc(f"{UNDOCUMENTED}: {type(config).__name__}.{f.name}"))
        description = doc.description
        if doc.none_value is not None:
            description += f" ({doc.none_value!r}: none)"
            value = doc.none_value if value is None else value
        if not isinstance(value, (bool, int, float, str)):
            raise ParameterError(
                f"parameter {name!r} ({type(config).__name__}.{f.name}) has no ROS parameter type "
                f"for its value {value!r}; give it a Doc with none_value"
            )
        specs.append(ParameterSpec(name, value, description, doc.low, doc.high))
    return specs


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


def config_from_parameters(config_cls: type, values: dict[str, Any], docs: dict[str, Doc], prefix: str = "") -> Any:
    """Build `config_cls` (nested) from the parameter values named in `docs` (`prefix + field[.subfield]`)."""
    nested: dict[str, Any] = {}
    for name, value in values.items():
        if name not in docs:
            continue
        if docs[name].none_value is not None and value == docs[name].none_value:
            value = None
        *parents, leaf = name[len(prefix) :].split(".")
        target = nested
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    try:
        return from_dict(config_cls, nested, source="node parameters")
    except ConfigError as exc:
        raise ParameterError(str(exc)) from exc


def read_node_configs(
    node: Any, node_name: str, specs: list[ParameterSpec], configs: list[tuple[type, dict[str, Doc], str]]
) -> list[Any]:
    """Declare `specs` on `node`, then build each (config class, docs, prefix) from the values.

    A bad value is a `StartupError` naming the parameter and the params file (config/<node_name>.yaml) to fix.
    """
    try:
        values = declare_parameters(node, specs)
        return [config_from_parameters(config_cls, values, docs, prefix) for config_cls, docs, prefix in configs]
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
    """A ROS 2 parameter file (`/**/NODE: ros__parameters:`, nested names) holding every spec's default."""
    nested: dict[str, Any] = {}
    for spec in specs:
        *parents, leaf = spec.name.split(".")
        target = nested
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = spec.default
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + yaml.safe_dump({f"/**/{node_name}": {"ros__parameters": nested}}, sort_keys=False)
