"""Launch files and node parameter files: they compile, name real executables and declared parameters, and the
YAML defaults equal the config dataclasses. The launch files' shared arguments and node actions
(dlvf_ros/ros/launch_arguments.py, all through its `package_node`) are read the same way and counted for the files
that call them. Where `launch` is installed (a robot), the descriptions are built too."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from ros_nodes_support import refused_start_log

from dlvf_ros.ros import launch_arguments, localizer_node, path_tracker_node, sim_launch, sim_node, teach_node
from dlvf_ros.ros.node_parameters import UNDOCUMENTED, yaml_parameters

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
SHARED_MODULE = ROOT / "dlvf_ros" / "ros" / "launch_arguments.py"
COMMON_ARGUMENTS = {"use_sim_time", "params_file", "namespace", "model", "map", "rviz"} | {
    "left_image",
    "right_image",
    "left_info",
    "right_info",
    "odom",
}
NODE_PARAMETERS = {
    "teach_node": {spec.name for spec in teach_node.parameter_specs()},
    "localizer_node": {spec.name for spec in localizer_node.parameter_specs()},
    "sim_node": {spec.name for spec in sim_node.parameter_specs()},
    "path_tracker_node": {spec.name for spec in path_tracker_node.parameter_specs()},
}
NODE_MODULES = [
    ("teach_node", teach_node),
    ("localizer_node", localizer_node),
    ("sim_node", sim_node),
    ("path_tracker_node", path_tracker_node),
]


def _console_scripts() -> set[str]:
    text = (ROOT / "setup.py").read_text()
    return set(re.findall(r'"(\w+) = dlvf_ros\.[\w.]+:main"', text))


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def _shared_tree() -> ast.Module:
    return ast.parse(SHARED_MODULE.read_text(), filename=str(SHARED_MODULE))


def _function(tree: ast.Module, name: str) -> ast.FunctionDef:
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)


def _parameter_names(node_call: ast.Call) -> set[str]:
    """Names in the dict literals of a Node call's `parameters` list."""
    parameters = _keyword(node_call, "parameters")
    if parameters is None:
        return set()
    return {ast.literal_eval(k) for element in parameters.elts if isinstance(element, ast.Dict) for k in element.keys}


def test_the_shared_launch_module_declares_the_common_arguments_and_passes_them_on():
    tree = _shared_tree()
    compile(tree, str(SHARED_MODULE), "exec")
    assert set(launch_arguments.COMMON_ARGUMENTS) == COMMON_ARGUMENTS  # importable without launch / launch_ros
    declared = {c.args[0].value for c in _calls(_function(tree, "node_arguments"), "DeclareLaunchArgument")}
    assert declared == COMMON_ARGUMENTS
    used = {c.args[0].value for c in _calls(tree, "LaunchConfiguration")}
    assert used <= declared, f"launch_arguments.py uses undeclared launch arguments {used - declared}"
    (package_node,) = _calls(_function(tree, "package_node"), "Node")
    assert ast.literal_eval(_keyword(package_node, "package")) == "dlvf_ros"
    for keyword in ("executable", "name"):
        assert (
            isinstance(_keyword(package_node, keyword), ast.Name) and _keyword(package_node, keyword).id == "executable"
        )
    (node,) = _calls(_function(tree, "node_action"), "package_node")
    assert isinstance(node.args[0], ast.Name) and node.args[0].id == "node_name"
    assert _parameter_names(node) == {"use_sim_time", "map_path", "model"}
    remapped = {ast.literal_eval(element.elts[1].args[0]) for element in _keyword(node, "remappings").elts}
    assert remapped == set(launch_arguments.INPUT_TOPICS), "every input topic argument remaps the node's input"


def test_the_sim_launch_module_declares_what_it_uses_and_passes_real_parameters():
    path = ROOT / "dlvf_ros" / "ros" / "sim_launch.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    declared = {c.args[0].value for c in _calls(_function(tree, "sim_arguments"), "DeclareLaunchArgument")}
    assert declared == set(sim_launch.SIM_ARGUMENTS)
    used = {c.args[0].value for c in _calls(tree, "LaunchConfiguration")}
    assert used <= declared | COMMON_ARGUMENTS, f"sim_launch.py uses undeclared launch arguments {used - declared}"
    for function, executable in (("sim_action", "sim_node"), ("path_tracker_action", "path_tracker_node")):
        (node,) = _calls(_function(tree, function), "package_node")
        assert ast.literal_eval(node.args[0]) == executable and executable in _console_scripts()
        unknown = _parameter_names(node) - NODE_PARAMETERS[executable] - {"use_sim_time"}
        assert not unknown, f"sim_launch.{function}: {executable} has no parameters {unknown}"


def test_the_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} == {
        "teach.launch.py",
        "repeat.launch.py",
        "replay.launch.py",
        "sim_teach.launch.py",
        "sim_repeat.launch.py",
    }


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_real_nodes_arguments_and_parameters(path):
    source = path.read_text()
    tree = ast.parse(source, filename=str(path))
    compile(tree, str(path), "exec")
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)

    # node_arguments(NODE) declares the shared arguments, node_action(NODE) starts NODE with the shared Node call
    shared = _shared_tree()
    argument_nodes = [ast.literal_eval(c.args[0]) for c in _calls(tree, "node_arguments")]
    action_nodes = [ast.literal_eval(c.args[0]) for c in _calls(tree, "node_action")]
    assert set(action_nodes) <= set(argument_nodes), f"{path.name}: node_action without its node_arguments"
    for node_name in argument_nodes:
        assert (ROOT / "config" / f"{node_name}.yaml").is_file(), f"{path.name}: no config/{node_name}.yaml"

    declared = {c.args[0].value for c in _calls(tree, "DeclareLaunchArgument")}
    if argument_nodes:
        declared |= {c.args[0].value for c in _calls(_function(shared, "node_arguments"), "DeclareLaunchArgument")}
    expected = COMMON_ARGUMENTS | ({"bag", "rate"} if path.name == "replay.launch.py" else set())
    assert expected <= declared, f"{path.name} lacks launch arguments {expected - declared}"
    used = {c.args[0].value for c in _calls(tree, "LaunchConfiguration")}
    if action_nodes:
        used |= {c.args[0].value for c in _calls(_function(shared, "node_action"), "LaunchConfiguration")}
    assert used <= declared, f"{path.name} uses undeclared launch arguments {used - declared}"

    scripts = _console_scripts()
    nodes = [(call, ast.literal_eval(_keyword(call, "executable"))) for call in _calls(tree, "Node")]
    for call, _ in nodes:
        assert ast.literal_eval(_keyword(call, "package")) == "dlvf_ros"
    (shared_node,) = _calls(_function(shared, "node_action"), "package_node")  # the package's (shared test above)
    nodes += [(shared_node, node_name) for node_name in action_nodes]
    assert nodes
    for call, executable in nodes:
        assert executable in scripts, f"{path.name}: executable {executable} is not a console script in setup.py"
        if executable in NODE_PARAMETERS:
            unknown = _parameter_names(call) - NODE_PARAMETERS[executable] - {"use_sim_time"}
            assert not unknown, f"{path.name}: {executable} has no parameters {unknown}"


@pytest.mark.parametrize("node_name, module", NODE_MODULES)
def test_yaml_defaults_equal_the_declared_parameters(node_name, module):
    in_yaml = yaml_parameters(ROOT / "config" / f"{node_name}.yaml", node_name)
    declared = {spec.name: spec.default for spec in module.parameter_specs()}
    assert set(in_yaml) == set(declared), f"run `python tools/write_parameter_files.py`: {set(in_yaml) ^ set(declared)}"
    for name, default in declared.items():
        assert in_yaml[name] == default and type(in_yaml[name]) is type(default), name


@pytest.mark.parametrize("node_name, module", NODE_MODULES)
def test_every_parameter_has_a_description_and_numbers_a_range(node_name, module):
    for spec in module.parameter_specs():
        descriptor = spec.descriptor()
        assert not descriptor.description.startswith(UNDOCUMENTED), (
            f"{node_name}.{spec.name}: declare the field with dlvf_ros.config.setting(default, description, range)"
        )
        assert len(descriptor.description) > 10, spec.name
        if isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool):
            assert descriptor.floating_point_range or descriptor.integer_range, f"{node_name}.{spec.name} has no range"


def test_setup_installs_launch_and_config_files():
    text = (ROOT / "setup.py").read_text()
    assert 'glob("launch/*.launch.py")' in text and 'glob("config/*.yaml")' in text
    assert {"teach_node", "localizer_node", "bag_player"} <= _console_scripts()


@pytest.mark.ros
def test_the_node_accepts_its_parameter_file(tmp_path):
    """rcl parses config/localizer_node.yaml (wildcard node key, nested names) and every value has the right type:
    the node gets as far as opening the (missing) map."""
    data = yaml.safe_load((ROOT / "config" / "localizer_node.yaml").read_text())
    data["/**/localizer_node"]["ros__parameters"]["map_path"] = str(tmp_path / "no_map")
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(data))
    log = refused_start_log(
        "dlvf_ros.ros.localizer_node", tmp_path, node_name="localizer_node", params_file=params_file
    )
    assert "no_map does not exist" in log and "bad parameter" not in log, log


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="launch / launch_ros not installed here")
@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_description_builds(path):
    from launch_ros.actions import Node

    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    nodes = [e for e in description.entities if isinstance(e, Node)]
    ours = [n for n in nodes if n.node_package == "dlvf_ros"]
    assert ours and {n.node_executable for n in ours} <= _console_scripts()
    assert {(n.node_package, n.node_executable) for n in nodes if n not in ours} == {("rviz2", "rviz2")}


def test_rviz_config_shows_the_node_outputs_and_is_installed():
    config = yaml.safe_load((ROOT / "config" / "dlvf.rviz").read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "map"
    topics = {d["Topic"]["Value"] for d in manager["Displays"] if "Topic" in d}
    assert topics == {
        "localization/path",
        "localization/pose",
        "localization/health_marker",
        "localization/match_image",
    }
    assert {d["Class"] for d in manager["Displays"]} >= {"rviz_default_plugins/TF", "rviz_default_plugins/Image"}
    assert 'glob("config/*.rviz")' in (ROOT / "setup.py").read_text()
