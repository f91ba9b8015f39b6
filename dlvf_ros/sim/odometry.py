"""Wheel odometry with drift: a per-run scale error and yaw-rate bias plus random-walk noise per metre travelled.

`WheelOdometry` integrates one motion increment at a time (the live simulator's vehicle); `simulate_odometry` runs it
over a whole trajectory of ground-truth poses.
"""

from __future__ import annotations

import numpy as np

from dlvf_ros.geometry import transforms
from dlvf_ros.sim.config import OdometryConfig


class WheelOdometry:
    """`T_odom_vehicle` integrated from perturbed ground-truth increments; identity until the first `step`.

    The run's scale error and yaw-rate bias are drawn from `rng` at construction, the noise of each increment in
    `step` (so a trajectory's draws come in the same order whatever integrates it)."""

    def __init__(self, config: OdometryConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng
        self.scale = 1.0 + rng.normal(0.0, config.scale_error_std)
        self.yaw_rate_bias_rad_s = np.deg2rad(rng.normal(0.0, config.yaw_rate_bias_std_deg_s))
        self.T_odom_vehicle = np.eye(4)

    def step(self, T_prev_cur: np.ndarray, dt_s: float) -> np.ndarray:
        """Add the true motion `T_prev_cur` (vehicle frame at the previous step -> now) over `dt_s` seconds; returns
        the new `T_odom_vehicle`."""
        distance = float(np.linalg.norm(T_prev_cur[:3, 3]))
        noise = self.rng.normal(0.0, self.config.translation_noise_m_per_sqrt_m * np.sqrt(distance), 3)
        t = T_prev_cur[:3, 3] * self.scale + noise
        yaw_noise_deg = self.rng.normal(0.0, self.config.yaw_noise_deg_per_sqrt_m * np.sqrt(distance))
        yaw_error = self.yaw_rate_bias_rad_s * dt_s + np.deg2rad(yaw_noise_deg)
        measured = transforms.make_transform(transforms.rot_z(yaw_error) @ T_prev_cur[:3, :3], t)
        self.T_odom_vehicle = self.T_odom_vehicle @ measured
        return self.T_odom_vehicle


def simulate_odometry(
    T_world_vehicle: np.ndarray, stamps_ns: np.ndarray, config: OdometryConfig, rng: np.random.Generator
) -> np.ndarray:
    """(N, 4, 4) `T_odom_vehicle` integrated from perturbed ground-truth increments; the first pose is identity."""
    T_world_vehicle = np.asarray(T_world_vehicle, np.float64)
    stamps_ns = np.asarray(stamps_ns, np.int64)
    if T_world_vehicle.ndim != 3 or T_world_vehicle.shape[1:] != (4, 4) or len(stamps_ns) != len(T_world_vehicle):
        raise ValueError(
            f"simulate_odometry: need (N, 4, 4) poses and N stamps, got {T_world_vehicle.shape} and {stamps_ns.shape}"
        )
    if np.any(np.diff(stamps_ns) <= 0):
        raise ValueError("simulate_odometry: stamps_ns must increase strictly")
    odometry = WheelOdometry(config, rng)
    T_odom_vehicle = np.empty_like(T_world_vehicle)
    T_odom_vehicle[0] = odometry.T_odom_vehicle
    for k in range(1, len(T_world_vehicle)):
        T_prev_cur = transforms.invert(T_world_vehicle[k - 1]) @ T_world_vehicle[k]
        T_odom_vehicle[k] = odometry.step(T_prev_cur, (stamps_ns[k] - stamps_ns[k - 1]) * 1e-9)
    return T_odom_vehicle
