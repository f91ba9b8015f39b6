"""sim_node: a simulated robot in the loop (wiring around `dlvf_ros.sim.live.LiveSimulator`).

It loads a world (seed, style), holds a vehicle and publishes what the robot's sensors would:
- stereo: left/right Image (rgb8) + CameraInfo at `camera_rate_hz` on the topics the stereo nodes subscribe to
  (`dlvf_ros.ros.stereo_input.TOPICS`), frames camera_left_optical / camera_right_optical;
- at `odometry_rate_hz`: /clock (sim time), nav_msgs/Odometry with drift on `odom` (odom -> base_link, with
  covariance), the same transform on /tf, and ground truth (geometry_msgs/PoseStamped of base_link in `world`) on
  `ground_truth/pose`;
- once: base_link -> camera_left_optical / camera_right_optical on /tf_static;
- /diagnostics: "sim_node: run" (frames, frames and commands missed, sim time, distance, finished) every second and
  when the run ends.
In a repeat it drives by geometry_msgs/Twist on `cmd_vel` (linear.x, angular.z; `dlvf_ros.sim.vehicle`); in a teach
pass it drives the trail centreline itself and ignores `cmd_vel`.

Clocks (`clock`):
- `lockstep`: sim time advances only once the loop answered. After each camera frame the simulation waits for a
  per-frame status on `dlvf_ros.sim.lockstep.FRAME_STATUS_TOPIC` carrying the frame's stamp (`frame_stamp_ns`:
  localizer_node, teach_node), and in a repeat after each odometry message for the command answering it (one Twist per
  odometry message, as path_tracker_node sends). So results do not depend on the machine's load. Waits end after
  `lockstep_timeout_s` (counted as missed). The run starts once the images have a subscriber (and, in a repeat,
  `cmd_vel` a publisher), their endpoints matched.
- `realtime`: sim time follows the wall clock (times `realtime_factor`); the latest command acts, a node's latency
  and the frames it drops act on the vehicle.
The simulation runs in its own thread; the executor thread takes commands and answers.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Literal

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image

from dlvf_ros.config import load_config, setting
from dlvf_ros.data.bag_writer import odometry_covariances
from dlvf_ros.data.bags import body_twist
from dlvf_ros.geometry import transforms
from dlvf_ros.localization.frame_record import FRAME_STAMP_KEY, FRAME_STATUS_DEPTH
from dlvf_ros.ros import conversions
from dlvf_ros.ros.compat import tf2_ros
from dlvf_ros.ros.node_main import StartupError, run_node
from dlvf_ros.ros.node_parameters import ParameterSpec, node_parameter_specs, read_node_configs
from dlvf_ros.ros.stereo_input import TOPICS, create_watchdog_timer
from dlvf_ros.sim.config import SimConfig
from dlvf_ros.sim.live import LiveSimConfig, LiveSimulator, period_ns
from dlvf_ros.sim.lockstep import FRAME_STATUS_TOPIC, LockStep
from dlvf_ros.sim.vehicle import VehicleConfig, VelocityCommand

NODE_NAME = "sim_node"
RUN_STATUS = "run"  # /diagnostics status "sim_node: run"


@dataclass
class SimNodeConfig(LiveSimConfig):
    """Node-level settings (the simulated run's are `LiveSimConfig`'s, the vehicle's `vehicle.*`)."""

    clock: Literal["lockstep", "realtime"] = setting(
        "lockstep",
        "lockstep: sim time waits for each frame's answer (and each command in a repeat); realtime: it follows the "
        "wall clock",
    )
    realtime_factor: float = setting(1.0, "realtime: sim seconds per wall-clock second", (0.01, 100.0))
    lockstep_timeout_s: float = setting(
        10.0,
        "lockstep: wait at most this long (s, wall clock) for an answer or a command, then count it missed",
        (0.01, 3600.0),
    )
    start_timeout_s: float = setting(
        120.0, "wait at most this long (s, wall clock) for the loop's nodes before the run starts", (0.0, 3600.0)
    )
    duration_s: float = setting(
        0.0,
        "end the run after this much sim time (s); 0: a repeat runs until stopped, a teach pass to its end",
        (0.0, 1e6),
    )
    world_frame: str = setting("world", "frame of the ground truth")
    odom_frame: str = setting("odom", "odometry frame (REP 105)")
    base_frame: str = setting("base_link", "vehicle frame (REP 105)")
    left_frame: str = setting("camera_left_optical", "left camera optical frame")
    right_frame: str = setting("camera_right_optical", "right camera optical frame")


PARAMETERS = ((SimNodeConfig, ""), (VehicleConfig, "vehicle."))


def parameter_specs() -> list[ParameterSpec]:
    """Every parameter of sim_node with its default, description and range (from the config dataclasses)."""
    return node_parameter_specs(PARAMETERS)


@dataclass
class RunCounters:
    """What the run status reports."""

    frames: int = 0
    frames_unanswered: int = 0
    odometry_messages: int = 0
    commands_missed: int = 0
    finished: bool = False
    error: str = ""
    wall_started: float | None = None


class SimNode(Node):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        try:
            self.cfg, self._vehicle_config = read_node_configs(self, NODE_NAME, PARAMETERS)
            self._sim_config = load_config(SimConfig, self.cfg.sim_config or None)
        except ValueError as exc:
            raise StartupError(f"{NODE_NAME}: {exc}") from exc
        self.sim: LiveSimulator | None = None  # built by the simulation thread, which owns the GL context
        self._now_ns = 0  # sim time, as the executor thread reads it
        self.lockstep = LockStep()
        self.counters = RunCounters()
        self._lock = threading.Lock()
        self._command: VelocityCommand | None = None
        self._stop = threading.Event()
        self.image_pubs = [self.create_publisher(Image, topic, 5) for topic in TOPICS[:2]]
        self.info_pubs = [self.create_publisher(CameraInfo, topic, 5) for topic in TOPICS[2:]]
        self.odometry_pub = self.create_publisher(Odometry, "odom", 50)
        self.ground_truth_pub = self.create_publisher(PoseStamped, "ground_truth/pose", 50)
        self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.tf_broadcaster = tf2_ros.TransformBroadcaster(self)
        self.static_broadcaster = tf2_ros.StaticTransformBroadcaster(self)
        self.command_sub = self.create_subscription(Twist, "cmd_vel", self._on_command, 50)
        self.create_subscription(DiagnosticArray, FRAME_STATUS_TOPIC, self._on_frame_status, FRAME_STATUS_DEPTH)
        create_watchdog_timer(self, 1.0, self._publish_run_status)
        self._thread = threading.Thread(target=self._run_safely, name="sim", daemon=True)
        self._thread.start()

    # ---- executor thread ------------------------------------------------------------------------------------
    def _on_command(self, msg: Twist) -> None:
        with self._lock:
            self._command = VelocityCommand(float(msg.linear.x), float(msg.angular.z), self._now_ns)
        self.lockstep.command()

    def _on_frame_status(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            for kv in status.values:
                if kv.key == FRAME_STAMP_KEY:
                    self.lockstep.answer(int(kv.value))

    def _publish_run_status(self) -> None:
        sim = self.sim
        with self._lock:
            c = self.counters
            values = {
                "finished": str(c.finished).lower(),
                "frames": c.frames,
                "frames_unanswered": c.frames_unanswered,
                "odometry_messages": c.odometry_messages,
                "commands_missed": c.commands_missed,
                "sim_time_s": f"{(sim.now_ns - sim.start_ns) * 1e-9 if sim is not None else 0.0:.3f}",
                "wall_time_s": f"{time.monotonic() - c.wall_started if c.wall_started is not None else 0.0:.3f}",
                "distance_m": f"{sim.distance_m if sim is not None else 0.0:.3f}",
                "clock": self.cfg.clock,
                "error": c.error,
            }
            level, message = DiagnosticStatus.OK, "starting"
            if c.error:
                level, message = DiagnosticStatus.ERROR, f"simulation failed: {c.error}"
            elif c.finished:
                message = "finished"
            elif c.wall_started is not None:
                message = "running"
        array = DiagnosticArray()
        array.header.stamp = conversions.ns_to_stamp(self._now_ns)
        array.status = [
            DiagnosticStatus(
                level=level,
                name=f"{self.get_name()}: {RUN_STATUS}",
                message=message,
                hardware_id=self.get_name(),
                values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
            )
        ]
        self.diagnostics_pub.publish(array)

    # ---- simulation thread ----------------------------------------------------------------------------------
    def _run_safely(self) -> None:
        cfg = self.cfg
        try:
            self.get_logger().info(f"building world {cfg.seed} (style {cfg.style}, {cfg.path_length_m} m of path)")
            self.sim = LiveSimulator(cfg, self._sim_config, self._vehicle_config)
            self._now_ns = self.sim.now_ns
            self.get_logger().info(
                f"{cfg.mode} run {cfg.run_id} at {cfg.lighting}, {cfg.clock} clock, "
                f"{cfg.image_width}x{cfg.image_height} at {cfg.camera_rate_hz} Hz"
            )
            self._wait_for_loop()
            if not self._stop.is_set():
                self._run(self.sim)
            with self._lock:
                self.counters.finished = not self._stop.is_set()
                c = self.counters
            if c.finished:
                self.get_logger().info(
                    f"run finished: {c.frames} frames ({c.frames_unanswered} unanswered), {c.commands_missed} commands "
                    f"missed, {self.sim.distance_m:.2f} m in {(self.sim.now_ns - self.sim.start_ns) * 1e-9:.2f} s"
                )
        except Exception as exc:  # the node stays up, and its run status says why it stopped
            with self._lock:
                self.counters.error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"simulation failed:\n{traceback.format_exc()}")
        finally:
            if self.sim is not None:
                self.sim.close()
        self._publish_run_status()

    def _wait_for_loop(self) -> None:
        """Until the images have a subscriber (and a repeat in lock-step a cmd_vel publisher), each connected end to
        end: every subscriber the graph knows of the images (and odometry) matched, the cmd_vel publisher matched (a
        message sent before its endpoints matched would be lost, and lock-step would wait for its answer in vain);
        or the timeout."""
        deadline = time.monotonic() + self.cfg.start_timeout_s
        needs_commands = self.cfg.mode == "repeat" and self.cfg.clock == "lockstep"
        while not self._stop.is_set() and time.monotonic() < deadline:
            images = all(self._matched(p) for p in self.image_pubs)
            commands = not needs_commands or (
                self._matched(self.odometry_pub) and self.command_sub.get_publisher_count() > 0
            )
            if images and commands:
                return
            self._stop.wait(0.05)
        if not self._stop.is_set():
            self.get_logger().warning(f"starting without the loop's nodes after {self.cfg.start_timeout_s} s")

    def _matched(self, publisher) -> bool:
        """`publisher` has subscribers, and every one the ROS graph knows of is matched to it."""
        discovered = self.count_subscribers(publisher.topic_name)
        return discovered > 0 and publisher.get_subscription_count() >= discovered

    def _run(self, sim: LiveSimulator) -> None:
        cfg = self.cfg
        lockstep = cfg.clock == "lockstep"
        odometry_period, camera_period = period_ns(cfg.odometry_rate_hz), period_ns(cfg.camera_rate_hz)
        end_ns = sim.start_ns + int(cfg.duration_s * 1e9) if cfg.duration_s > 0 else None
        self._publish_static_transforms(sim)
        next_odometry = next_frame = sim.start_ns
        wall_start = time.monotonic()
        with self._lock:
            self.counters.wall_started = wall_start
        previous_odometry = (sim.now_ns, sim.T_odom_vehicle.copy())
        while not self._stop.is_set():
            if not lockstep:  # sim time follows the wall clock
                wall_due = wall_start + (sim.now_ns - sim.start_ns) * 1e-9 / cfg.realtime_factor
                self._stop.wait(max(0.0, wall_due - time.monotonic()))
            if sim.now_ns >= next_odometry:
                self._publish_odometry(sim, previous_odometry)
                previous_odometry = (sim.now_ns, sim.T_odom_vehicle.copy())
                next_odometry += odometry_period
                if lockstep and cfg.mode == "repeat":
                    self._await_command()
            if sim.now_ns >= next_frame:
                self._publish_frame(sim, lockstep)
                next_frame += camera_period
                if sim.teach_finished or (end_ns is not None and sim.now_ns >= end_ns):
                    break
            with self._lock:
                command = self._command
            sim.advance(min(next_odometry, next_frame), command)
            self._now_ns = sim.now_ns

    def _await_command(self) -> None:
        with self._lock:
            self.counters.odometry_messages += 1
            wanted = self.counters.odometry_messages
        if not self.lockstep.wait_commands(wanted, self.cfg.lockstep_timeout_s) and not self._stop.is_set():
            with self._lock:
                self.counters.commands_missed += 1
            self.get_logger().warning(
                f"no command answered odometry message {wanted} within {self.cfg.lockstep_timeout_s} s",
                throttle_duration_sec=5.0,
            )

    def _publish_frame(self, sim: LiveSimulator, lockstep: bool) -> None:
        cfg = self.cfg
        frame = sim.render()
        left_info, right_info = conversions.rig_to_camera_infos(
            sim.rig, frame.stamp_ns, cfg.left_frame, cfg.right_frame
        )
        self.info_pubs[0].publish(left_info)
        self.info_pubs[1].publish(right_info)
        self.image_pubs[0].publish(conversions.array_to_image(frame.left, "rgb8", frame.stamp_ns, cfg.left_frame))
        self.image_pubs[1].publish(conversions.array_to_image(frame.right, "rgb8", frame.stamp_ns, cfg.right_frame))
        with self._lock:
            self.counters.frames += 1
        answerable = self.image_pubs[0].get_subscription_count() > 0  # nobody to answer: no wait
        if lockstep and answerable and not self.lockstep.wait_answer(frame.stamp_ns, cfg.lockstep_timeout_s):
            if self._stop.is_set():
                return
            with self._lock:
                self.counters.frames_unanswered += 1
            self.get_logger().warning(
                f"no node answered the frame at {frame.stamp_ns * 1e-9:.3f} s within {cfg.lockstep_timeout_s} s",
                throttle_duration_sec=5.0,
            )

    def _publish_odometry(self, sim: LiveSimulator, previous: tuple[int, np.ndarray]) -> None:
        cfg = self.cfg
        stamp_ns, T_odom_vehicle = sim.now_ns, sim.T_odom_vehicle
        clock = Clock()
        clock.clock = conversions.ns_to_stamp(stamp_ns)
        self.clock_pub.publish(clock)
        twist = np.zeros(6)
        if stamp_ns > previous[0]:
            twist = body_twist(previous[1], T_odom_vehicle, (stamp_ns - previous[0]) * 1e-9)
        pose_covariance, twist_covariance = odometry_covariances(sim.distance_m)
        self.odometry_pub.publish(
            conversions.matrix_to_odometry(
                T_odom_vehicle, stamp_ns, cfg.odom_frame, cfg.base_frame, twist, pose_covariance, twist_covariance
            )
        )
        self.tf_broadcaster.sendTransform(
            conversions.matrix_to_transform_stamped(T_odom_vehicle, stamp_ns, cfg.odom_frame, cfg.base_frame)
        )
        self.ground_truth_pub.publish(
            conversions.matrix_to_pose_stamped(sim.T_world_vehicle, stamp_ns, cfg.world_frame)
        )

    def _publish_static_transforms(self, sim: LiveSimulator) -> None:
        rig, cfg = sim.rig, self.cfg
        T_vehicle_right = rig.T_vehicle_camera @ transforms.make_transform(np.eye(3), [rig.baseline, 0.0, 0.0])
        self.static_broadcaster.sendTransform(
            [
                conversions.matrix_to_transform_stamped(
                    rig.T_vehicle_camera, sim.now_ns, cfg.base_frame, cfg.left_frame
                ),
                conversions.matrix_to_transform_stamped(T_vehicle_right, sim.now_ns, cfg.base_frame, cfg.right_frame),
            ]
        )

    def close(self) -> None:
        """Stop the simulation (the frame in progress finishes; its thread releases the renderer)."""
        self._stop.set()
        self.lockstep.stop()
        self._thread.join(timeout=30.0)


def main(argv: list[str] | None = None) -> int:
    return run_node(SimNode, NODE_NAME, argv)


if __name__ == "__main__":
    sys.exit(main())
