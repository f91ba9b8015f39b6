"""Typed config loading, atomic writes and the `dlvf` dispatcher."""

import importlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Literal

import pytest

from dlvf_ros import cli, fileio
from dlvf_ros.config import ConfigError, check_settings, from_dict, load_config, setting
from dlvf_ros.geometry.ransac import RansacConfig


@dataclass
class Inner:
    rate_hz: float = setting(10.0, "how often (Hz)", (0.1, 100.0))
    mode: Literal["dense", "sparse"] = "sparse"
    cap: int | None = setting(None, "at most this many", (-1, 10), none_value=-1)


@dataclass
class Outer:
    name: str = "x"
    count: int = 3
    inner: Inner = field(default_factory=Inner)
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    seed: int | None = None


def test_config_defaults_overrides_and_nesting(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("count: 5\ninner:\n  rate_hz: 2\n  mode: dense\nseed: 7\n")
    cfg = load_config(Outer, path)
    assert cfg == Outer(count=5, inner=Inner(rate_hz=2.0, mode="dense"), seed=7)
    assert load_config(Outer, None) == Outer()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"cont": 1}, "unknown key"),
        ({"count": "3"}, "expected an integer"),
        ({"inner": {"mode": "both"}}, "not one of"),
        ({"inner": {"rate_hz": True}}, "expected a number"),
        ({"sizes": [1, "a"]}, r"sizes\[1\]"),
        ({"inner": {"rate_hz": 500}}, r"my.yaml: inner: rate_hz: 500.0 is outside its range \[0.1, 100.0\]"),
        ({"inner": {"rate_hz": float("nan")}}, "outside its range"),
    ],
)
def test_config_errors_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data, "my.yaml")


def test_check_settings_holds_values_to_their_declared_ranges():
    check_settings(Inner(rate_hz=100.0, cap=10))  # the range is inclusive
    check_settings(Inner(cap=None))  # None of an optional field is skipped
    with pytest.raises(ValueError, match=r"^Inner.rate_hz must be in \[0.1, 100.0\], got 500$"):
        check_settings(Inner(rate_hz=500))
    with pytest.raises(ValueError, match=r"Inner.rate_hz must be in \[0.1, 100.0\], got nan"):
        check_settings(Inner(rate_hz=float("nan")))
    with pytest.raises(ValueError, match=r"RansacConfig.sample_size must be in \[3, 1000\], got 2"):
        RansacConfig(sample_size=2)  # built in Python, not loaded: __post_init__ checks the ranges


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("count: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(Outer, bad)


def test_atomic_write_replaces_whole_file_or_nothing(tmp_path):
    target = tmp_path / "sub" / "data.bin"
    fileio.atomic_write_bytes(target, b"first")
    with pytest.raises(RuntimeError), fileio.atomic_open(target, "wb") as handle:
        handle.write(b"partial")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["data.bin"]  # no temp file left
    fileio.atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert fileio.sha256_file(target) == fileio.sha256_bytes(b"second")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_get_the_mode_a_plain_open_would(tmp_path, umask):
    previous = os.umask(umask)
    try:
        with open(tmp_path / "plain", "w") as handle:
            handle.write("x")
        fileio.atomic_write_text(tmp_path / "atomic", "x")
        fileio.atomic_write_text(tmp_path / "atomic", "y")  # replacing keeps it so
        with fileio.replacing_directory(tmp_path / "dir") as staged:
            staged.mkdir()
        os.mkdir(tmp_path / "plain_dir")
    finally:
        os.umask(previous)
    mode = os.stat(tmp_path / "plain").st_mode & 0o777
    assert mode == 0o666 & ~umask and os.stat(tmp_path / "atomic").st_mode & 0o777 == mode
    assert os.stat(tmp_path / "dir").st_mode & 0o777 == os.stat(tmp_path / "plain_dir").st_mode & 0o777


def test_replacing_directory_swaps_on_success_and_leaves_the_old_one_on_failure(tmp_path):
    target = tmp_path / "out"
    with fileio.replacing_directory(target) as staged:
        staged.mkdir()
        (staged / "a").write_text("1")
    with pytest.raises(RuntimeError), fileio.replacing_directory(target) as staged:
        staged.mkdir()
        (staged / "a").write_text("2")
        raise RuntimeError("failed half-way")
    assert (target / "a").read_text() == "1"
    with fileio.replacing_directory(target) as staged:
        staged.mkdir()
        (staged / "b").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


def test_every_cli_command_module_exists_and_has_the_interface():
    for name, (module_name, _) in cli.COMMANDS.items():
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments) and callable(module.run), name


def test_cli_help_lists_commands_and_rejects_unknown():
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-m", "dlvf_ros.cli", "--help"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "teach" in out.stdout and "bench" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "dlvf_ros.cli", "nope"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_core_never_imports_rclpy():
    """Everything outside dlvf_ros.ros (nodes) and dlvf_ros.replay (bag player, recorder) must import without rclpy."""
    code = (
        "import sys, importlib, pkgutil, dlvf_ros\n"
        "for m in pkgutil.walk_packages(dlvf_ros.__path__, 'dlvf_ros.'):\n"
        "    if not m.name.startswith(('dlvf_ros.ros', 'dlvf_ros.replay')):\n"
        "        importlib.import_module(m.name)\n"
        "bad = [n for n in sys.modules if n.startswith('rclpy')]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
