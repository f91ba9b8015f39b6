"""The live simulator behind sim_node: one world, one lighting, a vehicle that moves in sim time, stereo on demand.

`LiveSimulator` owns the world, its renderer, the vehicle (`UnicycleVehicle` driven by velocity commands for a
repeat, `CentrelineDrive` for the teach pass) and its drifting wheel odometry (`WheelOdometry`). `advance(until_ns,
command)` integrates the motion in steps of at most `physics_step_s`; `render()` takes a stereo frame at the current
pose (motion-blurred by the current velocity where the camera member exposes long enough). Time is integer
nanoseconds from the run's first stamp (day `run_id` at the lighting's hour, like `dlvf sim`'s runs). No ROS here: the
node publishes what this computes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dlvf_ros.config import check_settings, setting
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.sim.config import SimConfig
from dlvf_ros.sim.frames import SimFrame
from dlvf_ros.sim.lighting import lighting_preset
from dlvf_ros.sim.odometry import WheelOdometry
from dlvf_ros.sim.renderer import StereoRenderer
from dlvf_ros.sim.trajectory import pose_on_path, start_stamp_ns
from dlvf_ros.sim.vehicle import CentrelineDrive, UnicycleVehicle, VehicleConfig, VelocityCommand
from dlvf_ros.sim.world import generate_world

NS_PER_S = 1_000_000_000


@dataclass
class LiveSimConfig:
    """What sim_node simulates: the world, the run and the sensors' rates."""

    seed: int = setting(100, "world seed (the shipped model trained on seeds 1-8)", (0, 2**31 - 1))
    style: str = setting(
        "demo",
        "world style (dlvf_ros/sim/style.py): drawn, held_out_test, demo, classic, then family=member overrides",
    )
    path_length_m: float = setting(40.0, "taught path length (m); the trail continues before and after", (1.0, 5000.0))
    lighting: str = setting(
        "noon", "lighting: noon, morning, evening, overcast, dusk, night, glare, an hour 0-24, optionally NAME@AZ"
    )
    image_width: int = setting(512, "image width (px); the rig's intrinsics are scaled to it (4:3)", (32, 4096))
    image_height: int = setting(384, "image height (px)", (24, 3072))
    camera_rate_hz: float = setting(5.0, "stereo frames per second of sim time", (0.1, 100.0))
    odometry_rate_hz: float = setting(
        20.0, "odometry, odom -> base_link, ground truth and /clock per second of sim time", (1.0, 1000.0)
    )
    physics_step_s: float = setting(0.01, "largest integration step of the vehicle (s)", (0.0001, 0.1))
    mode: Literal["teach", "repeat"] = setting(
        "repeat", "teach: drive the trail centreline at teach_speed_mps (scripted); repeat: drive by cmd_vel"
    )
    run_id: int = setting(
        1, "run number: the run starts on day run_id after the first stamp, and seeds its noise (teach: 0)", (0, 9999)
    )
    teach_speed_mps: float = setting(1.0, "teach: speed along the centreline (m/s)", (0.01, 10.0))
    start_m: float = setting(0.0, "arc length (m) of the start on the taught path", (-20.0, 5000.0))
    initial_lateral_m: float = setting(
        0.3, "repeat: the vehicle starts this far left of the centreline (m; negative: right)", (-5.0, 5.0)
    )
    initial_heading_deg: float = setting(
        5.0, "repeat: start heading relative to the trail (deg, + counter-clockwise)", (-90.0, 90.0)
    )
    sim_config: str = setting(
        "", "SimConfig YAML (world, render and odometry settings, config/sim.yaml); empty: the built-in defaults"
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.image_width * 3 != self.image_height * 4:
            raise ValueError(
                f"image size {self.image_width}x{self.image_height} is not 4:3 like the rig; e.g. 512x384 or 320x240"
            )
        if self.camera_rate_hz > self.odometry_rate_hz:
            raise ValueError(
                f"camera_rate_hz {self.camera_rate_hz} exceeds odometry_rate_hz {self.odometry_rate_hz}; each frame "
                "needs odometry at its stamp"
            )
        if self.start_m >= self.path_length_m:
            raise ValueError(f"start_m {self.start_m} lies beyond the path (path_length_m {self.path_length_m})")
        lighting_preset(self.lighting)  # a clear error for an unknown lighting


def period_ns(rate_hz: float) -> int:
    """Integer period (ns) of a rate."""
    return int(round(NS_PER_S / rate_hz))


class LiveSimulator:
    """See the module docstring. `close()` releases the renderer."""

    def __init__(self, config: LiveSimConfig, sim_config: SimConfig, vehicle: VehicleConfig) -> None:
        self.config = config
        world_config = dataclasses.replace(sim_config.world, style=config.style, path_length_m=config.path_length_m)
        self.world = generate_world(config.seed, world_config)
        self.rig = StereoRig().scaled(config.image_width, config.image_height)
        self.lighting = lighting_preset(config.lighting)
        self.renderer = StereoRenderer(self.world, self.rig, sim_config.render)
        self.start_ns = start_stamp_ns(sim_config.trajectory, config.run_id, self.lighting.hour)
        self.now_ns = self.start_ns
        rng = np.random.default_rng([config.seed, config.run_id, 0x5117])
        self.motion: CentrelineDrive | UnicycleVehicle
        if config.mode == "teach":
            self.motion = CentrelineDrive(self.world, config.teach_speed_mps, config.start_m, config.path_length_m)
        else:
            T_world_start = pose_on_path(
                self.world, config.start_m, config.initial_lateral_m, np.deg2rad(config.initial_heading_deg)
            )
            self.motion = UnicycleVehicle(self.world, T_world_start, vehicle, rng)
        self.odometry = WheelOdometry(sim_config.odometry, rng)
        self.distance_m = 0.0  # travelled, by ground truth
        self.frames_rendered = 0

    @property
    def T_world_vehicle(self) -> np.ndarray:
        return self.motion.T_world_vehicle

    @property
    def T_odom_vehicle(self) -> np.ndarray:
        return self.odometry.T_odom_vehicle

    @property
    def teach_finished(self) -> bool:
        """The teach pass reached the end of the path (always False for a repeat)."""
        return isinstance(self.motion, CentrelineDrive) and self.motion.finished

    def velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """(linear m/s, angular rad/s) of the vehicle in its own frame."""
        return self.motion.velocity()

    def advance(self, until_ns: int, command: VelocityCommand | None) -> None:
        """Move the vehicle (and its odometry) from now to `until_ns` under `command`."""
        step_ns = int(round(self.config.physics_step_s * NS_PER_S))
        while self.now_ns < until_ns:
            dt_ns = min(step_ns, until_ns - self.now_ns)
            T_previous = self.motion.T_world_vehicle
            T_now = self.motion.step(command, self.now_ns, dt_ns * 1e-9)
            T_previous_now = transforms.invert(T_previous) @ T_now
            self.odometry.step(T_previous_now, dt_ns * 1e-9)
            self.distance_m += float(np.linalg.norm(T_previous_now[:3, 3]))
            self.now_ns += dt_ns

    def render(self) -> SimFrame:
        """The stereo frame at the current time and pose (pose_id counts the frames rendered)."""
        images = self.renderer.render(
            self.T_world_vehicle,
            self.lighting,
            noise_seed=self.config.run_id * 1_000_003 + self.frames_rendered,
            motion_vehicle=self.velocity(),
        )
        frame = SimFrame(
            pose_id=self.frames_rendered,
            stamp_ns=self.now_ns,
            left=images.left,
            right=images.right,
            depth_left_m=images.depth_left_m,
            T_world_vehicle=self.T_world_vehicle.copy(),
            T_odom_vehicle=self.T_odom_vehicle.copy(),
        )
        self.frames_rendered += 1
        return frame

    def close(self) -> None:
        self.renderer.close()
