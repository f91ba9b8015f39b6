"""The vehicle relative to the taught path (nearest vertex, vertex-relative pose, progress, cross-track, heading error),
and the path-tracker messages: built by the node's output module, read back by the ROS-free client."""

from __future__ import annotations

import numpy as np
import pytest

from dlvf_ros import tracker_client as tc
from dlvf_ros.geometry import transforms
from dlvf_ros.localization.health import HealthState
from dlvf_ros.localization.path_tracking import TaughtPath, rotate_covariance, wrap_angle


def _L_path() -> TaughtPath:
    """Vertices every 1 m along +x to (3, 0), then every 1 m along +y to (3, 3); each vertex faces its next one."""
    points = [(0, 0, 0.0), (1, 0, 0.0), (2, 0, 0.0), (3, 0, np.pi / 2), (3, 1, np.pi / 2), (3, 2, np.pi / 2)]
    points.append((3, 3, np.pi / 2))
    return TaughtPath(np.stack([transforms.from_xyz_rpy(x, y, 0.0, yaw=yaw) for x, y, yaw in points]))


def test_locate_gives_nearest_vertex_progress_signed_cross_track_and_heading_error():
    path = _L_path()
    assert path.length_m == pytest.approx(6.0)
    where = path.locate(transforms.from_xyz_rpy(1.3, 0.2, 0.0, yaw=0.1))
    assert where.vertex_id == 1
    assert where.progress_m == pytest.approx(1.3) and where.cross_track_m == pytest.approx(0.2)  # left: +
    assert where.heading_error_rad == pytest.approx(0.1)
    np.testing.assert_allclose(where.T_vertex_vehicle, transforms.from_xyz_rpy(0.3, 0.2, 0.0, yaw=0.1), atol=1e-12)
    right_of_second_leg = path.locate(transforms.from_xyz_rpy(3.25, 1.8, 0.0, yaw=np.pi / 2 - 0.2))
    assert right_of_second_leg.vertex_id == 5
    assert right_of_second_leg.progress_m == pytest.approx(4.8)
    assert right_of_second_leg.cross_track_m == pytest.approx(-0.25)
    assert right_of_second_leg.heading_error_rad == pytest.approx(-0.2)


def test_beyond_the_ends_progress_extends_the_end_segments():
    path = _L_path()
    before = path.locate(transforms.from_xyz_rpy(-0.5, -0.1, 0.0))
    assert (before.vertex_id, before.progress_m, before.cross_track_m) == (0, pytest.approx(-0.5), pytest.approx(-0.1))
    after = path.locate(transforms.from_xyz_rpy(3.1, 4.0, 0.0, yaw=np.pi))
    assert after.vertex_id == 6 and after.progress_m == pytest.approx(7.0)
    assert after.cross_track_m == pytest.approx(-0.1) and after.heading_error_rad == pytest.approx(np.pi / 2)


def test_a_hint_keeps_a_path_that_passes_one_place_twice_apart():
    # out along +x for 10 m, then back 0.4 m to the left: both legs pass near (5, 0.2)
    out_leg = [transforms.from_xyz_rpy(x, 0.0, 0.0) for x in range(11)]
    back_leg = [transforms.from_xyz_rpy(x, 0.4, 0.0, yaw=np.pi) for x in range(10, -1, -1)]
    path = TaughtPath(np.stack(out_leg + back_leg), hint_window_m=3.0)
    T = transforms.from_xyz_rpy(5.0, 0.21, 0.0, yaw=np.pi)
    assert path.locate(T).vertex_id == 16  # the nearer leg (0.19 m away) without a hint
    hinted = path.locate(T, near_vertex=5)
    assert hinted.vertex_id == 5 and hinted.cross_track_m == pytest.approx(0.21)
    assert abs(hinted.heading_error_rad) == pytest.approx(np.pi)


def test_one_vertex_path_and_covariance_in_the_vertex_frame():
    T_map_vertex = transforms.from_xyz_rpy(2.0, 1.0, 0.0, yaw=np.pi / 2)
    path = TaughtPath(T_map_vertex[None])
    covariance = np.diag([0.04, 0.01, 0.0, 0.0, 0.0, 0.09])
    where = path.locate(transforms.from_xyz_rpy(2.0, 1.5, 0.0, yaw=np.pi / 2), covariance)
    assert where.vertex_id == 0 and where.progress_m == pytest.approx(0.5) and where.cross_track_m == pytest.approx(0)
    # map x (0.04) is the vertex's -y, map y (0.01) its x: the variances swap
    np.testing.assert_allclose(np.diag(where.covariance), [0.01, 0.04, 0.0, 0.0, 0.0, 0.09], atol=1e-12)
    np.testing.assert_allclose(rotate_covariance(covariance, np.eye(3)), covariance)
    with pytest.raises(ValueError, match="K >= 1"):
        TaughtPath(np.zeros((0, 4, 4)))


def test_wrap_angle():
    assert wrap_angle(3 * np.pi / 2) == pytest.approx(-np.pi / 2) and wrap_angle(-np.pi) == pytest.approx(np.pi)


def messages(*frame):
    """The tracker output of one frame (stamp, state, reason, fixed, inliers, position, velocity) from `localizer_node`
    with vehicle frame "base"."""
    from dlvf_ros.ros.tracker_output import TrackingFrame, tracking_messages

    return tracking_messages(TrackingFrame(*frame), "base", "loc")


def test_tracker_messages_round_trip_through_the_client():
    path = _L_path()
    covariance = np.diag([0.01, 0.02, 0.03, 0.001, 0.002, 0.003])
    where = path.locate(transforms.from_xyz_rpy(3.1, 2.2, 0.0, yaw=np.pi / 2 + 0.05), covariance)
    velocity = np.array([0.5, 0.0, 0.0, 0.0, 0.0, 0.1])
    stamp = 12_345_678_901_234
    odometry, status = messages(stamp, HealthState.DEGRADED, "why", True, 42, where, velocity)
    assert odometry.header.frame_id == "teach_vertex_5" and odometry.child_frame_id == "base"
    assert status.status[0].level == status.status[0].WARN
    updates = []
    client = tc.TrackerClient(on_update=updates.append)
    assert client.add_tracking_status(status) is None  # waits for its pose
    update = client.add_vertex_odometry(odometry)
    assert updates == [update] and client.latest is update
    s, p = update.status, update.pose
    assert (s.stamp_ns, s.localized, s.state, s.reason) == (stamp, True, "DEGRADED", "why")
    assert (s.fixed, s.inliers) == (True, 42)
    assert (s.vertex_id, s.progress_m, s.cross_track_m) == (5, where.progress_m, where.cross_track_m)
    assert s.heading_error_rad == where.heading_error_rad  # exact: repr round-trips
    assert p.vertex_id == 5 and p.stamp_ns == stamp
    np.testing.assert_allclose(p.T_vertex_vehicle, where.T_vertex_vehicle, atol=1e-12)
    np.testing.assert_allclose(p.covariance, where.covariance, atol=1e-15)
    np.testing.assert_allclose(p.velocity, velocity)

    # a frame without a pose is complete on its own, and is not localized; an older half arriving late is ignored
    odometry_late, _ = messages(stamp - 1, HealthState.LOCALIZED, "", True, 50, where, None)
    lost_odometry, lost = messages(stamp + 10, HealthState.LOST, "lost", False, 0, None, None)
    assert lost_odometry is None
    update = client.add_tracking_status(lost)
    assert update.pose is None and not update.localized and update.status.progress_m is None
    assert client.add_vertex_odometry(odometry_late) is None and client.latest is update
    # a LOST frame with a dead-reckoned pose is not localized either
    _, lost_with_pose = messages(stamp + 20, HealthState.LOST, "", False, 0, where, None)
    assert tc.parse_tracking_status(lost_with_pose).localized is False


def test_client_restarts_when_time_goes_backwards_and_names_bad_frames():
    client = tc.TrackerClient(backwards_jump_s=1.0)
    for stamp in (100 * 10**9, 5 * 10**9):  # the bag looped: 95 s back
        _, status = messages(stamp, HealthState.LOST, "", False, 0, None, None)
        assert client.add_tracking_status(status) is not None
    assert client.latest.stamp_ns == 5 * 10**9
    assert tc.vertex_id_of_frame("/teach_vertex_12") == 12
    for bad in ("map", "teach_vertex_", "teach_vertex_x"):
        with pytest.raises(ValueError, match="does not name a teach vertex"):
            tc.vertex_id_of_frame(bad)
