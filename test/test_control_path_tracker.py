"""Path following on the taught path: converges from an offset start and stops at the end, holds a curve without
cutting it, slows down in curves, does not move before a good fix, stops within the allowed distance without good
fixes and resumes when they return."""

import numpy as np
import pytest

from dlvf_ros.control.path_tracker import (
    PathTracker,
    PathTrackerConfig,
    TrackerMode,
    path_curvatures,
    path_headings,
)
from dlvf_ros.geometry import transforms
from dlvf_ros.localization.covariance import planar_position_std_m
from dlvf_ros.localization.path_tracking import TaughtPath

DT_NS = 50_000_000  # odometry at 20 Hz
FRAME_EVERY = 4  # localizer updates at 5 Hz
GOOD_COVARIANCE = np.diag([0.01, 0.01, 0.01, 1e-4, 1e-4, 1e-4])


def straight_then_arc(radius_m: float = 3.0, turn_rad: float = np.pi / 2) -> TaughtPath:
    """8 m straight along x, then an arc to the left of `radius_m` turning `turn_rad`, vertices every 0.5 m."""
    poses = [transforms.from_xyz_rpy(x, 0.0, 0.0, yaw=0.0) for x in np.arange(0.0, 8.0, 0.5)]
    for angle in np.arange(0.0, turn_rad + 1e-9, 0.5 / radius_m):
        x, y = 8.0 + radius_m * np.sin(angle), radius_m * (1 - np.cos(angle))
        poses.append(transforms.from_xyz_rpy(x, y, 0.0, yaw=angle))
    return TaughtPath(np.stack(poses))


class Unicycle:
    """A perfect kinematic vehicle in the map frame; its odometry frame is the map shifted and turned."""

    def __init__(self, x: float, y: float, yaw: float) -> None:
        self.x, self.y, self.yaw = x, y, yaw
        self.T_map_odom = transforms.from_xyz_rpy(5.0, -2.0, 0.0, yaw=0.7)
        self.distance_m = 0.0

    @property
    def T_map_vehicle(self) -> np.ndarray:
        return transforms.from_xyz_rpy(self.x, self.y, 0.0, yaw=self.yaw)

    @property
    def T_odom_vehicle(self) -> np.ndarray:
        return transforms.invert(self.T_map_odom) @ self.T_map_vehicle

    def drive(self, linear: float, angular: float, dt_s: float) -> None:
        self.x += linear * np.cos(self.yaw) * dt_s
        self.y += linear * np.sin(self.yaw) * dt_s
        self.yaw += angular * dt_s
        self.distance_m += abs(linear) * dt_s


def run(tracker, vehicle, steps, fix=lambda k: True, covariance=GOOD_COVARIANCE, start=0):
    """Closed loop for `steps` odometry periods; `fix(k)`: whether frame k gets a localizer update. Returns the
    commands and the vehicle's (x, y) after each."""
    commands, positions = [], []
    for k in range(start, start + steps):
        stamp = k * DT_NS
        command = tracker.command(stamp, vehicle.T_odom_vehicle)
        if k % FRAME_EVERY == 0 and fix(k):
            tracker.localize(stamp, True, vehicle.T_map_vehicle, covariance)
        vehicle.drive(command.linear_mps, command.angular_rad_s, DT_NS * 1e-9)
        commands.append(command)
        positions.append((vehicle.x, vehicle.y))
    return commands, np.array(positions)


def test_converges_from_an_offset_start_and_stops_at_the_end():
    path = straight_then_arc(radius_m=6.0)
    tracker = PathTracker(path, PathTrackerConfig())
    vehicle = Unicycle(0.0, 0.3, np.deg2rad(5.0))
    commands, positions = run(tracker, vehicle, 1200)
    assert commands[-1].mode == TrackerMode.FINISHED and commands[-1].linear_mps == 0.0
    end = path.T_map_vertex[-1, :2, 3]
    assert np.linalg.norm(positions[-1] - end) < 0.15
    cross = np.array([c.cross_track_m for c in commands if c.cross_track_m is not None])
    progress = np.array([c.progress_m for c in commands if c.progress_m is not None])
    assert abs(cross[0] - 0.3) < 0.01
    assert np.max(np.abs(cross[progress > 5.0])) < 0.05  # converged within 5 m
    assert np.max(np.abs(cross[progress > 10.0])) < 0.02  # and it stays so through the curve
    moving = [c for c in commands if c.mode == TrackerMode.TRACKING]
    assert max(c.linear_mps for c in moving) == pytest.approx(PathTrackerConfig().max_speed_mps)


def test_the_offset_start_costs_little_heading_error():
    """0.3 m left and 5 deg away, on 25 m of straight path: whole-run lateral and heading RMS (the default pure
    pursuit this tracker replaced, lookahead 0.6 m + 0.75 s, spent 2.4 deg RMS heading error on it)."""
    path = TaughtPath(np.stack([transforms.from_xyz_rpy(x, 0.0, 0.0, yaw=0.0) for x in np.arange(0.0, 25.01, 1.0)]))
    commands, _ = run(PathTracker(path, PathTrackerConfig()), Unicycle(0.0, 0.3, np.deg2rad(5.0)), 1200)
    assert commands[-1].mode == TrackerMode.FINISHED
    on_path = [c for c in commands if c.cross_track_m is not None]
    lateral = np.array([c.cross_track_m for c in on_path])
    heading = np.rad2deg([c.heading_error_rad for c in on_path])
    assert np.sqrt(np.mean(lateral**2)) < 0.085 and np.sqrt(np.mean(heading**2)) < 1.85


def test_from_a_standstill_heading_away_it_turns_in_place_before_driving_off():
    """0.3 m left, heading 5 deg further left: it turns in place (mode aligning) until it heads within
    `align_tolerance_deg` of its course onto the path, then drives; it never gets further off than it started."""
    path = TaughtPath(np.stack([transforms.from_xyz_rpy(x, 0.0, 0.0, yaw=0.0) for x in np.arange(0.0, 10.01, 1.0)]))
    config = PathTrackerConfig()
    vehicle = Unicycle(0.0, 0.3, np.deg2rad(5.0))
    commands, positions = run(PathTracker(path, config), vehicle, 200)
    aligning = [c for c in commands if c.mode == TrackerMode.ALIGNING]
    assert aligning and all(c.linear_mps == 0.0 and c.angular_rad_s < 0.0 for c in aligning)
    first_drive = next(c for c in commands if c.linear_mps > 0.0)
    assert first_drive.mode == TrackerMode.TRACKING and first_drive.heading_error_rad < 0.0  # towards the path
    assert np.max(positions[:, 1]) <= 0.3 + 1e-9

    aligned = Unicycle(0.0, 0.3, -np.arctan(0.3 / config.approach_m))  # already on its course: drives off at once
    commands, _ = run(PathTracker(path, config), aligned, 10)
    assert not any(c.mode == TrackerMode.ALIGNING for c in commands) and commands[-1].linear_mps > 0.0


def test_the_speed_drops_in_the_curve():
    path = straight_then_arc(radius_m=1.5, turn_rad=np.pi)  # 4.7 m of arc
    config = PathTrackerConfig()
    curvature = path_curvatures(path, config.curvature_window_m)
    assert curvature[:10].max() < 1e-9 and curvature[-5] == pytest.approx(1 / 1.5, rel=0.1)
    tracker = PathTracker(path, config)
    commands, _ = run(tracker, Unicycle(0.0, 0.0, 0.0), 1500)
    in_curve = [c.linear_mps for c in commands if c.progress_m is not None and 9.5 < c.progress_m < 11.5]
    straight = [c.linear_mps for c in commands if c.progress_m is not None and 3.0 < c.progress_m < 4.0]
    expected = np.sqrt(config.max_lateral_acceleration_mps2 * 1.5)
    assert min(straight) == pytest.approx(config.max_speed_mps)
    assert max(in_curve) < expected + 0.05 and min(in_curve) >= config.min_speed_mps - 1e-9
    assert commands[-1].mode == TrackerMode.FINISHED


def test_before_a_good_fix_it_waits_then_creeps_straight_ahead_at_most_the_start_creep():
    config = PathTrackerConfig(start_wait_s=1.0, start_creep_m=0.6, start_creep_speed_mps=0.15)
    tracker = PathTracker(straight_then_arc(), config)
    vehicle = Unicycle(0.0, 0.0, 0.0)
    commands, _ = run(tracker, vehicle, 200, fix=lambda k: False)  # 10 s at 20 Hz: long enough to creep 0.6 m
    assert all(c.mode == TrackerMode.WAITING and c.angular_rad_s == 0.0 for c in commands)
    assert all(c.linear_mps == 0.0 for c in commands[:20]) and commands[20].linear_mps > 0.0  # 1 s at 20 Hz
    assert max(c.linear_mps for c in commands) <= config.start_creep_speed_mps + 1e-9
    assert 0.55 <= vehicle.distance_m <= 0.61 and commands[-1].linear_mps < 0.01  # (one 50 ms step past it at most)
    uncertain = np.diag([1.0, 1.0, 0.01, 1e-4, 1e-4, 1e-4])  # 1 m standard deviation: not good
    crept_m = vehicle.distance_m
    commands, _ = run(tracker, vehicle, 20, covariance=uncertain, start=200)
    assert all(c.linear_mps < 0.01 for c in commands) and vehicle.distance_m - crept_m < 0.01

    still = PathTracker(straight_then_arc(), PathTrackerConfig(start_creep_m=0.0))
    vehicle = Unicycle(0.0, 0.0, 0.0)
    commands, _ = run(still, vehicle, 20, fix=lambda k: False)
    assert all(c.linear_mps == 0.0 and c.angular_rad_s == 0.0 for c in commands) and vehicle.distance_m == 0.0


@pytest.mark.parametrize("lost_distance_m", [0.5, 1.0])
def test_without_fixes_it_stops_within_the_distance_stands_still_and_resumes(lost_distance_m):
    config = PathTrackerConfig(lost_distance_m=lost_distance_m, lost_time_s=100.0)
    tracker = PathTracker(straight_then_arc(), config)
    vehicle = Unicycle(0.0, 0.0, 0.0)
    run(tracker, vehicle, 100)  # cruising
    assert tracker.mode == TrackerMode.TRACKING
    last_fix = vehicle.distance_m
    commands, _ = run(tracker, vehicle, 200, fix=lambda k: False, start=100)  # the localizer falls silent
    assert commands[-1].mode == TrackerMode.STOPPED and commands[-1].linear_mps == 0.0
    assert vehicle.distance_m - last_fix <= lost_distance_m
    assert vehicle.distance_m - last_fix > 0.5 * lost_distance_m  # it used the allowance
    stopped = [k for k, c in enumerate(commands) if c.mode == TrackerMode.STOPPED]
    assert all(c.linear_mps == 0.0 and c.angular_rad_s == 0.0 for c in commands[stopped[0] :])
    commands, _ = run(tracker, vehicle, 40, start=300)  # fixes return
    assert commands[-1].mode == TrackerMode.TRACKING and commands[-1].linear_mps > 0.3


def test_a_lost_localizer_stops_it_after_the_time_allowance_even_when_slow():
    config = PathTrackerConfig(lost_distance_m=100.0, lost_time_s=1.0)
    tracker = PathTracker(straight_then_arc(), config)
    vehicle = Unicycle(0.0, 0.0, 0.0)
    run(tracker, vehicle, 40)
    commands, _ = run(tracker, vehicle, 40, fix=lambda k: False, start=40)
    modes = [c.mode for c in commands]
    assert modes[0] == TrackerMode.TRACKING and TrackerMode.DEAD_RECKONING in modes
    assert modes[-1] == TrackerMode.STOPPED and commands[-1].linear_mps == 0.0


def test_it_holds_a_curve_without_cutting_it():
    path = straight_then_arc(radius_m=4.0, turn_rad=np.pi)
    config = PathTrackerConfig(max_lateral_acceleration_mps2=1.0)  # no slowing down: the arc at full speed
    commands, _ = run(PathTracker(path, config), Unicycle(0.0, 0.0, 0.0), 1000)
    in_arc = np.array([c.cross_track_m for c in commands if c.progress_m is not None and 10.0 < c.progress_m < 19.0])
    # pure pursuit with a 1.2 m lookahead would run about lookahead^2 / (2 radius) = 0.18 m inside the arc
    assert len(in_arc) > 50 and np.max(np.abs(in_arc)) < 0.03


def test_geometry_helpers():
    path = straight_then_arc()
    middle, yaw = path_headings(path)
    np.testing.assert_allclose(middle[:3], [0.25, 0.75, 1.25])
    np.testing.assert_allclose(yaw[:15], 0.0, atol=1e-12)
    assert yaw[-1] == pytest.approx(np.pi / 2, abs=0.2) and np.all(np.diff(yaw) >= -1e-12)
    curvature = path_curvatures(path, 1.0)
    assert curvature[:14].max() < 1e-9 and curvature[-4] == pytest.approx(1 / 3.0, rel=0.1)
    mirrored = TaughtPath(
        np.stack([np.diag([1.0, -1.0, 1.0, 1.0]) @ T @ np.diag([1.0, -1.0, 1.0, 1.0]) for T in path.T_map_vertex])
    )
    np.testing.assert_allclose(path_curvatures(mirrored, 1.0), -curvature, atol=1e-12)  # a right turn is negative
    assert planar_position_std_m(np.diag([0.04, 0.09, 1, 1, 1, 1])) == pytest.approx(0.3)
    assert planar_position_std_m(None) == np.inf
    with pytest.raises(ValueError, match="min_speed_mps"):
        PathTrackerConfig(min_speed_mps=2.0, max_speed_mps=1.0)
