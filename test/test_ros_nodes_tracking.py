"""localizer_node as a path tracker sees it, over real DDS: the vertex-relative output on a replayed bag (read with
the ROS-free `dlvf_ros.tracker_client`).

World: the textured wall of test/ros_nodes_support.py. The map is taught along the wall (vehicle +y, a keyframe per
metre, odometry = ground truth, so the map frame is the world frame); the repeat run is 0.4 m closer to the wall,
darker, with its odometry frame offset from the map.
"""

from __future__ import annotations

import sys
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
from ros_nodes_support import StereoClient, build_wall_map, wall_rig, wall_run, wall_texture
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


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    rig, texture = wall_rig(), wall_texture()
    teach = wall_run(texture, rig, np.arange(0.0, 6.01, 0.25), 0.0, TEACH_START_NS, wall_distance_m=4.0)
    map_path = build_wall_map(tmp_path_factory.mktemp("map") / "wall_map", rig, teach)
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
        parameters={"map_path": str(map_path), "diagnostics_period_s": 0.25},
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


def test_a_tracker_reads_vertex_relative_output_from_a_replayed_bag(world, node, client, tmp_path):
    _, map_path, repeat, bag = world
    updates: list[tracker_client.TrackingUpdate] = []
    tracker = tracker_client.TrackerClient(on_update=updates.append)
    tracker.attach(client.node)
    client.spin(1.0)  # discovery of the tracker subscriptions
    player = start_ros_process(
        python_module_command("dlvf_ros.replay.bag_player", str(bag), "--no-clock", "--wait-for", BAG.left_image),
        remap={bag_topic: "/" + node_topic for node_topic, bag_topic in bag_remappings().items()},
        log_dir=tmp_path,
    )
    with player:
        assert player.wait(timeout_s=120.0) == 0, player.log_text()
    last_stamp = repeat[-1].stamp_ns
    client.wait_for(lambda: tracker.latest and tracker.latest.stamp_ns == last_stamp, 30.0, "the last frame's update")

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
