"""Process-level: bag_player plays a stereo bag over DDS to a real rclpy subscriber in another process.

Also exercises dlvf_ros.replay.processes (start, readiness, stop) and tf2_msgs built by tools/build_tf2_msgs.sh.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tf2_msgs
from run_frames import Frame

from dlvf_ros.data.bags import typestore_for, write_run_bag
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.replay.processes import RosProcessError, format_parameter, ros_arguments, start_ros_process

pytestmark = pytest.mark.ros

RIG = StereoRig().scaled(320, 240)
RECORDER = Path(__file__).with_name("bag_player_recorder.py")
N_FRAMES, PERIOD_NS, T0_NS, RATE = 8, 100_000_000, 5_000_000_000_000, 2.0


def bag_player_command() -> list[str]:
    script = Path(sys.executable).with_name("bag_player")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "dlvf_ros.replay.bag_player"]


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    rng = np.random.default_rng(11)
    frames = [
        Frame(
            i,
            T0_NS + i * PERIOD_NS,
            rng.integers(0, 256, (RIG.height, RIG.width, 3), dtype=np.uint8),
            rng.integers(0, 256, (RIG.height, RIG.width, 3), dtype=np.uint8),
            transforms.from_xyz_rpy(0.2 * i, 0.0, 0.0),
            transforms.from_xyz_rpy(0.21 * i, 0.0, 0.0),
        )
        for i in range(N_FRAMES)
    ]
    path = write_run_bag(tmp_path_factory.mktemp("bags") / "run", frames, RIG)
    return path, frames


def test_player_delivers_stereo_images_with_stamps_and_clock(tmp_path, bag):
    bag_path, frames = bag
    out = tmp_path / "received.json"
    with start_ros_process(
        [sys.executable, str(RECORDER), str(out)], node_name="stereo_recorder", log_dir=tmp_path
    ) as recorder:
        recorder.wait_ready(timeout_s=30, subscribes=["/cam/left", "/stereo/right/image_raw", "/clock", "/tf_static"])
        with start_ros_process(
            bag_player_command()
            + [
                str(bag_path),
                "--rate",
                str(RATE),
                "--wait-for",
                "/stereo/left/image_raw",
                "/stereo/right/image_raw",
                "/clock",
            ],
            node_name="bag_player",
            remap={"/stereo/left/image_raw": "/cam/left"},
            log_dir=tmp_path,
        ) as player:
            assert player.wait(timeout_s=60) == 0, player.log_text()
        assert "finished: " in player.log_text()
        assert recorder.stop() == 0, recorder.log_text()
    received = json.loads(out.read_text())
    stamps = [f.stamp_ns for f in frames]
    for side in ("left", "right"):
        got = received[side]
        assert [m["stamp_ns"] for m in got] == stamps, f"{side}: {[m['stamp_ns'] for m in got]}"
        assert all(m["frame_id"] == f"camera_{side}_optical" and m["encoding"] == "rgb8" for m in got)
        assert all(m["size"] == [RIG.width, RIG.height, 3 * RIG.width] for m in got)
        expected = [hashlib.sha256(getattr(f, side).tobytes()).hexdigest() for f in frames]
        assert [m["sha256"] for m in got] == expected
    clock = np.array(received["clock"], dtype=np.int64)
    assert np.all(np.diff(clock) >= 0), "clock went backwards"
    assert clock.min() >= stamps[0] and clock.max() == stamps[-1]
    assert len(clock) > 2 * N_FRAMES  # published between messages too
    assert set(stamps) <= set(clock.tolist())  # the clock reads each message's bag time as it is sent
    # topics are independent DDS streams, so only the first image may come before any /clock message
    seen = [m["clock_ns"] for m in received["left"][1:]]
    assert all(c is not None and stamps[0] <= c <= stamps[-1] for c in seen)
    statics = {t["child"]: t for t in received["tf_static"]}
    assert set(statics) == {"camera_left_optical", "camera_right_optical"}
    np.testing.assert_allclose(statics["camera_left_optical"]["xyz"], RIG.T_vehicle_camera[:3, 3], atol=1e-12)
    assert statics["camera_left_optical"]["parent"] == "base_link"


def test_player_timing_follows_the_rate(tmp_path, bag):
    bag_path, _ = bag
    started = time.monotonic()
    with start_ros_process(
        bag_player_command() + [str(bag_path), "--rate", "1.0", "--no-clock"], node_name="bag_player", log_dir=tmp_path
    ) as player:
        assert player.wait(timeout_s=60) == 0, player.log_text()
    elapsed = time.monotonic() - started
    assert elapsed >= (N_FRAMES - 1) * PERIOD_NS * 1e-9, f"played {N_FRAMES - 1} periods in {elapsed:.2f} s"
    line = next(line for line in player.log_text().splitlines() if "finished: " in line)
    played_s = float(line.split(" in ")[1].split(" s")[0])
    assert 0.7 <= played_s < 1.2, line


def test_player_errors_exit_1_with_a_message(tmp_path, bag):
    bag_path, _ = bag
    missing = tmp_path / "nothing"
    with start_ros_process(bag_player_command() + [str(missing)], node_name="bag_player", log_dir=tmp_path) as p:
        assert p.wait(timeout_s=60) == 1
    assert "is not a rosbag2 bag" in p.log_text()
    with start_ros_process(
        bag_player_command() + [str(bag_path), "--wait-for", "/stereo/left/image_raw", "--wait-timeout", "0.5"],
        node_name="bag_player",
        log_dir=tmp_path / "wait",
    ) as p:
        assert p.wait(timeout_s=60) == 1
    assert "no subscriber on ['/stereo/left/image_raw'] after 0.5 s" in p.log_text()


def test_processes_report_early_exit_and_stop_a_hung_child(tmp_path):
    crash = start_ros_process(
        [sys.executable, "-c", "import sys; print('boom on stderr', file=sys.stderr); sys.exit(3)"],
        node_name="never_ready",
        log_dir=tmp_path,
    )
    with pytest.raises(RosProcessError, match=r"(?s)never_ready exited with code 3.*boom on stderr"):
        crash.wait_ready(timeout_s=20)
    stubborn = start_ros_process(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"],
        node_name="stubborn",
        log_dir=tmp_path,
    )
    with pytest.raises(RosProcessError, match="stubborn not ready after 0.5 s; missing: the node in the ROS graph"):
        stubborn.wait_ready(timeout_s=0.5)
    assert stubborn.stop(timeout_s=0.5) == -9 and not stubborn.alive()


def test_ros_arguments():
    params = Path(__file__)
    args = ros_arguments("loc", {"/a": "/b"}, {"rate": 2, "name": "x", "flag": True, "ids": [1, 2], "s": "12"}, params)
    # The parameter file comes first so that explicit `-p` values override it (later rules win).
    assert args == [
        "--ros-args",
        "-r",
        "__node:=loc",
        "-r",
        "/a:=/b",
        "--params-file",
        str(params),
        "-p",
        "rate:=2",
        "-p",
        "name:=x",
        "-p",
        "flag:=true",
        "-p",
        "ids:=[1, 2]",
        "-p",
        "s:='12'",
    ]
    assert ros_arguments() == []
    with pytest.raises(ValueError, match="parameter values must be"):
        format_parameter({"a": 1})
    with pytest.raises(FileNotFoundError, match="parameter file"):
        ros_arguments(params_file="/no/such.yaml")


def test_tf2_msgs_build_is_idempotent_quiet_and_has_the_real_type_hash():
    repo = Path(__file__).resolve().parents[1]
    venv = Path(sys.prefix)
    done = subprocess.run(
        ["bash", str(repo / "tools" / "build_tf2_msgs.sh"), str(venv)], capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    share = Path(tf2_msgs.__file__).resolve().parents[4] / "share" / "tf2_msgs"  # PREFIX/lib/pythonX.Y/site-packages
    description = json.loads((share / "msg" / "TFMessage.json").read_text())
    (built,) = [h["hash_string"] for h in description["type_hashes"] if h["type_name"] == "tf2_msgs/msg/TFMessage"]
    assert built == typestore_for("kilted").hash_rihs01("tf2_msgs/msg/TFMessage")


def test_message_types_are_checked_before_anything_is_imported(monkeypatch):
    from dlvf_ros.data.bag_format import installed_interface_packages
    from dlvf_ros.replay.bag_player import BagPlayerError, message_class

    monkeypatch.delitem(sys.modules, "this", raising=False)
    installed = installed_interface_packages()
    with pytest.raises(BagPlayerError, match=r"bag b, topic /x: message type this/msg/Foo is not from an installed"):
        message_class("this/msg/Foo", installed, "bag b, topic /x")
    assert "this" not in sys.modules  # `import this` would have run the module
    with pytest.raises(BagPlayerError, match="not of the form package/msg/Name"):
        message_class("os/../Foo", installed, "bag b, topic /x")
    from sensor_msgs.msg import Image

    assert message_class("sensor_msgs/msg/Image", installed, "bag b, topic /x") is Image
