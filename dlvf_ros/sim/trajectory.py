"""Teach and repeat runs along the world's trail: ground-truth vehicle poses, stamps and drifting odometry.

The teach run (run 0) drives the trail centreline from s = 0 to the path length with a frame every `spacing_m`.
Repeat run i drives the same path with a smooth lateral offset (bounded by `max_lateral_offset_m`), the heading that
offset implies (bounded by `max_heading_offset_deg`), a random start phase and smooth speed changes, so its frames
do not line up with the teach frames. The vehicle sits on the terrain: z, roll and pitch follow the ground under
its wheels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlvf_ros.geometry import transforms
from dlvf_ros.sim.config import OdometryConfig, TrajectoryConfig
from dlvf_ros.sim.odometry import simulate_odometry
from dlvf_ros.sim.world import World

NS_PER_S = 1_000_000_000
WHEELBASE_HALF_M = 0.5  # ground contact points used for pitch
TRACK_HALF_M = 0.4  # and for roll


@dataclass
class Trajectory:
    """One run: N frames with ground truth and odometry."""

    run_id: int
    hour: float  # local time of day of the run's start
    stamps_ns: np.ndarray  # (N,) int64
    T_world_vehicle: np.ndarray  # (N, 4, 4) ground truth
    T_odom_vehicle: np.ndarray  # (N, 4, 4) wheel odometry of this run (identity at the first frame)
    path_s_m: np.ndarray  # (N,) arc length along the taught path
    lateral_offset_m: np.ndarray  # (N,) left of the taught path
    heading_offset_rad: np.ndarray  # (N,) relative to the path tangent

    def __len__(self) -> int:
        return len(self.stamps_ns)


def vehicle_pose_on_terrain(world: World, x_m: float, y_m: float, yaw_rad: float) -> np.ndarray:
    """`T_world_vehicle` standing on the terrain at (x, y) facing `yaw_rad`: z, pitch and roll from the ground."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    fwd, left = np.array([c, s]), np.array([-s, c])
    p = np.array([x_m, y_m])
    front, back = p + WHEELBASE_HALF_M * fwd, p - WHEELBASE_HALF_M * fwd
    lft, rgt = p + TRACK_HALF_M * left, p - TRACK_HALF_M * left
    h = world.terrain_height(
        np.array([front[0], back[0], lft[0], rgt[0], x_m]), np.array([front[1], back[1], lft[1], rgt[1], y_m])
    )
    pitch = np.arctan2(h[1] - h[0], 2 * WHEELBASE_HALF_M)  # nose down is positive
    roll = np.arctan2(h[2] - h[3], 2 * TRACK_HALF_M)  # left side up is positive
    return transforms.from_xyz_rpy(x_m, y_m, float(h[4]), roll, pitch, yaw_rad)


def pose_on_path(world: World, s_m: float, lateral_m: float = 0.0, yaw_offset_rad: float = 0.0) -> np.ndarray:
    """`T_world_vehicle` on the terrain at arc length `s_m`, `lateral_m` left of the centreline, heading along the
    path tangent plus `yaw_offset_rad`."""
    xy = _offset_path(world, np.array([float(s_m)]), lambda s: np.full_like(s, lateral_m))[0]
    heading = float(world.path_pose(float(s_m))[1][0])
    return vehicle_pose_on_terrain(world, float(xy[0]), float(xy[1]), heading + yaw_offset_rad)


def _smooth_signal(rng: np.random.Generator, s: np.ndarray, wavelengths_m: tuple[float, float], terms: int = 3):
    """Sum of random sinusoids over s, scaled to a peak of 1."""
    total = np.zeros_like(s)
    for _ in range(terms):
        total += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * s / rng.uniform(*wavelengths_m) + rng.uniform(0, 2 * np.pi))
    return total / max(np.abs(total).max(), 1e-12)


def start_stamp_ns(cfg: TrajectoryConfig, run_id: int, hour: float) -> int:
    """Stamp (ns) of run `run_id`'s first frame: day `run_id` after `cfg.first_stamp_ns`, at `hour`."""
    return int(cfg.first_stamp_ns + run_id * 86400 * NS_PER_S + round(hour * 3600.0) * NS_PER_S)


def _offset_path(world: World, s: np.ndarray, lateral_fn) -> np.ndarray:
    """(N, 2) points `lateral_fn(s)` metres left of the centreline at arc lengths s."""
    xy, heading = world.path_pose(s)
    return xy + lateral_fn(s)[:, None] * np.stack([-np.sin(heading), np.cos(heading)], 1)


def _build(world, run_id, hour, s, lateral_fn, cfg, odometry_cfg, rng) -> Trajectory:
    step = 0.05  # heading from the offset path's direction of travel (central difference)
    p = _offset_path(world, s, lateral_fn)
    d = _offset_path(world, s + step, lateral_fn) - _offset_path(
        world, np.maximum(s - step, world.path_s_m[0]), lateral_fn
    )
    yaw = np.arctan2(d[:, 1], d[:, 0])
    heading_offset = np.angle(np.exp(1j * (yaw - world.path_pose(s)[1])))
    T_world_vehicle = np.stack([vehicle_pose_on_terrain(world, px, py, a) for (px, py), a in zip(p, yaw)])
    dt_ns = int(round(cfg.spacing_m / cfg.speed_mps * NS_PER_S))
    stamps = start_stamp_ns(cfg, run_id, hour) + dt_ns * np.arange(len(s), dtype=np.int64)
    T_odom_vehicle = simulate_odometry(T_world_vehicle, stamps, odometry_cfg, rng)
    return Trajectory(run_id, float(hour), stamps, T_world_vehicle, T_odom_vehicle, s, lateral_fn(s), heading_offset)


def teach_trajectory(
    world: World, cfg: TrajectoryConfig | None = None, odometry: OdometryConfig | None = None, hour: float = 12.0
) -> Trajectory:
    """Run 0: the trail centreline, a frame every `spacing_m` from s = 0 to the path length."""
    cfg, odometry = cfg or TrajectoryConfig(), odometry or OdometryConfig()
    rng = np.random.default_rng([world.seed, 0, 0x0D0])
    s = np.arange(0.0, world.config.path_length_m + 1e-9, cfg.spacing_m)
    return _build(world, 0, hour, s, np.zeros_like, cfg, odometry, rng)


def repeat_trajectory(
    world: World,
    run_id: int,
    cfg: TrajectoryConfig | None = None,
    odometry: OdometryConfig | None = None,
    hour: float = 12.0,
) -> Trajectory:
    """Repeat run `run_id` (>= 1): smooth lateral and heading offsets from the taught path, varying speed."""
    if run_id < 1:
        raise ValueError(f"repeat_trajectory: run_id must be >= 1 (run 0 is the teach run), got {run_id}")
    cfg, odometry = cfg or TrajectoryConfig(), odometry or OdometryConfig()
    rng = np.random.default_rng([world.seed, run_id, 0x0D0])
    length = world.config.path_length_m
    # frames: constant rate, speed varying smoothly, random phase against the teach frames
    dense = np.arange(0.0, length + 1.0, 0.05)
    speed_factor = 1.0 + cfg.speed_variation * _smooth_signal(rng, dense, (15.0, 60.0))
    s_list = [rng.uniform(0.05, 0.95) * cfg.spacing_m]
    while True:
        nxt = s_list[-1] + cfg.spacing_m * float(np.interp(s_list[-1], dense, speed_factor))
        if nxt > length:
            break
        s_list.append(nxt)
    s = np.array(s_list)
    # lateral offset: smooth, bounded in value and in slope (the slope is the heading offset)
    shape = _smooth_signal(rng, dense, (40.0, 120.0)) * rng.uniform(0.6, 1.0)
    slope = np.abs(np.gradient(shape, dense)).max()
    amplitude = min(cfg.max_lateral_offset_m, 0.9 * np.tan(np.deg2rad(cfg.max_heading_offset_deg)) / max(slope, 1e-12))
    return _build(world, run_id, hour, s, lambda x: amplitude * np.interp(x, dense, shape), cfg, odometry, rng)
