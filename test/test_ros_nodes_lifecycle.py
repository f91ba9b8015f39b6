"""managed_localizer_node driven through its lifecycle services over real DDS, as a Nav2 lifecycle manager does:
configure, activate (localizes), deactivate (silent), cleanup, shutdown; a configure that fails stays unconfigured."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from dlvf_ros import tracker_client
from dlvf_ros.geometry import transforms
from dlvf_ros.replay.processes import python_module_command, start_ros_process

sys.path.insert(0, str(Path(__file__).parent))
from ros_nodes_support import StereoClient, build_wall_map, wall_rig, wall_run, wall_texture

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]

NODE = "localizer_node"
INPUT = "/stereo/left/image_rect"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    rig, texture = wall_rig(), wall_texture()
    teach = wall_run(texture, rig, np.arange(0.0, 4.01, 0.5), 0.0, 10**12, wall_distance_m=4.0)
    map_path = build_wall_map(tmp_path_factory.mktemp("map") / "wall_map", rig, teach)
    repeat = wall_run(texture, rig, np.array([1.2, 1.4, 1.6, 1.8]), 0.3, 2 * 10**12, wall_distance_m=4.0)
    return rig, map_path, repeat


class Lifecycle:
    """get_state / change_state of the node, called from the test client."""

    def __init__(self, client: StereoClient) -> None:
        from lifecycle_msgs.srv import ChangeState, GetState

        self.client = client
        self.get = client.node.create_client(GetState, f"/{NODE}/get_state")
        self.change = client.node.create_client(ChangeState, f"/{NODE}/change_state")
        assert self.get.wait_for_service(timeout_sec=30.0) and self.change.wait_for_service(timeout_sec=30.0)

    def _call(self, service, request):
        future = service.call_async(request)
        self.client.wait_for(future.done, 30.0, "a lifecycle service response")
        return future.result()

    def state(self) -> str:
        from lifecycle_msgs.srv import GetState

        return self._call(self.get, GetState.Request()).current_state.label

    def transition(self, name: str) -> bool:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        transition_id = getattr(Transition, f"TRANSITION_{name.upper()}")
        return self._call(self.change, ChangeState.Request(transition=Transition(id=transition_id))).success


def _subscribed(client: StereoClient) -> bool:
    return NODE in {i.node_name for i in client.node.get_subscriptions_info_by_topic(INPUT)}


def _send(client, frame) -> None:
    client.publish_odometry(frame.stamp_ns - 50_000_000, frame.T_world_vehicle)
    client.publish_odometry(frame.stamp_ns + 50_000_000, frame.T_world_vehicle)
    client.publish_stereo(frame.stamp_ns, frame.left, frame.right)


def test_a_lifecycle_manager_brings_the_node_up_and_down(world, tmp_path):
    rig, map_path, repeat = world
    process = start_ros_process(
        python_module_command("dlvf_ros.ros.managed_localizer_node"),
        node_name=NODE,
        parameters={"map_path": str(map_path)},
        log_dir=tmp_path,
    )
    with process:
        client = StereoClient(rig, name="dlvf_lifecycle_manager")
        try:
            updates: list = []
            tracker_client.TrackerClient(on_update=updates.append).attach(client.node)
            lifecycle = Lifecycle(client)
            assert lifecycle.state() == "unconfigured" and not _subscribed(client)
            assert lifecycle.transition("configure") and lifecycle.state() == "inactive"
            assert not _subscribed(client)  # configured, not yet listening
            assert lifecycle.transition("activate") and lifecycle.state() == "active"
            client.wait_for(lambda: _subscribed(client), 10.0, "the node's input subscriptions")
            client.wait_matched()
            _send(client, repeat[0])
            client.wait_for(lambda: updates, 30.0, "a tracking update while active")
            client.spin(0.2)
            _send(client, repeat[1])  # a localizer may hold its first pose back until the next frame confirms it
            client.wait_for(lambda: any(u.status.fixed for u in updates), 30.0, "a fix while active")
            fix = next(u for u in updates if u.status.fixed)
            np.testing.assert_allclose(transforms.yaw_of(fix.pose.T_vertex_vehicle), 0.0, atol=np.radians(3))
            assert lifecycle.transition("deactivate") and lifecycle.state() == "inactive"
            client.wait_for(lambda: not _subscribed(client), 10.0, "the input subscriptions to go")
            count = len(updates)
            _send(client, repeat[2])
            client.spin(1.5)
            assert len(updates) == count  # inactive: nothing processed, nothing published
            assert lifecycle.transition("activate")
            client.wait_matched()
            _send(client, repeat[3])
            client.wait_for(lambda: len(updates) > count, 30.0, "a tracking update after re-activation")
            assert lifecycle.transition("deactivate") and lifecycle.transition("cleanup")
            assert lifecycle.state() == "unconfigured"
            assert lifecycle.transition("configure") and lifecycle.state() == "inactive"  # configurable again
            assert lifecycle.transition("inactive_shutdown") and lifecycle.state() == "finalized"
        finally:
            client.close()
        assert process.stop(timeout_s=20.0) == 0, process.log_text()


def test_a_failed_configure_leaves_the_node_unconfigured_with_the_reason(world, tmp_path):
    rig, _, _ = world
    process = start_ros_process(
        python_module_command("dlvf_ros.ros.managed_localizer_node"),
        node_name=NODE,
        parameters={"map_path": str(tmp_path / "no_map")},
        log_dir=tmp_path,
    )
    with process:
        client = StereoClient(rig, name="dlvf_lifecycle_manager_2")
        try:
            lifecycle = Lifecycle(client)
            assert not lifecycle.transition("configure")
            assert lifecycle.state() == "unconfigured" and process.alive()
        finally:
            client.close()
    assert "no_map does not exist" in process.log_text(), process.log_text()
