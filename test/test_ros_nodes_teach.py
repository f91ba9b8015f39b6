"""teach_node as its own process over real DDS: keyframes from stereo + odometry, path, clean and killed shutdown."""

from __future__ import annotations

import contextlib
import signal
import sys

import numpy as np
import pytest

from dlvf_ros.geometry import transforms
from dlvf_ros.localization.map_store import MapStore
from dlvf_ros.replay.processes import python_module_command, start_ros_process

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from ros_nodes_support import StereoClient, refused_start_log, wall_rig, wall_run, wall_texture

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]

T_WORLD_ODOM = transforms.from_xyz_rpy(2.0, 1.0, 0.0, yaw=0.1)  # the teach odometry frame (= map) in the world


@pytest.fixture(scope="module")
def teach_frames():
    rig = wall_rig()
    return rig, wall_run(
        wall_texture(), rig, np.arange(0.0, 4.01, 0.25), 0.0, 3_000_000_000_000, period_s=0.2, wall_distance_m=4.0
    )


def _start(map_path, log_dir, **parameters):
    # odometry_wait_s: on a loaded machine the node's executor can take well over the default 1 s to deliver an
    # odometry message that was published before the images; the node waits for it (it never holds an older one)
    process = start_ros_process(
        python_module_command("dlvf_ros.ros.teach_node"),
        node_name="teach_node",
        parameters={
            "map_path": str(map_path),
            "backend": "orb",
            "teach.keyframe_distance_m": 1.0,
            "odometry_wait_s": 10.0,
            **parameters,
        },
        log_dir=log_dir,
    )
    process.wait_ready(timeout_s=60.0, publishes=["/localization/path"], subscribes=["/stereo/left/image_rect"])
    return process


@contextlib.contextmanager
def _teach_node(map_path, log_dir, rig, **parameters):
    """A started teach_node and a client; both stopped on exit."""
    process = _start(map_path, log_dir, **parameters)
    client = StereoClient(rig)
    try:
        yield process, client
    finally:
        process.stop()
        client.close()


def _teach(client, frames, count):
    for frame in frames[:count]:
        T_odom_vehicle = transforms.invert(T_WORLD_ODOM) @ frame.T_world_vehicle
        client.publish_odometry(frame.stamp_ns, T_odom_vehicle)
        client.publish_ground_truth(frame.stamp_ns, frame.T_world_vehicle)
        client.publish_stereo(frame.stamp_ns, frame.left, frame.right)
        client.spin(0.1)


def _connect_and_teach(client, frames, count):
    """Wait for the node's subscriptions, publish the camera extrinsic, then teach the first `count` frames.

    The extrinsic goes out once the node subscribes to /tf_static, before the first images; a frame that still comes
    first waits for it (`extrinsic_wait_s`) instead of being skipped, which would move every keyframe."""
    client.wait_matched()
    client.wait_for(lambda: client.static_broadcaster.pub_tf.get_subscription_count() > 0, 10.0, "/tf_static reader")
    client.publish_static_camera()
    client.spin(0.3)
    _teach(client, frames, count)


def test_teach_node_builds_a_map_and_finalises_it_on_sigint(teach_frames, tmp_path):
    rig, frames = teach_frames
    map_path = tmp_path / "map"
    with _teach_node(map_path, tmp_path, rig) as (process, client):
        _connect_and_teach(client, frames, len(frames))
        client.wait_for(lambda: client.paths and len(client.paths[-1].poses) == 5, 30.0, "5 keyframes on the path")
        assert process.stop(timeout_s=30.0) == 0, process.log_text()
    assert "5 keyframes" in process.log_text()
    store = MapStore.open(map_path)
    assert len(store) == 5 and store.manifest["backend"] == "orb"
    assert store.rig.matches(rig)
    for entry, expected_y in zip(store.entries, np.arange(0.0, 4.01, 1.0)):
        keyframe = store.keyframe(entry.keyframe_id)
        T_world_expected = transforms.from_xyz_rpy(0.0, expected_y, 0.0)
        np.testing.assert_allclose(keyframe.T_world_keyframe, T_world_expected, atol=1e-6)
        np.testing.assert_allclose(T_WORLD_ODOM @ entry.T_map_keyframe, T_world_expected, atol=1e-6)
        assert keyframe.valid.sum() >= 20


def test_an_image_without_odometry_at_its_stamp_is_skipped_not_given_older_odometry(teach_frames, tmp_path):
    rig, frames = teach_frames
    with _teach_node(tmp_path / "map", tmp_path, rig, odometry_wait_s=0.2) as (process, client):
        _connect_and_teach(client, frames, 1)
        client.publish_stereo(frames[1].stamp_ns, frames[1].left, frames[1].right)  # its odometry never comes
        client.wait_for(
            lambda: any("0.200 s older than the image (allowed 0.000 s)" in m for m in client.status_messages()),
            30.0,
            "a diagnostic refusing the 0.2 s old odometry",
        )
        assert process.stop(timeout_s=30.0) == 0, process.log_text()
    assert "1 keyframes from 1 frames" in process.log_text()


def test_killed_teach_node_leaves_a_loadable_map(teach_frames, tmp_path):
    rig, frames = teach_frames
    map_path = tmp_path / "map"
    with _teach_node(map_path, tmp_path, rig) as (process, client):
        _connect_and_teach(client, frames, 10)  # 3 keyframes at 0, 1 and 2 m
        client.wait_for(lambda: client.paths and len(client.paths[-1].poses) >= 3, 30.0, "3 keyframes")
        process._signal_group(signal.SIGKILL)
        assert process.wait(timeout_s=10.0) == -signal.SIGKILL
    store = MapStore.open(map_path)
    assert len(store) >= 3


def test_without_the_camera_extrinsic_frames_are_skipped_with_a_named_error(teach_frames, tmp_path):
    rig, frames = teach_frames
    with _teach_node(tmp_path / "map", tmp_path, rig, base_frame="chassis", extrinsic_wait_s=0.5) as (process, client):
        client.wait_matched()
        client.publish_static_camera()  # base_link -> camera, but the node wants chassis -> camera
        _teach(client, frames, 2)
        client.wait_for(
            lambda: any("chassis -> camera_left_optical" in m for m in client.status_messages()),
            20.0,
            "a diagnostic naming the missing transform",
        )
        assert process.alive()


def test_existing_map_is_refused_at_start_up(tmp_path):
    (tmp_path / "map").mkdir()
    (tmp_path / "map" / "something").write_text("x")
    log = refused_start_log(
        "dlvf_ros.ros.teach_node",
        tmp_path,
        node_name="teach_node",
        parameters={"map_path": str(tmp_path / "map"), "backend": "orb"},
    )
    assert "overwrite" in log
