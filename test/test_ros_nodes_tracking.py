"""localizer_node as a path tracker sees it, over real DDS: the vertex-relative output on a replayed bag (read with
the ROS-free `dlvf_ros.tracker_client`), map -> odom while frames are missing and after LOST, and what brings the
node back: /initialpose, ~/reset, ~/relocalize and a backwards time jump.

World: the textured wall of test/ros_nodes_support.py. The map is taught along the wall (vehicle +y, a keyframe per
metre, odometry = ground truth, so the map frame is the world frame); the repeat run is 0.4 m closer to the wall,
darker, with its odometry frame offset from the map.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dlvf_ros import tracker_client
from dlvf_ros.data.bag_format import BagTopics
from dlvf_ros.data.bags import write_run_bag
from dlvf_ros.evaluation.metrics import SuccessCriteria
from dlvf_ros.geometry import transforms
from dlvf_ros.localization.map_store import MapStore
from dlvf_ros.localization.path_tracking import TaughtPath
from dlvf_ros.replay.processes import python_module_command, start_ros_process
from dlvf_ros.ros.stereo_input import bag_remappings

sys.path.insert(0, str(Path(__file__).parent))
from ros_nodes_support import StereoClient, taught_wall_map, wall_run, wall_texture
from run_frames import Frame

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]

NODE = "localizer_node"
LEFT_IMAGE = "/stereo/left/image_rect"
BAG = BagTopics()
TEACH_START_NS = 1_000_000_000_000
REPEAT_START_NS = 2_000_000_000_000
REPEAT_PERIOD_S = 0.5
REPEAT_STEP_M = 0.35
T_MAP_ODOM = transforms.from_xyz_rpy(0.5, -0.3, 0.0, yaw=0.05)
CRITERIA = SuccessCriteria()
TF_PERIOD_S = 0.05
LOST_TF_TIMEOUT_S = 0.5
# what a loaded 2-core machine adds to a bound measured from another process (executor, delivery)
DELIVERY_MARGIN_S = 0.5


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    rig, texture, map_path = taught_wall_map(tmp_path_factory.mktemp("map"), TEACH_START_NS)
    repeat = wall_run(
        texture,
        rig,
        np.arange(0.3, 5.2, REPEAT_STEP_M),
        0.4,
        REPEAT_START_NS,
        period_s=REPEAT_PERIOD_S,
        wall_distance_m=4.0,
        brightness=0.7,
    )
    frames = [
        Frame(i, f.stamp_ns, f.left, f.right, f.T_world_vehicle, transforms.invert(T_MAP_ODOM) @ f.T_world_vehicle)
        for i, f in enumerate(repeat)
    ]
    bag = write_run_bag(tmp_path_factory.mktemp("bags") / "repeat", frames, rig)
    return rig, map_path, repeat, bag


@pytest.fixture(scope="module")
def node(world, tmp_path_factory):
    _, map_path, _, _ = world
    process = start_ros_process(
        python_module_command("dlvf_ros.ros.localizer_node"),
        node_name=NODE,
        parameters={
            "map_path": str(map_path),
            "diagnostics_period_s": 0.25,
            "tf_period_s": TF_PERIOD_S,
            "lost_tf_timeout_s": LOST_TF_TIMEOUT_S,
            "lost_tf_distance_m": 100.0,
            "localizer.health.frames_to_lose": 2,
        },
        log_dir=tmp_path_factory.mktemp("logs"),
    )
    with process:
        process.wait_ready(timeout_s=60.0, publishes=["/localization/pose"], subscribes=[LEFT_IMAGE])
        yield process


@pytest.fixture(scope="module")
def client(world, node):
    rig, _, _, _ = world
    client = StereoClient(rig, name="dlvf_tracking_client")
    client.wait_matched()
    yield client
    client.close()


@pytest.fixture(scope="module")
def tracker(client):
    """The tracker client on the test node, and the receive times (time.monotonic) of map -> odom on /tf."""
    from tf2_msgs.msg import TFMessage

    updates: list[tracker_client.TrackingUpdate] = []
    tracker = tracker_client.TrackerClient(on_update=updates.append)
    tracker.attach(client.node)
    tracker.updates = updates
    tracker.map_odom_times = []

    def on_tf(msg) -> None:
        if any(t.header.frame_id == "map" and t.child_frame_id == "odom" for t in msg.transforms):
            tracker.map_odom_times.append(time.monotonic())

    client.node.create_subscription(TFMessage, "/tf", on_tf, 100)
    client.spin(1.0)  # discovery of the new subscriptions
    return tracker


def _send(client, tracker, world, lateral_m: float, stamp_ns: int, texture_brightness: float = 0.7):
    """One repeat frame at `lateral_m` along the wall (odometry in the repeat odom frame); returns its update."""
    rig, _, _, _ = world
    (frame,) = wall_run(
        _TEXTURE, rig, np.array([lateral_m]), 0.4, stamp_ns, wall_distance_m=4.0, brightness=texture_brightness
    )
    T_odom_vehicle = transforms.invert(T_MAP_ODOM) @ frame.T_world_vehicle
    client.publish_odometry(stamp_ns - 50_000_000, T_odom_vehicle)
    client.publish_odometry(stamp_ns + 50_000_000, T_odom_vehicle)
    left, right = (frame.left, frame.right) if texture_brightness > 0 else (_FLAT, _FLAT)
    client.publish_stereo(stamp_ns, left, right)
    client.wait_for(
        lambda: tracker.latest is not None and tracker.latest.stamp_ns == stamp_ns, 30.0, f"frame {stamp_ns}"
    )
    return tracker.latest


def _first_fix(client, tracker, world, lateral_m: float, stamp_ns: int, frames: int = 2):
    """Frames 0.1 m and 0.1 s apart from (`lateral_m`, `stamp_ns`) until one gives a fix (at most `frames`: a
    localizer may hold the first pose after start-up or LOST back until the next frame confirms it); (update of
    the fix, stamp of the first frame sent)."""
    for k in range(frames):
        update = _send(client, tracker, world, lateral_m + 0.1 * k, stamp_ns + k * 10**8)
        if update.status.fixed:
            return update, stamp_ns
    raise AssertionError(f"no fix in {frames} frames from {stamp_ns}: {update.status.reason}")


def _search_of(client, stamp_ns: int) -> str:
    client.wait_for(lambda: _frame_values(client, stamp_ns) is not None, 10.0, f"the frame status of {stamp_ns}")
    return _frame_values(client, stamp_ns)["search"]


def _frame_values(client, stamp_ns: int) -> dict | None:
    for status in client.frame_results:
        values = {kv.key: kv.value for kv in status.values}
        if values.get("frame_stamp_ns") == str(stamp_ns):
            return values
    return None


def _call(client, service: str) -> str:
    from std_srvs.srv import Trigger

    caller = client.node.create_client(Trigger, f"/{NODE}/{service}")
    assert caller.wait_for_service(timeout_sec=10.0), service
    future = caller.call_async(Trigger.Request())
    client.wait_for(future.done, 10.0, f"the {service} response")
    assert future.result().success
    return future.result().message


_TEXTURE = wall_texture()
_FLAT = np.full((192, 256, 3), 128, np.uint8)  # no texture: no features, no fix


def test_a_tracker_reads_vertex_relative_output_from_a_replayed_bag(world, node, client, tracker, tmp_path):
    _, map_path, repeat, bag = world
    updates = tracker.updates
    player = start_ros_process(
        python_module_command("dlvf_ros.replay.bag_player", str(bag), "--no-clock", "--wait-for", BAG.left_image),
        remap={bag_topic: "/" + node_topic for node_topic, bag_topic in bag_remappings().items()},
        log_dir=tmp_path,
    )
    with player:
        assert player.wait(timeout_s=120.0) == 0, player.log_text()
    last_stamp = repeat[-1].stamp_ns
    client.wait_for(lambda: tracker.latest and tracker.latest.stamp_ns == last_stamp, 120.0, "the last frame's update")

    store = MapStore.open(map_path)
    T_map_vertex = np.stack([e.T_map_keyframe for e in store.entries])
    path = TaughtPath(T_map_vertex)
    truth = {f.stamp_ns: f.T_world_vehicle for f in repeat}  # the map frame is the world frame here
    with_pose = [u for u in updates if u.pose is not None]
    assert len(updates) >= len(repeat) // 2, f"{len(updates)} updates for {len(repeat)} frames"
    assert len(with_pose) >= len(updates) - 2 and all(u.localized for u in with_pose[2:])
    for update in with_pose:
        T_world_vehicle = truth[update.stamp_ns]
        nearest = int(np.argmin(np.linalg.norm(T_map_vertex[:, :2, 3] - T_world_vehicle[:2, 3], axis=1)))
        assert abs(update.pose.vertex_id - nearest) <= 1, (update.stamp_ns, update.pose.vertex_id, nearest)
        assert update.status.vertex_id == update.pose.vertex_id
        T_true = transforms.invert(T_map_vertex[update.pose.vertex_id]) @ T_world_vehicle
        T_error = transforms.invert(T_true) @ update.pose.T_vertex_vehicle
        assert np.hypot(*T_error[:2, 3]) <= CRITERIA.max_translation_error_m, T_error
        assert abs(np.degrees(transforms.yaw_of(T_error))) <= CRITERIA.max_heading_error_deg, T_error
        covariance = update.pose.covariance
        assert np.all(np.diag(covariance) > 0) and np.allclose(covariance, covariance.T)
        expected = path.locate(T_world_vehicle)
        assert abs(update.status.cross_track_m - expected.cross_track_m) <= CRITERIA.max_translation_error_m
        assert abs(update.status.progress_m - expected.progress_m) <= CRITERIA.max_translation_error_m
    # velocity from odometry between processed frames: sideways (+y) at 0.7 m/s of bag time
    speeds = [u.pose.velocity for u in with_pose[1:]]
    np.testing.assert_allclose(np.median(speeds, axis=0)[:2], [0.0, REPEAT_STEP_M / REPEAT_PERIOD_S], atol=0.05)


def test_map_to_odom_is_re_sent_while_frames_are_missing_and_stops_after_lost(world, node, client, tracker):
    stamp = REPEAT_START_NS + 100 * 10**9
    assert _send(client, tracker, world, 2.0, stamp).status.fixed
    first = len(tracker.map_odom_times)
    client.spin(1.0)  # no frames for 1 s: the timer keeps map -> odom coming
    assert len(tracker.map_odom_times) - first >= 0.5 / TF_PERIOD_S, len(tracker.map_odom_times) - first

    for k in range(1, 4):  # frames without features: no fix; LOST after health.frames_to_lose = 2
        update = _send(client, tracker, world, 2.0, stamp + k * 10**8, texture_brightness=0.0)
        assert not update.status.fixed
        if update.status.state == "LOST":
            break
    assert update.status.state == "LOST" and not update.localized
    lost_at = time.monotonic()
    client.spin(LOST_TF_TIMEOUT_S + 1.5)
    late = [t for t in tracker.map_odom_times if t > lost_at + LOST_TF_TIMEOUT_S + DELIVERY_MARGIN_S]
    assert not late, f"map -> odom {len(late)} times more than {LOST_TF_TIMEOUT_S} s after LOST"


def test_initialpose_brings_a_lost_node_back_with_a_search_around_it(world, node, client, tracker):
    from geometry_msgs.msg import PoseWithCovarianceStamped

    from dlvf_ros.ros import conversions

    assert tracker.latest.status.state == "LOST"
    publisher = client.node.create_publisher(PoseWithCovarianceStamped, "/initialpose", 10)
    client.wait_for(lambda: publisher.get_subscription_count() > 0, 10.0, "the node's initialpose subscription")
    T_guess = transforms.from_xyz_rpy(0.3, 3.2, 0.0)  # 0.1 m and 0.2 m off the true (0.4, 3.0)
    publisher.publish(
        conversions.matrix_to_pose_with_covariance_stamped(T_guess, np.diag([0.25, 0.25, 0, 0, 0, 0.05]), 0, "map")
    )
    client.spin(0.5)
    # near the prior the start-up confirmation spans motion: 0.2 m here, three frames
    update, first = _first_fix(client, tracker, world, 3.0, tracker.latest.stamp_ns + 10**9, frames=3)
    assert (
        update.localized and _search_of(client, first) == "window" and _search_of(client, update.stamp_ns) == "window"
    )
    assert update.status.vertex_id == 3


@pytest.mark.parametrize("service", ["reset", "relocalize"])
def test_reset_and_relocalize_restart_with_a_whole_map_search(world, node, client, tracker, service):
    stamp = tracker.latest.stamp_ns + 10**9
    assert _send(client, tracker, world, 3.5, stamp).status.fixed
    assert _send(client, tracker, world, 3.6, stamp + 10**8).status.fixed
    assert _search_of(client, stamp + 10**8) == "window"  # tracking
    assert "next frame" in _call(client, service)
    update, first = _first_fix(client, tracker, world, 3.7, stamp + 2 * 10**8)
    assert update.status.state == "DEGRADED" and _search_of(client, first) == "global"  # a new first fix


def test_a_backwards_time_jump_resets_and_the_node_keeps_localizing(world, node, client, tracker):
    update, first = _first_fix(client, tracker, world, 1.5, tracker.latest.stamp_ns - 50 * 10**9)  # a looped bag
    assert update.status.state == "DEGRADED" and _search_of(client, first) == "global"
    assert "time jumped back" in node.log_text()


def _set_parameter(client, name: str, value) -> tuple[bool, str]:
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    caller = client.node.create_client(SetParameters, f"/{NODE}/set_parameters")
    assert caller.wait_for_service(timeout_sec=10.0)
    future = caller.call_async(SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()]))
    client.wait_for(future.done, 10.0, f"the answer to setting {name}")
    (result,) = future.result().results
    return result.successful, result.reason


def test_run_time_parameters_are_validated_and_take_effect_on_the_next_frame(world, node, client, tracker):
    assert _set_parameter(client, "map_path", "/elsewhere")[0] is False  # read-only: read once at start-up
    assert _set_parameter(client, "localizer.health.frames_to_lose", 0)[0] is False  # out of its range
    ok, reason = _set_parameter(client, "localizer.ransac.min_inliers", 20)  # above min_matches 12
    assert not ok and "min_matches" in reason, reason
    assert _set_parameter(client, "localizer.min_matches", 100_000) == (True, "")
    stamp = tracker.latest.stamp_ns + 10**9
    assert not _send(client, tracker, world, 2.5, stamp).status.fixed  # no candidate has 100000 matches
    assert _set_parameter(client, "localizer.min_matches", 12) == (True, "")
    _first_fix(client, tracker, world, 2.6, stamp + 10**8, frames=3)


def test_the_node_runs_the_message_filters_this_environment_has(node):
    from dlvf_ros.ros import compat

    implementation = "installed" if compat.HAVE_REAL_MESSAGE_FILTERS else "dlvf_ros.ros.compat"
    assert f"message_filters: {implementation}" in node.log_text(), node.log_text()


def test_a_best_effort_odometry_publisher_is_heard(client):
    from nav_msgs.msg import Odometry
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    best_effort = client.node.create_publisher(
        Odometry, "/odom", QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
    )
    client.wait_for(lambda: best_effort.get_subscription_count() > 0, 10.0, "the node's odom subscription to match")
    client.node.destroy_publisher(best_effort)


def test_odometry_can_come_from_tf(world, tmp_path):
    """odometry_source tf: an EKF's odom -> base_link on /tf instead of nav_msgs/Odometry (own namespace)."""
    from dlvf_ros.ros import conversions
    from dlvf_ros.ros.compat import TransformBroadcaster

    rig, map_path, repeat, _ = world
    process = start_ros_process(
        python_module_command("dlvf_ros.ros.localizer_node"),
        node_name=NODE,
        remap={"__ns": "/tf_odometry"},
        parameters={"map_path": str(map_path), "odometry_source": "tf"},
        log_dir=tmp_path,
    )
    with process:
        client = StereoClient(rig, name="dlvf_tf_odometry_client", namespace="tf_odometry")
        try:
            updates: list = []
            tracker_client.TrackerClient(on_update=updates.append).attach(client.node, namespace="/tf_odometry")
            broadcaster = TransformBroadcaster(client.node)
            client.wait_for(
                lambda: (
                    all(p.get_subscription_count() > 0 for k, p in client.pub.items() if k in ("left", "left_info"))
                    and broadcaster.pub_tf.get_subscription_count() > 0
                ),
                60.0,
                "the node's stereo and /tf subscriptions",
            )
            frames = repeat[3:5]  # the first pose after start-up is held back until the next confirms it
            for frame in frames:  # odometry of both frames on /tf first, so that no lookup races its arrival
                T_odom_vehicle = transforms.invert(T_MAP_ODOM) @ frame.T_world_vehicle
                for offset_ns in (-50_000_000, 50_000_000):
                    stamp = frame.stamp_ns + offset_ns
                    broadcaster.sendTransform(
                        conversions.matrix_to_transform_stamped(T_odom_vehicle, stamp, "odom", "base_link")
                    )
            client.spin(1.0)
            for frame in frames:
                client.publish_stereo(frame.stamp_ns, frame.left, frame.right)
                client.wait_for(
                    lambda s=frame.stamp_ns: updates and updates[-1].stamp_ns == s, 120.0, "a tracking update"
                )
            assert updates[-1].status.fixed, updates[-1].status.reason
        finally:
            client.close()
