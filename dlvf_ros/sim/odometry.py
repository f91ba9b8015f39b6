"""Wheel odometry with drift: a per-run scale error and yaw-rate bias plus random-walk noise per metre travelled."""

from __future__ import annotations

import numpy as np

from dlvf_ros.geometry import transforms
from dlvf_ros.sim.config import OdometryConfig


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
    scale = 1.0 + rng.normal(0.0, config.scale_error_std)
    yaw_rate_bias = np.deg2rad(rng.normal(0.0, config.yaw_rate_bias_std_deg_s))
    T_odom_vehicle = np.empty_like(T_world_vehicle)
    T_odom_vehicle[0] = np.eye(4)
    for k in range(1, len(T_world_vehicle)):
        T_prev_cur = transforms.invert(T_world_vehicle[k - 1]) @ T_world_vehicle[k]
        distance = float(np.linalg.norm(T_prev_cur[:3, 3]))
        dt_s = (stamps_ns[k] - stamps_ns[k - 1]) * 1e-9
        t = T_prev_cur[:3, 3] * scale + rng.normal(0.0, config.translation_noise_m_per_sqrt_m * np.sqrt(distance), 3)
        yaw_noise_deg = rng.normal(0.0, config.yaw_noise_deg_per_sqrt_m * np.sqrt(distance))
        yaw_error = yaw_rate_bias * dt_s + np.deg2rad(yaw_noise_deg)
        measured = transforms.make_transform(transforms.rot_z(yaw_error) @ T_prev_cur[:3, :3], t)
        T_odom_vehicle[k] = T_odom_vehicle[k - 1] @ measured
    return T_odom_vehicle
