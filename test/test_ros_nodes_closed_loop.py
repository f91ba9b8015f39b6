"""The closed loop through real nodes over DDS, lock-step: sim_node drives a short simulated trail while teach_node
builds the map, then path_tracker_node drives the repeat from an offset start by localizer_node's output alone; and
with the localizer's output cut for a stretch, the robot stops within the allowed distance, stands still while it
has no fixes, and resumes and finishes when they return.

World: seed 100, the held-out (demo) style, 6 m of path, 320x240 at 5 Hz, learned features (the shipped model); a
smaller terrain around the trail than the default so that each pass builds its world in seconds.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dlvf_ros.config import save_config
from dlvf_ros.evaluation import closed_loop
from dlvf_ros.replay.closed_loop_cli import ClosedLoopSettings, repeat, score_repeat, teach
from dlvf_ros.sim.config import SimConfig

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(300)]

PATH_LENGTH_M = 6.0
LOST_DISTANCE_M = 0.6
CUT_FROM_M = 2.0  # the relay drops the localizer's output from this ground-truth distance on ...
CUT_FOR_S = 3.0  # ... for this much sim time


@pytest.fixture(scope="module")
def taught(tmp_path_factory):
    out = tmp_path_factory.mktemp("closed_loop")
    sim_config = SimConfig()
    sim_config.world = dataclasses.replace(
        sim_config.world, path_lead_in_m=5.0, path_lead_out_m=15.0, margin_m=25.0, texture_size=256
    )
    save_config(sim_config, out / "sim.yaml")
    settings = ClosedLoopSettings(
        out=out,
        path_length_m=PATH_LENGTH_M,
        size=(320, 240),
        lightings=["noon"],
        max_sim_time_s=60.0,
        pass_timeout_s=240.0,
        sim_parameters={"sim_config": str(out / "sim.yaml")},
    )
    return settings, teach(settings)


def test_the_tracker_drives_the_taught_path_from_an_offset_start(taught):
    settings, map_path = taught
    run_dir = settings.out / "runs" / "noon"
    wall_s = repeat(settings, map_path, run_dir, "noon", 1)
    result, trace = score_repeat(map_path, run_dir, "noon", wall_s)
    assert result["finished"] and result["completed_fraction"] > 0.95, result
    assert abs(trace.lateral_m[0] - settings.initial_lateral_m) < 0.05  # it started offset
    assert result["lateral_m"]["max_abs"] < settings.initial_lateral_m + 0.1, result["lateral_m"]
    assert result["lateral_settled_m"]["max_abs"] < 0.2, result["lateral_settled_m"]
    assert abs(trace.lateral_m[-1]) < 0.15 and result["heading_settled_deg"]["rmse"] < 5.0, result
    assert result["safety_stops"] == 0 and result["stops"] == 0, result
    assert result["localization"]["wrong_fix_rate"] < 0.25, result["localization"]


class Relay:
    """Forwards the localizer's tracker output to relay/localization/*, except for `CUT_FOR_S` of sim time from the
    first update after the robot drove `CUT_FROM_M` (ground truth)."""

    def __init__(self, context) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped
        from nav_msgs.msg import Odometry
        from rclpy.node import Node

        from dlvf_ros import tracker_client
        from dlvf_ros.ros import conversions

        self.node = Node("closed_loop_relay", context=context)
        self._stamp_ns = conversions.stamp_to_ns
        self.start_xy = None
        self.cut_from_ns = None
        self.last_forwarded_ns = None  # the last update before the cut
        self.forwarded_after_cut = 0
        depth = tracker_client.QUEUE_DEPTH
        for message_type, topic in (
            (Odometry, tracker_client.VERTEX_ODOMETRY_TOPIC),
            (DiagnosticArray, tracker_client.TRACKING_STATUS_TOPIC),
        ):
            publisher = self.node.create_publisher(message_type, "relay/" + topic, depth)
            self.node.create_subscription(message_type, topic, self._forwarder(publisher), depth)
        self.node.create_subscription(PoseStamped, "/ground_truth/pose", self._on_ground_truth, 50)
        self.driven_m = 0.0

    def _on_ground_truth(self, msg) -> None:
        xy = np.array([msg.pose.position.x, msg.pose.position.y])
        if self.start_xy is None:
            self.start_xy = xy
        self.driven_m = float(np.linalg.norm(xy - self.start_xy))

    def _forwarder(self, publisher):
        def forward(msg) -> None:
            stamp_ns = self._stamp_ns(msg.header.stamp)
            if self.cut_from_ns is None and self.driven_m >= CUT_FROM_M:
                self.cut_from_ns = stamp_ns
            cut = self.cut_from_ns is not None and self.cut_from_ns <= stamp_ns < self.cut_from_ns + CUT_FOR_S * 1e9
            if cut:
                return
            if self.cut_from_ns is None:
                self.last_forwarded_ns = stamp_ns
            else:
                self.forwarded_after_cut += 1
            publisher.publish(msg)

        return forward


def test_without_the_localizer_output_it_stops_within_the_distance_and_resumes(taught):
    settings, map_path = taught
    settings = dataclasses.replace(
        settings,
        tracker_parameters={
            "localizer_namespace": "relay",
            "tracker.lost_distance_m": LOST_DISTANCE_M,
            "tracker.lost_time_s": 30.0,
        },
    )
    run_dir = settings.out / "runs" / "cut"
    relays = []

    def make_relay(context):
        relays.append(Relay(context))
        return [relays[0].node]

    wall_s = repeat(settings, map_path, run_dir, "noon", 2, extra_nodes=make_relay)
    (relay,) = relays
    assert relay.cut_from_ns is not None and relay.forwarded_after_cut > 0, "the cut never began or never ended"
    stamps, T_world_vehicle = closed_loop.read_ground_truth(run_dir)
    xy = T_world_vehicle[:, :2, 3]
    modes_ns, modes = closed_loop.read_tracker_modes(run_dir)
    cut_end_ns = relay.cut_from_ns + int(CUT_FOR_S * 1e9)

    # from the last update the tracker got before the cut, the robot drove at most lost_distance_m (ground truth) ...
    at_last_fix = xy[np.searchsorted(stamps, relay.last_forwarded_ns)]
    during = (stamps >= relay.last_forwarded_ns) & (stamps < cut_end_ns)
    travelled = np.linalg.norm(xy[during] - at_last_fix, axis=1).max()
    assert 0.2 < travelled <= LOST_DISTANCE_M, travelled
    # ... and stood still while the tracker said it stopped
    stopped = modes_ns[(modes == "stopped") & (modes_ns < cut_end_ns)]
    assert len(stopped) > 10, np.unique(modes, return_counts=True)
    standing = (stamps >= stopped[0] + 500_000_000) & (stamps <= stopped[-1])
    assert standing.sum() > 10 and np.ptp(xy[standing], axis=0).max() < 0.01
    # the fixes came back: it resumed and finished the path
    result, _ = score_repeat(map_path, run_dir, "cut", wall_s)
    assert result["finished"] and result["completed_fraction"] > 0.95, result
    assert result["safety_stops"] == 1 and result["safety_stopped_s"] > 1.0, result
    assert "tracking" in set(modes[modes_ns > cut_end_ns])
