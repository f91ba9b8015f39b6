"""The simulated robot's motion: a unicycle driven by velocity commands, and the scripted drive along the centreline.

`UnicycleVehicle` integrates (linear m/s, angular rad/s) commands in the world's ground plane: commands are clipped
to the speed and yaw-rate limits, the velocities approach them within the acceleration limits, and the actuators
err (a per-run speed scale and yaw-rate bias plus slowly varying noise, Ornstein-Uhlenbeck with
`actuation_noise_time_s`). A command older than `command_timeout_s` stops the vehicle. `CentrelineDrive` is the teach
pass: the trail centreline at a constant speed, exactly. Both stand on the terrain (z, pitch and roll from the ground
under the wheels, `trajectory.vehicle_pose_on_terrain`) and report `T_world_vehicle` and their velocity in the
vehicle frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlvf_ros.config import check_settings, setting
from dlvf_ros.sim.trajectory import pose_on_path, vehicle_pose_on_terrain
from dlvf_ros.sim.world import World


@dataclass
class VehicleConfig:
    """Limits and actuation errors of the simulated robot (parameters `vehicle.*` of sim_node)."""

    max_speed_mps: float = setting(1.5, "largest forward speed (m/s)", (0.01, 20.0))
    max_reverse_speed_mps: float = setting(0.5, "largest backward speed (m/s)", (0.0, 20.0))
    max_yaw_rate_rad_s: float = setting(1.0, "largest yaw rate (rad/s)", (0.01, 10.0))
    max_acceleration_mps2: float = setting(1.0, "largest speed-up (m/s^2)", (0.01, 50.0))
    max_deceleration_mps2: float = setting(1.5, "largest slow-down (m/s^2)", (0.01, 50.0))
    max_yaw_acceleration_rad_s2: float = setting(3.0, "largest change of the yaw rate (rad/s^2)", (0.01, 100.0))
    speed_scale_error_std: float = setting(
        0.02, "per-run relative error of the speed the wheels deliver (1 sigma)", (0.0, 0.5)
    )
    yaw_rate_bias_std_rad_s: float = setting(0.01, "per-run yaw-rate bias of the drive (1 sigma, rad/s)", (0.0, 1.0))
    speed_noise_mps: float = setting(0.02, "slowly varying speed error (1 sigma, m/s)", (0.0, 1.0))
    yaw_rate_noise_rad_s: float = setting(0.02, "slowly varying yaw-rate error (1 sigma, rad/s)", (0.0, 1.0))
    actuation_noise_time_s: float = setting(
        0.5, "correlation time of the speed and yaw-rate errors (s)", (0.001, 100.0)
    )
    command_timeout_s: float = setting(
        0.5, "a velocity command older than this (s, sim time) stops the vehicle", (0.001, 60.0)
    )

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class VelocityCommand:
    """geometry_msgs/Twist as the vehicle takes it: linear x (m/s), angular z (rad/s), sent at `stamp_ns`."""

    linear_mps: float
    angular_rad_s: float
    stamp_ns: int


class UnicycleVehicle:
    """A unicycle on the terrain of `world`, starting at rest at `T_world_start` (its x, y and yaw are used)."""

    def __init__(
        self, world: World, T_world_start: np.ndarray, config: VehicleConfig, rng: np.random.Generator
    ) -> None:
        self.world = world
        self.config = config
        self.rng = rng
        self.x_m, self.y_m = float(T_world_start[0, 3]), float(T_world_start[1, 3])
        self.yaw_rad = float(np.arctan2(T_world_start[1, 0], T_world_start[0, 0]))
        self.speed_mps = 0.0
        self.yaw_rate_rad_s = 0.0
        self.speed_scale = 1.0 + rng.normal(0.0, config.speed_scale_error_std)
        self.yaw_rate_bias_rad_s = rng.normal(0.0, config.yaw_rate_bias_std_rad_s)
        self._noise = np.zeros(2)  # (speed m/s, yaw rate rad/s)
        self.T_world_vehicle = vehicle_pose_on_terrain(world, self.x_m, self.y_m, self.yaw_rad)

    def velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """(linear m/s, angular rad/s) in the vehicle frame."""
        return np.array([self.speed_mps, 0.0, 0.0]), np.array([0.0, 0.0, self.yaw_rate_rad_s])

    def step(self, command: VelocityCommand | None, now_ns: int, dt_s: float) -> np.ndarray:
        """Drive `dt_s` seconds under `command` (None, or older than the timeout at `now_ns`: stop); returns the new
        `T_world_vehicle`."""
        cfg = self.config
        if command is None or (now_ns - command.stamp_ns) * 1e-9 > cfg.command_timeout_s:
            wanted_speed, wanted_yaw_rate = 0.0, 0.0
        else:
            wanted_speed = float(np.clip(command.linear_mps, -cfg.max_reverse_speed_mps, cfg.max_speed_mps))
            wanted_yaw_rate = float(np.clip(command.angular_rad_s, -cfg.max_yaw_rate_rad_s, cfg.max_yaw_rate_rad_s))
        change = wanted_speed - self.speed_mps
        slowing = self.speed_mps * change < 0.0 or wanted_speed == 0.0
        limit = (cfg.max_deceleration_mps2 if slowing else cfg.max_acceleration_mps2) * dt_s
        self.speed_mps += float(np.clip(change, -limit, limit))
        limit = cfg.max_yaw_acceleration_rad_s2 * dt_s
        self.yaw_rate_rad_s += float(np.clip(wanted_yaw_rate - self.yaw_rate_rad_s, -limit, limit))
        # what the wheels deliver: scaled, biased, with correlated noise (exact Ornstein-Uhlenbeck step)
        decay = np.exp(-dt_s / cfg.actuation_noise_time_s)
        sigma = np.array([cfg.speed_noise_mps, cfg.yaw_rate_noise_rad_s])
        self._noise = self._noise * decay + sigma * np.sqrt(1.0 - decay**2) * self.rng.normal(size=2)
        moving = self.speed_mps != 0.0 or self.yaw_rate_rad_s != 0.0
        speed = self.speed_mps * self.speed_scale + self._noise[0] if moving else 0.0
        yaw_rate = self.yaw_rate_rad_s + self.yaw_rate_bias_rad_s + self._noise[1] if moving else 0.0
        self._integrate(speed, yaw_rate, dt_s)
        self.T_world_vehicle = vehicle_pose_on_terrain(self.world, self.x_m, self.y_m, self.yaw_rad)
        return self.T_world_vehicle

    def _integrate(self, speed: float, yaw_rate: float, dt_s: float) -> None:
        """Exact unicycle motion on a circular arc (a straight line when the yaw rate is zero)."""
        turn = yaw_rate * dt_s
        if abs(turn) < 1e-9:
            self.x_m += speed * dt_s * np.cos(self.yaw_rad)
            self.y_m += speed * dt_s * np.sin(self.yaw_rad)
        else:
            radius = speed / yaw_rate
            self.x_m += radius * (np.sin(self.yaw_rad + turn) - np.sin(self.yaw_rad))
            self.y_m -= radius * (np.cos(self.yaw_rad + turn) - np.cos(self.yaw_rad))
        self.yaw_rad = float(np.angle(np.exp(1j * (self.yaw_rad + turn))))


class CentrelineDrive:
    """The teach pass: the trail centreline from arc length `start_m` to `end_m` at `speed_mps`, then standing."""

    def __init__(self, world: World, speed_mps: float, start_m: float, end_m: float) -> None:
        if not speed_mps > 0 or not end_m > start_m:
            raise ValueError(f"CentrelineDrive: need speed > 0 and end > start, got {speed_mps}, {start_m}, {end_m}")
        self.world = world
        self.speed_mps = float(speed_mps)
        self.s_m = float(start_m)
        self.end_m = float(end_m)
        self._previous_yaw = self._yaw()
        self.yaw_rate_rad_s = 0.0
        self.T_world_vehicle = pose_on_path(world, self.s_m)

    @property
    def finished(self) -> bool:
        return self.s_m >= self.end_m

    def velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """(linear m/s, angular rad/s) in the vehicle frame."""
        speed = 0.0 if self.finished else self.speed_mps
        return np.array([speed, 0.0, 0.0]), np.array([0.0, 0.0, self.yaw_rate_rad_s])

    def step(self, command: VelocityCommand | None, now_ns: int, dt_s: float) -> np.ndarray:
        """Advance `dt_s` seconds along the centreline (commands are ignored); returns the new `T_world_vehicle`."""
        self.s_m = min(self.s_m + self.speed_mps * dt_s, self.end_m)
        yaw = self._yaw()
        self.yaw_rate_rad_s = float(np.angle(np.exp(1j * (yaw - self._previous_yaw)))) / dt_s if dt_s > 0 else 0.0
        self._previous_yaw = yaw
        self.T_world_vehicle = pose_on_path(self.world, self.s_m)
        return self.T_world_vehicle

    def _yaw(self) -> float:
        return float(self.world.path_pose(self.s_m)[1][0])
