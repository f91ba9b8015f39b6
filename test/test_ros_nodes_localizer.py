"""localizer_node as its own process over real DDS: pose, tf, path, per-frame results, the ~1 Hz health summary on
/diagnostics; bad inputs; fatal start-up errors.

The map is taught (ORB) from a textured-wall world at 256x192 (test/ros_nodes_support.py); the repeat frames are
0.4 m closer to the wall, at other lateral positions, darker, and the repeat odometry frame is offset from the map.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from dlvf_ros.geometry import transforms
from dlvf_ros.replay.processes import python_module_command, start_ros_process

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from ros_nodes_support import StereoClient, refused_start_log, taught_wall_map, wall_run

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]

NODE = "localizer_node"
TEACH_START_NS = 1_000_000_000_000
REPEAT_START_NS = 2_000_000_000_000
# odom frame of the repeat run in the map (world) frame: the localizer must recover it as map -> odom
T_MAP_ODOM = transforms.from_xyz_rpy(0.5, -0.3, 0.0, yaw=0.05)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    rig, texture, map_path = taught_wall_map(tmp_path_factory.mktemp("map"), TEACH_START_NS)
    repeat = wall_run(
        texture, rig, np.arange(0.3, 4.0, 0.7), 0.4, REPEAT_START_NS, period_s=0.5, wall_distance_m=4.0, brightness=0.7
    )
    return rig, map_path, repeat


@pytest.fixture(scope="module")
def node(world, tmp_path_factory):
    _, map_path, _ = world
    process = start_ros_process(
        python_module_command("dlvf_ros.ros.localizer_node"),
        node_name=NODE,
        parameters={"map_path": str(map_path), "no_input_warning_s": 1.0, "slop_s": 0.02},  # summary every 1 s
        log_dir=tmp_path_factory.mktemp("logs"),
    )
    with process:
        process.wait_ready(timeout_s=60.0, publishes=["/localization/pose"], subscribes=["/stereo/left/image_rect"])
        yield process


@pytest.fixture(scope="module")
def client(world, node):
    rig, _, _ = world
    client = StereoClient(rig)
    client.wait_matched()
    yield client
    client.close()


def _send_frame(client, frame, **kwargs):
    T_odom_vehicle = transforms.invert(T_MAP_ODOM) @ frame.T_world_vehicle
    client.publish_odometry(frame.stamp_ns - 50_000_000, T_odom_vehicle)
    client.publish_odometry(frame.stamp_ns + 50_000_000, T_odom_vehicle)
    client.publish_stereo(frame.stamp_ns, frame.left, frame.right, **kwargs)


def _wait_frame_status(client, stamp_ns, timeout_s=30.0):
    client.wait_for(
        lambda: any(
            s.values and {kv.key: kv.value for kv in s.values}.get("frame_stamp_ns") == str(stamp_ns)
            for s in client.frame_results
        ),
        timeout_s,
        f"the per-frame result of the frame at {stamp_ns}",
    )


def test_localizes_and_publishes_pose_tf_path_and_frame_results(world, client, node):
    _, map_path, repeat = world
    client.wait_for(lambda: client.paths, 10.0, "the taught path (transient local)")
    from dlvf_ros.localization.map_store import MapStore

    store = MapStore.open(map_path)
    path = client.paths[-1]
    assert path.header.frame_id == "map" and len(path.poses) == len(store) >= 5
    np.testing.assert_allclose(
        [p.pose.position.y for p in path.poses], [e.T_map_keyframe[1, 3] for e in store.entries], atol=1e-9
    )

    for frame in repeat:
        _send_frame(client, frame)
        _wait_frame_status(client, frame.stamp_ns)
    client.spin(0.3)
    stamps = {int(p.header.stamp.sec) * 10**9 + p.header.stamp.nanosec: p for p in client.poses}
    assert len(stamps) >= len(repeat) - 1, [s.message for s in client.frame_results]
    from dlvf_ros.ros import conversions

    for frame in repeat:
        if frame.stamp_ns not in stamps:
            continue
        msg = stamps[frame.stamp_ns]
        assert msg.header.frame_id == "map"
        T_map_vehicle = conversions.pose_to_matrix(msg.pose.pose)
        np.testing.assert_allclose(T_map_vehicle[:2, 3], frame.T_world_vehicle[:2, 3], atol=0.3)
        covariance = np.asarray(msg.pose.covariance).reshape(6, 6)
        assert np.all(np.diag(covariance) > 0) and np.allclose(covariance, covariance.T)

    map_odom = [t for t in client.tf if t.header.frame_id == "map" and t.child_frame_id == "odom"]
    assert map_odom, "no map -> odom on /tf"
    _, _, T = conversions.transform_stamped_to_matrix(map_odom[-1])
    np.testing.assert_allclose(T[:2, 3], T_MAP_ODOM[:2, 3], atol=0.3)
    assert abs(transforms.yaw_of(T) - transforms.yaw_of(T_MAP_ODOM)) < np.radians(3)

    values = [{kv.key: kv.value for kv in s.values} for s in client.frame_results]
    localized = [v for v in values if v.get("fixed") == "True"]
    assert len(localized) >= len(repeat) - 1
    assert all(int(v["inliers"]) >= 20 and float(v["latency_ms"]) > 0 for v in localized)
    # each frame's result is stamped with its image time, on its own topic only
    for status, stamp_ns in zip(client.frame_results, client.frame_result_stamps_ns):
        assert {kv.key: kv.value for kv in status.values}["frame_stamp_ns"] == str(stamp_ns)
    assert {frame.stamp_ns for frame in repeat} <= set(client.frame_result_stamps_ns)
    assert not any(kv.key == "frame_stamp_ns" for s in client.diagnostics for kv in s.values)


@pytest.mark.parametrize(
    "problem, expected",
    [
        ("encoding", "yuv422"),
        ("size", "differ in size"),
        ("missing_info", "missing left camera_info (/stereo/left/camera_info)"),
        ("unsynchronised", "never within slop"),
        ("nan_odometry", "odometry message"),
    ],
)
def test_bad_input_is_reported_and_the_node_keeps_running(world, client, node, problem, expected):
    rig, _, repeat = world
    frame = repeat[0]
    stamp_ns = REPEAT_START_NS + 10**12 + len(client.statuses) * 10**9  # later than every earlier frame
    before = len(client.statuses)
    if problem == "encoding":
        client.publish_stereo(stamp_ns, frame.left, frame.right, left_encoding="yuv422")
    elif problem == "size":
        client.publish_stereo(stamp_ns, frame.left, np.ascontiguousarray(frame.right[::2, ::2]))
    elif problem == "missing_info":
        for k in range(8):
            client.publish_stereo(stamp_ns + k * 200_000_000, frame.left, frame.right, skip=("left_info",))
            client.spin(0.2)
    elif problem == "unsynchronised":
        for k in range(8):
            client.publish_stereo(
                stamp_ns + k * 200_000_000, frame.left, frame.right, right_stamp_offset_ns=100_000_000
            )
            client.spin(0.2)
    elif problem == "nan_odometry":
        from dlvf_ros.ros import conversions

        msg = conversions.matrix_to_odometry(np.eye(4), stamp_ns)
        msg.pose.pose.position.x = float("nan")
        client.pub["odom"].publish(msg)
    client.wait_for(
        lambda: any(expected in s.message for s in client.statuses[before:]),
        15.0,
        f"a diagnostic containing {expected!r}; got {[s.message for s in client.statuses[before:]][-5:]}",
    )
    assert node.alive()
    # still working: a good frame gets its per-frame result
    good_stamp = stamp_ns + 5 * 10**9
    T_odom_vehicle = transforms.invert(T_MAP_ODOM) @ frame.T_world_vehicle
    client.publish_odometry(good_stamp, T_odom_vehicle)
    client.publish_stereo(good_stamp, frame.left, frame.right)
    _wait_frame_status(client, good_stamp)
    status = [
        s
        for s in client.frame_results
        if {kv.key: kv.value for kv in s.values}.get("frame_stamp_ns") == str(good_stamp)
    ][-1]
    assert {kv.key: kv.value for kv in status.values}["last_error"] == ""


def test_health_summary_on_diagnostics_at_about_1_hz(world, client, node):
    """diagnostic_updater style: one summary a second (default diagnostics_period_s) while frames come at ~4 Hz,
    carrying rate, latency (image stamp to result), input age, state, counters and last error."""
    _, _, repeat = world
    frame = repeat[1]
    T_odom_vehicle = transforms.invert(T_MAP_ODOM) @ frame.T_world_vehicle
    summaries_before, results_before = len(client.summaries()), len(client.frame_results)
    started = time.monotonic()
    while time.monotonic() - started < 6.0:
        stamp_ns = time.time_ns()  # wall-clock stamps, later than every earlier frame: the latency is real
        client.publish_odometry(stamp_ns - 50_000_000, T_odom_vehicle)
        client.publish_odometry(stamp_ns + 50_000_000, T_odom_vehicle)
        client.publish_stereo(stamp_ns, frame.left, frame.right)
        client.spin(0.25)
    elapsed_s = time.monotonic() - started
    summaries = client.summaries()[summaries_before:]
    assert 0.5 * elapsed_s <= len(summaries) <= 1.5 * elapsed_s + 1, f"{len(summaries)} summaries in {elapsed_s:.1f} s"
    assert {s.name for s in summaries} == {f"{NODE}: summary"}
    assert len(client.frame_results) - results_before >= 3, "frames kept coming"
    values = [{kv.key: kv.value for kv in s.values} for s in summaries]
    keys = {"rate_hz", "latency_ms", "processing_ms", "input_age_s", "state", "frames_received", "frames_processed"}
    keys |= {"frames_failed", "frames_dropped_stale", "last_error"}
    assert all(keys <= set(v) for v in values), values[-1]
    with_frames = [v for v in values[1:] if v["latency_ms"]]  # the first period may start before the frames
    assert with_frames, values
    assert all(float(v["rate_hz"]) > 0 and 0 < float(v["latency_ms"]) < 30_000 for v in with_frames), with_frames
    assert all(0 <= float(v["processing_ms"]) <= float(v["latency_ms"]) + 1 for v in with_frames), with_frames
    assert all(float(v["input_age_s"]) < 3.0 and v["state"] in {"LOCALIZED", "DEGRADED", "LOST"} for v in values[1:])
    assert all(s.message for s in summaries)


@pytest.mark.parametrize(
    "parameters, expected",
    [
        ({"backend": "sift"}, "was built with features"),
        ({"map_path": "/nonexistent/map"}, "does not exist"),
        ({"slop_s": -1.0}, "slop_s"),
    ],
)
def test_startup_errors_are_fatal_with_a_clear_message(world, tmp_path, parameters, expected):
    _, map_path, _ = world
    log = refused_start_log(
        "dlvf_ros.ros.localizer_node",
        tmp_path,
        node_name="localizer_fatal",
        parameters={"map_path": str(map_path), **parameters},
    )
    assert expected in log, log


def test_a_misspelt_parameter_in_a_params_file_is_refused_naming_the_closest(world, tmp_path):
    _, map_path, _ = world
    params_file = tmp_path / "params.yaml"
    params_file.write_text(
        f"/**/localizer_fatal:\n  ros__parameters:\n    map_path: {map_path}\n"
        "    localizer:\n      ransac:\n        iteratons: 100\n"
    )
    log = refused_start_log(
        "dlvf_ros.ros.localizer_node", tmp_path, node_name="localizer_fatal", params_file=params_file
    )
    assert "unknown parameter localizer.ransac.iteratons (did you mean localizer.ransac.iterations?)" in log, log


def test_replay_without_camera_info_exits_non_zero_naming_the_missing_topic(world, tmp_path):
    import subprocess

    from dlvf_ros.data.bag_format import BagTopics
    from dlvf_ros.data.bags import write_run_bag

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from run_frames import Frame

    rig, map_path, repeat = world
    frames = [Frame(i, f.stamp_ns, f.left, f.right, f.T_world_vehicle, f.T_world_vehicle) for i, f in enumerate(repeat)]
    elsewhere = BagTopics(left_info="/elsewhere/left/camera_info", right_info="/elsewhere/right/camera_info")
    bag = write_run_bag(tmp_path / "bag", frames, rig, topics=elsewhere)
    params = tmp_path / "params.yaml"
    params.write_text(
        "/**/localizer_node:\n  ros__parameters:\n    no_input_warning_s: 1.0\n    diagnostics_period_s: 0.25\n"
    )
    out = tmp_path / "recording"
    command = ["replay", "--bag", str(bag), "--map", str(map_path), "--out", str(out), "--params-file", str(params)]
    result = subprocess.run(
        [sys.executable, "-m", "dlvf_ros.cli", *command, "--drain-s", "2"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0, result.stdout + result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("dlvf replay: error:")]
    assert "published no pose" in line and "missing left camera_info (/stereo/left/camera_info)" in line, line
    assert (out / "replay.json").is_file()  # the recording is complete: nothing lost
