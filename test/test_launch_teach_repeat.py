"""launch_testing: teach.launch.py and repeat.launch.py of the installed package, brought up together (teach in
namespace /teach, repeat in /repeat) through launch_ros' `Node(package="dlvf_ros")`, fed over DDS and checked.

The package is installed the way a robot has it (`ros_nodes_support.installed_prefix`: `pip install .` into a fresh
prefix with the ament index marker, share/ and lib/dlvf_ros/<executable>); the launch files come from that prefix's
share directory and AMENT_PREFIX_PATH names it, so launch_ros resolves package, executables and parameter files as
on a colcon install. Needs the real launch_testing (../shared/ros2-wheels, installed by `make venv`); skipped where
it is not installed. Runs under pytest (launch_testing's plugin) or `launch_test`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import unittest
from pathlib import Path

import pytest

pytest.importorskip("launch_testing")
pytest.importorskip("launch_ros")

sys.path.insert(0, str(Path(__file__).parent))
import launch.launch_description_sources
import launch_testing
import launch_testing.actions
import launch_testing.asserts
import numpy as np
from ros_nodes_support import (
    StereoClient,
    build_wall_map,
    installed_prefix,
    wall_rig,
    wall_run,
    wall_texture,
)

import launch
from dlvf_ros import tracker_client
from dlvf_ros.geometry import transforms

WORK = Path(tempfile.mkdtemp(prefix="dlvf-launch-test-"))
TEACH_MAP = WORK / "taught_map"
REPEAT_MAP = WORK / "repeat_map"
TEACH_PARAMS = WORK / "teach_params.yaml"
TEXTURE = wall_texture()
RIG = wall_rig()
PREVIOUS_AMENT_PREFIX_PATH = os.environ.get("AMENT_PREFIX_PATH")


def _include(share: Path, launch_file: str, arguments: dict[str, str]):
    source = launch.launch_description_sources.PythonLaunchDescriptionSource(str(share / "launch" / launch_file))
    return launch.actions.IncludeLaunchDescription(source, launch_arguments=list(arguments.items()))


@pytest.mark.launch_test
def generate_test_description():
    prefix = installed_prefix()
    os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(p for p in (str(prefix), PREVIOUS_AMENT_PREFIX_PATH) if p)
    share = prefix / "share" / "dlvf_ros"
    teach = wall_run(TEXTURE, RIG, np.arange(0.0, 4.01, 0.25), 0.0, 10**12, wall_distance_m=4.0)
    build_wall_map(REPEAT_MAP, RIG, teach)
    TEACH_PARAMS.write_text(
        "/**/teach_node:\n  ros__parameters:\n    backend: orb\n    odometry_wait_s: 10.0\n"
        "    teach:\n      keyframe_distance_m: 1.0\n"
    )
    return launch.LaunchDescription(
        [
            # SIGINT -> SIGTERM escalation after 60 s, not 5 s: on a loaded machine teach_node may need more to
            # finish its frame and close the map, and a SIGTERM would fail the clean-exit check below
            launch.actions.SetLaunchConfiguration("sigterm_timeout", "60"),
            _include(
                share,
                "teach.launch.py",
                {"map": str(TEACH_MAP), "namespace": "teach", "params_file": str(TEACH_PARAMS)},
            ),
            _include(share, "repeat.launch.py", {"map": str(REPEAT_MAP), "namespace": "repeat"}),
            launch_testing.actions.ReadyToTest(),
        ]
    )


def _send(client: StereoClient, frame) -> None:
    for offset_ns in (-50_000_000, 50_000_000):  # odometry and ground truth around the image stamp
        client.publish_odometry(frame.stamp_ns + offset_ns, frame.T_world_vehicle)
        client.publish_ground_truth(frame.stamp_ns + offset_ns, frame.T_world_vehicle)
    client.publish_stereo(frame.stamp_ns, frame.left, frame.right)


class TestTeachAndRepeatLaunchFiles(unittest.TestCase):
    def test_teach_launch_builds_a_map_from_its_namespaced_inputs(self, proc_output):
        proc_output.assertWaitFor("teaching into", timeout=90, stream="stderr")
        client = StereoClient(RIG, name="dlvf_launch_teach_client", namespace="teach")
        try:
            client.publish_static_camera()
            client.wait_matched(timeout_s=30.0)
            frames = wall_run(TEXTURE, RIG, np.arange(0.0, 3.01, 0.5), 0.0, 5 * 10**12, wall_distance_m=4.0)
            # odometry streams before the first image, as on a robot: best-effort samples sent before the node's
            # reader has matched this writer are lost, and the first frame would be skipped without odometry
            for i in range(20):
                stamp_ns = frames[0].stamp_ns - 2 * 10**9 + i * 10**8
                client.publish_odometry(stamp_ns, frames[0].T_world_vehicle)
                client.publish_ground_truth(stamp_ns, frames[0].T_world_vehicle)
                client.spin(0.05)
            for k, frame in enumerate(frames):  # lock-step: a busy node would drop a queued frame as stale
                _send(client, frame)
                client.wait_for(lambda k=k: len(client.frame_results) > k, 60.0, f"teach_node's result of frame {k}")
            client.wait_for(
                lambda: client.paths and len(client.paths[-1].poses) >= 3,
                60.0,
                "3 keyframes on /teach/localization/path",
            )
            ys = [p.pose.position.y for p in client.paths[-1].poses]
            self.assertEqual([r.message for r in client.frame_results if "skipped" in r.message], [])
            np.testing.assert_allclose(ys[:3], [0.0, 1.0, 2.0], atol=1e-6)  # a keyframe per metre of odometry

            # a result per frame the node is done with: none left queued when launch stops it
            client.wait_for(lambda: len(client.frame_results) >= len(frames), 60.0, "teach_node to handle every frame")
        finally:
            client.close()

    def test_repeat_launch_localizes_and_feeds_a_tracker(self, proc_output):
        proc_output.assertWaitFor("localizing against", timeout=90, stream="stderr")
        client = StereoClient(RIG, name="dlvf_launch_repeat_client", namespace="repeat")
        try:
            updates: list = []
            tracker_client.TrackerClient(on_update=updates.append).attach(client.node, namespace="/repeat")
            client.wait_matched(timeout_s=30.0)
            client.spin(1.0)
            frames = wall_run(TEXTURE, RIG, np.array([1.9, 2.1]), 0.3, 6 * 10**12, wall_distance_m=4.0)
            for frame in frames:  # a localizer may hold its first pose back until the next frame confirms it
                _send(client, frame)
                stamp = frame.stamp_ns
                client.wait_for(lambda s=stamp: updates and updates[-1].stamp_ns == s, 60.0, "a tracking update")
            update = updates[-1]
            self.assertTrue(update.status.fixed, update.status.reason)
            self.assertEqual(update.pose.vertex_id, 2)  # keyframes every metre: (0.3, 2.1) is nearest the third
            T_true = transforms.invert(transforms.from_xyz_rpy(0.0, 2.0, 0.0)) @ frame.T_world_vehicle
            np.testing.assert_allclose(update.pose.T_vertex_vehicle[:2, 3], T_true[:2, 3], atol=0.3)
            client.wait_for(lambda: client.paths, 10.0, "the taught path on /repeat/localization/path")
        finally:
            client.close()


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_both_nodes_exit_cleanly(self, proc_info):
        if PREVIOUS_AMENT_PREFIX_PATH is None:  # the installed prefix was named for this module only
            os.environ.pop("AMENT_PREFIX_PATH", None)
        else:
            os.environ["AMENT_PREFIX_PATH"] = PREVIOUS_AMENT_PREFIX_PATH
        names = {info.action.name for info in proc_info}
        self.assertTrue(any("teach_node" in n for n in names) and any("localizer_node" in n for n in names), names)
        launch_testing.asserts.assertExitCodes(proc_info)
