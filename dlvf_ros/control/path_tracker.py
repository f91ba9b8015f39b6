"""Path following on the taught path (curvature feedforward and a line-of-sight course), with a speed schedule and the
safety stops of a VT&R path tracker.

`PathTracker` steers by the localizer's output only (never ground truth): each localizer update (`localize`) gives
`T_map_vehicle` at an image stamp, which anchors the odometry frame in the map (`T_map_odom`); each odometry sample
(`command`) then places the vehicle on the map between updates (`T_map_vehicle = T_map_odom @ T_odom_vehicle`) and
answers with a velocity command (linear m/s, angular rad/s, vehicle frame).

Control: at the vehicle's projection on the path (arc length s), with cross-track error e (m, + left) and heading
error psi (vehicle yaw minus the path's, rad), the commanded curvature (1/m, + left) is

    kappa = kappa_path(s) + heading_gain_per_m * wrap(-atan(e / approach_m) - psi)

kappa_path is the path's signed curvature (its heading change over `curvature_window_m`), so the vehicle follows
curves without the corner cutting of a lookahead; the second term turns it onto a course that meets the path
`approach_m` ahead. Linearised, e decays about exponentially over `approach_m` of travel once psi follows its course
(over 1 / heading_gain_per_m); this spends less heading error for the same lateral error than pure pursuit (used
before), whose one length, the lookahead, sets both how fast it turns back and how far it cuts curves. The path's
heading is interpolated between segment midpoints, so it has no steps at the vertices. Speed: `max_speed_mps`,
lowered to sqrt(max_lateral_acceleration / |curvature|) where the path ahead (within `curvature_preview_m`) curves,
never below `min_speed_mps` there; lowered to brake at `deceleration_mps2` onto the path's end; the yaw rate is
capped at `max_yaw_rate_rad_s` by slowing down. From a standstill (the start, a safety stop) the vehicle first turns in
place (yaw rate `align_gain_per_s` x the course error wrap(...) above) until its heading is within
`align_tolerance_deg` of the course: a vehicle started heading away from the path would otherwise drive further off
while it turns.

Safety: an update is good when the localizer is localized and the pose's planar position standard deviation is at
most `max_position_std_m`. Without a good update the vehicle drives on odometry for at most `lost_distance_m` (the
speed ramps down at `deceleration_mps2` so that it stands still by then) and `lost_time_s`; then it stops and stays
stopped until a good update arrives (it resumes by itself). Before the first good update it stands for `start_wait_s`,
then creeps straight ahead on odometry at `start_creep_speed_mps` for at most `start_creep_m`, then stands: the
localizer confirms a start-up pose of a standing vehicle only off every keyframe, and one on a keyframe by a second
pose taken further on (fix_gate rules 2 and 4); `start_creep_m` 0 keeps it still. At the end of the path (progress
within `goal_tolerance_m` of its length) it stops for good.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

import numpy as np

from dlvf_ros.config import check_settings, setting
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.interpolation import interpolate_poses
from dlvf_ros.localization.covariance import planar_position_std_m
from dlvf_ros.localization.path_tracking import TaughtPath, wrap_angle

NS_PER_S = 1_000_000_000
ODOMETRY_HISTORY = 200  # odometry samples kept to place an update at its image stamp


@dataclass
class PathTrackerConfig:
    """Steering, speed schedule and safety stops (parameters of path_tracker_node)."""

    max_speed_mps: float = setting(0.8, "cruise speed on straight path (m/s)", (0.01, 10.0))
    min_speed_mps: float = setting(0.25, "slowest scheduled speed in tight curves (m/s)", (0.01, 10.0))
    max_lateral_acceleration_mps2: float = setting(
        0.25, "curves: speed at most sqrt(this / path curvature) (m/s^2)", (0.001, 10.0)
    )
    curvature_preview_m: float = setting(
        2.0, "the speed schedule looks this far ahead along the path for curvature (m)", (0.0, 50.0)
    )
    curvature_window_m: float = setting(
        1.0, "path curvature is the heading change over this much arc length (m), smoothing vertex noise", (0.1, 20.0)
    )
    deceleration_mps2: float = setting(
        0.5, "planned braking onto the path's end and onto a safety stop (m/s^2)", (0.01, 10.0)
    )
    approach_m: float = setting(
        2.75, "the course onto the path aims at the point this far ahead of the projection (m)", (0.05, 100.0)
    )
    heading_gain_per_m: float = setting(
        4.0, "curvature commanded per radian between the heading and that course (1/m per rad)", (0.01, 100.0)
    )
    max_yaw_rate_rad_s: float = setting(0.8, "largest commanded yaw rate (rad/s)", (0.01, 10.0))
    align_tolerance_deg: float = setting(
        5.0,
        "from a standstill (start-up, after a safety stop) the vehicle first turns in place until its heading is "
        "within this (deg) of the course onto the path; 180: drives off at once",
        (0.1, 180.0),
    )
    align_gain_per_s: float = setting(
        2.0,
        "turning in place, the yaw rate (rad/s) is this times the heading's difference from the course (rad), at most "
        "max_yaw_rate_rad_s: it slows down onto the course instead of overshooting it",
        (0.01, 100.0),
    )
    goal_tolerance_m: float = setting(
        0.05, "the run ends when the progress is within this of the path's length (m)", (0.0, 10.0)
    )
    max_position_std_m: float = setting(
        0.3, "an update is good only when the planar position standard deviation is at most this (m)", (0.001, 100.0)
    )
    lost_distance_m: float = setting(
        1.0, "without a good update the vehicle stands still within this odometry distance (m)", (0.0, 100.0)
    )
    lost_time_s: float = setting(5.0, "without a good update for this long (s) the vehicle stops", (0.0, 3600.0))
    start_wait_s: float = setting(
        1.5, "before the first good update the vehicle stands this long (s) before the start-up creep", (0.0, 3600.0)
    )
    start_creep_m: float = setting(
        0.6,
        "before the first good update the vehicle creeps straight ahead on odometry for at most this (m; 0: still)",
        (0.0, 10.0),
    )
    start_creep_speed_mps: float = setting(0.3, "speed of the start-up creep (m/s)", (0.01, 10.0))
    update_timeout_s: float = setting(
        0.5, "no localizer update for this long (s) counts as dead reckoning (the mode reported)", (0.001, 60.0)
    )
    max_odometry_gap_s: float = setting(
        0.5, "an update's image stamp is placed between odometry samples at most this far apart (s)", (0.001, 60.0)
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.min_speed_mps > self.max_speed_mps:
            raise ValueError(f"min_speed_mps {self.min_speed_mps} exceeds max_speed_mps {self.max_speed_mps}")


class TrackerMode(enum.Enum):
    WAITING = "waiting"  # no good update yet
    ALIGNING = "aligning"  # turning in place onto the course before driving off (start-up, after a stop)
    TRACKING = "tracking"  # driving on good updates
    DEAD_RECKONING = "dead_reckoning"  # driving on odometry since the last good update, within the allowance
    STOPPED = "stopped"  # no good update for longer than the allowance: standing until one comes
    FINISHED = "finished"  # reached the path's end


STANDING_MODES = {TrackerMode.WAITING, TrackerMode.ALIGNING, TrackerMode.STOPPED}  # not driven since the start / a stop


@dataclass(frozen=True)
class TrackerCommand:
    """The answer to one odometry sample: the command and what it was based on."""

    stamp_ns: int
    linear_mps: float
    angular_rad_s: float
    mode: TrackerMode
    progress_m: float | None  # the estimate's arc length along the taught path (m)
    cross_track_m: float | None  # the estimate's signed distance from the path, + left (m)
    heading_error_rad: float | None
    distance_since_good_m: float  # odometry distance since the last good update (m)


def path_headings(path: TaughtPath) -> tuple[np.ndarray, np.ndarray]:
    """(arc lengths (m), unwrapped headings (rad)) of the path's segment midpoints: the path's heading at arc length
    s is their linear interpolation (constant before the first and after the last midpoint)."""
    xy = path.T_map_vertex[:, :2, 3]
    if len(path) < 2:
        return np.zeros(1), np.array([transforms.yaw_of(path.T_map_vertex[0])])
    segment = np.diff(xy, axis=0)
    s = path.vertex_progress_m
    return 0.5 * (s[:-1] + s[1:]), np.unwrap(np.arctan2(segment[:, 1], segment[:, 0]))


def path_curvatures(path: TaughtPath, window_m: float) -> np.ndarray:
    """Signed curvature (1/m, + turning left) at each vertex: the path's heading change over `window_m` of arc length
    centred on it (headings from `path_headings`)."""
    middle, yaw = path_headings(path)
    s = path.vertex_progress_m
    half = 0.5 * window_m
    return (np.interp(s + half, middle, yaw) - np.interp(s - half, middle, yaw)) / window_m


class PathTracker:
    """See the module docstring. Call `localize` for each localizer update and `command` for each odometry sample."""

    def __init__(self, path: TaughtPath, config: PathTrackerConfig) -> None:
        self.path = path
        self.config = config
        self.curvature = path_curvatures(path, config.curvature_window_m)
        self._midpoint_progress_m, self._midpoint_yaw_rad = path_headings(path)  # the path's heading, interpolated
        self.mode = TrackerMode.WAITING
        self.T_map_odom: np.ndarray | None = None  # from the latest update with a pose
        self.distance_since_good_m = 0.0
        self.last_good_ns: int | None = None
        self._odometry: deque[tuple[int, np.ndarray]] = deque(maxlen=ODOMETRY_HISTORY)
        self._vertex_hint: int | None = None
        self._start: tuple[int, np.ndarray] | None = None  # the first odometry sample (ns, T): the wait, the creep
        self._latest_good = False
        self._last_update_ns = 0

    def localize(self, stamp_ns: int, localized: bool, T_map_vehicle: np.ndarray | None, covariance) -> bool:
        """One localizer update at image stamp `stamp_ns`: its pose (None: none) with its map-frame covariance.
        Returns whether it was good (see the module docstring). An update the odometry cannot place is not used."""
        self._last_update_ns = int(stamp_ns)
        self._latest_good = False
        if T_map_vehicle is None:
            return False
        T_odom_vehicle = self._odometry_at(stamp_ns)
        if T_odom_vehicle is None:
            return False
        self.T_map_odom = np.asarray(T_map_vehicle, dtype=np.float64) @ transforms.invert(T_odom_vehicle)
        self._latest_good = bool(localized) and planar_position_std_m(covariance) <= self.config.max_position_std_m
        if self._latest_good:  # the odometry distance driven since the image was taken
            self.distance_since_good_m = float(np.linalg.norm(self._odometry[-1][1][:3, 3] - T_odom_vehicle[:3, 3]))
            self.last_good_ns = int(stamp_ns)
        return self._latest_good

    def command(self, stamp_ns: int, T_odom_vehicle: np.ndarray) -> TrackerCommand:
        """The velocity command answering the odometry sample `T_odom_vehicle` at `stamp_ns`."""
        cfg = self.config
        T_odom_vehicle = np.asarray(T_odom_vehicle, dtype=np.float64)
        if self._odometry and self.last_good_ns is not None and stamp_ns > self._odometry[-1][0]:
            self.distance_since_good_m += float(np.linalg.norm(T_odom_vehicle[:3, 3] - self._odometry[-1][1][:3, 3]))
        self._odometry.append((int(stamp_ns), T_odom_vehicle))
        if self._start is None:
            self._start = (int(stamp_ns), T_odom_vehicle)
        if self.mode == TrackerMode.FINISHED or self.T_map_odom is None or self.last_good_ns is None:
            return self._answer(stamp_ns, self._creep_speed(stamp_ns, T_odom_vehicle), 0.0, None)
        from_standstill = self.mode in STANDING_MODES  # the previous command's: align before driving off
        T_map_vehicle = self.T_map_odom @ T_odom_vehicle
        position = self.path.locate(T_map_vehicle, None, self._vertex_hint)
        self._vertex_hint = position.vertex_id
        remaining_m = self.path.length_m - position.progress_m
        if remaining_m <= cfg.goal_tolerance_m:
            self.mode = TrackerMode.FINISHED
            return self._answer(stamp_ns, 0.0, 0.0, position)
        fresh = (stamp_ns - self._last_update_ns) / NS_PER_S <= cfg.update_timeout_s
        self.mode = TrackerMode.TRACKING if self._latest_good and fresh else TrackerMode.DEAD_RECKONING
        speed = min(
            self._scheduled_speed(position.progress_m),
            self._braking_speed(remaining_m - cfg.goal_tolerance_m),
            self._braking_speed(cfg.lost_distance_m - self.distance_since_good_m),
        )
        if (stamp_ns - self.last_good_ns) / NS_PER_S > cfg.lost_time_s or speed <= 0.0:
            self.mode = TrackerMode.STOPPED
            return self._answer(stamp_ns, 0.0, 0.0, position)
        course_error = self._course_error(T_map_vehicle, position.progress_m, position.cross_track_m)
        if from_standstill and abs(course_error) > np.deg2rad(cfg.align_tolerance_deg):
            self.mode = TrackerMode.ALIGNING
            yaw_rate = np.clip(cfg.align_gain_per_s * course_error, -cfg.max_yaw_rate_rad_s, cfg.max_yaw_rate_rad_s)
            return self._answer(stamp_ns, 0.0, float(yaw_rate), position)
        feedforward = float(np.interp(position.progress_m, self.path.vertex_progress_m, self.curvature))
        curvature = feedforward + cfg.heading_gain_per_m * course_error
        if abs(curvature) * speed > cfg.max_yaw_rate_rad_s:
            speed = cfg.max_yaw_rate_rad_s / abs(curvature)
        return self._answer(stamp_ns, speed, speed * curvature, position)

    def _course_error(self, T_map_vehicle: np.ndarray, progress_m: float, cross_track_m: float) -> float:
        """The course onto the path minus the vehicle's heading (rad, + left; see the module docstring)."""
        path_yaw = float(np.interp(progress_m, self._midpoint_progress_m, self._midpoint_yaw_rad))
        heading_error = wrap_angle(transforms.yaw_of(T_map_vehicle) - path_yaw)
        course = -np.arctan(cross_track_m / self.config.approach_m)
        return wrap_angle(course - heading_error)

    def _creep_speed(self, stamp_ns: int, T_odom_vehicle: np.ndarray) -> float:
        """Before the first good update: 0 for `start_wait_s`, then the start-up creep's speed, braking onto
        `start_creep_m` (0 after it)."""
        cfg = self.config
        if self.mode == TrackerMode.FINISHED or self.last_good_ns is not None or self._start is None:
            return 0.0
        start_ns, T_odom_start = self._start
        if (stamp_ns - start_ns) / NS_PER_S < cfg.start_wait_s:
            return 0.0
        driven_m = float(np.linalg.norm(T_odom_vehicle[:3, 3] - T_odom_start[:3, 3]))
        return min(cfg.start_creep_speed_mps, self._braking_speed(cfg.start_creep_m - driven_m))

    def _scheduled_speed(self, progress_m: float) -> float:
        cfg = self.config
        s = self.path.vertex_progress_m
        ahead = (s >= progress_m - 0.5 * cfg.curvature_window_m) & (s <= progress_m + cfg.curvature_preview_m)
        curvature = float(np.abs(self.curvature[ahead]).max()) if ahead.any() else 0.0
        if curvature <= 0.0:
            return cfg.max_speed_mps
        return float(
            np.clip(np.sqrt(cfg.max_lateral_acceleration_mps2 / curvature), cfg.min_speed_mps, cfg.max_speed_mps)
        )

    def _braking_speed(self, distance_m: float) -> float:
        """The speed from which braking at `deceleration_mps2` stops within `distance_m` (0 when none is left)."""
        return float(np.sqrt(2.0 * self.config.deceleration_mps2 * distance_m)) if distance_m > 0.0 else 0.0

    def _odometry_at(self, stamp_ns: int) -> np.ndarray | None:
        if not self._odometry:
            return None
        newest_ns, newest = self._odometry[-1]
        max_gap_ns = int(self.config.max_odometry_gap_s * NS_PER_S)
        if stamp_ns >= newest_ns:
            return newest if stamp_ns - newest_ns <= max_gap_ns else None
        stamps = np.array([s for s, _ in self._odometry], dtype=np.int64)
        poses, valid = interpolate_poses(
            stamps, np.stack([T for _, T in self._odometry]), np.array([stamp_ns]), max_gap_ns
        )
        return poses[0] if valid[0] else None

    def _answer(self, stamp_ns: int, linear: float, angular: float, position) -> TrackerCommand:
        return TrackerCommand(
            stamp_ns=int(stamp_ns),
            linear_mps=float(linear),
            angular_rad_s=float(angular),
            mode=self.mode,
            progress_m=None if position is None else position.progress_m,
            cross_track_m=None if position is None else position.cross_track_m,
            heading_error_rad=None if position is None else position.heading_error_rad,
            distance_since_good_m=self.distance_since_good_m,
        )
