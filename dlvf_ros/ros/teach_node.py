"""teach_node: builds a teach map from live stereo + odometry (wiring around `dlvf_ros.localization.Teacher`).

Inputs: approximate-time synchronised left/right Image + CameraInfo (sensor-data QoS), nav_msgs/Odometry on `odom`,
/tf_static (base_link -> left camera extrinsic), and optionally geometry_msgs/PoseStamped ground truth on
`ground_truth/pose` (world frame; stored per keyframe for evaluation when present).
Outputs: the map store at `map_path` (a keyframe every `teach.keyframe_distance_m` / `teach.keyframe_angle_deg` of
odometry motion, each committed atomically), the taught path on `localization/path` (nav_msgs/Path, transient
local, re-published per keyframe), each frame's result on `localization/frame_status` (`keyframe_id` the keyframe
stored from it, `last_error` why it was skipped: `dlvf_ros.localization.frame_record`), the ~1 Hz health summary on
/diagnostics (rate, latency, input age, keyframes, frames, drops, last error, input watchdog: `dlvf_ros.ros.node_base`).

Frames are queued (bounded; the oldest is dropped with a warning when the worker falls behind) and processed in
order by a worker thread; only keyframes cost feature extraction. SIGINT/SIGTERM process the queued frames, then
close the map; a killed node still leaves a map that loads up to its last complete keyframe (the map store commits
each keyframe atomically).
"""

from __future__ import annotations

import pathlib
import sys
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path

from dlvf_ros.config import setting, setting_with_default
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.localization.teach import TeachConfig, Teacher
from dlvf_ros.ros import conversions
from dlvf_ros.ros.node_base import StereoNode, StereoNodeConfig, StereoSet
from dlvf_ros.ros.node_main import StartupError, make_node_backend, run_node
from dlvf_ros.ros.node_parameters import ParameterSpec, node_parameter_specs
from dlvf_ros.ros.odometry_buffer import OdometryLookupError
from dlvf_ros.ros.static_transforms import StaticTransforms
from dlvf_ros.ros.stereo_input import StereoInputError, decode_stereo

NODE_NAME = "teach_node"


@dataclass
class TeachNodeConfig(StereoNodeConfig):
    """Node-level settings (the teacher's are `TeachConfig`, parameters `teach.*`)."""

    # a keyframe pose is odometry at its stamp, never an older one held
    odometry_max_hold_s: float = setting_with_default(StereoNodeConfig, "odometry_max_hold_s", 0.0)
    # the worker has a queue: waiting for late odometry costs no frames
    odometry_wait_s: float = setting_with_default(StereoNodeConfig, "odometry_wait_s", 1.0)
    extrinsic_wait_s: float = setting(
        5.0,
        "a frame waits up to this long (s) for the camera extrinsic on /tf_static before it is skipped: the first "
        "images can arrive before the latched transform does",
        (0.0, 600.0),
    )
    overwrite: bool = setting(False, "replace an existing map store at map_path")
    max_pending_frames: int = setting(
        30, "frames queued for the worker; beyond this the oldest is dropped", (1, 10_000)
    )
    use_ground_truth: bool = setting(
        True, "store ground truth (ground_truth/pose, world frame) with each keyframe when available"
    )
    shutdown_timeout_s: float = setting(
        30.0, "on shutdown, time (s) allowed for processing the queued frames", (0.0, 3600.0)
    )


PARAMETERS = ((TeachNodeConfig, ""), (TeachConfig, "teach."))


def parameter_specs() -> list[ParameterSpec]:
    """Every parameter of teach_node with its default, description and range (from the config dataclasses)."""
    return node_parameter_specs(PARAMETERS)


class TeachNode(StereoNode):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME, PARAMETERS)
        self.teach_config: TeachConfig = self.core_config
        self._check_map_path()
        self.backend = make_node_backend(NODE_NAME, self.cfg.backend, self.cfg.model, self.cfg.torch_threads)
        self.teacher: Teacher | None = None
        self._rig: StereoRig | None = None
        self.ground_truth = self.make_odometry_buffer()
        self.static_transforms = StaticTransforms(self)
        self.ground_truth_subscription = (
            self.create_subscription(PoseStamped, "ground_truth/pose", self._on_ground_truth, 50)
            if self.cfg.use_ground_truth
            else None
        )
        self._path = Path()
        self._path.header.frame_id = self.cfg.map_frame
        # frames are queued and processed in order; only keyframes cost feature extraction
        self.start_input(mailbox_capacity=self.cfg.max_pending_frames, drain_on_stop=True, warn_on_drop=True)
        self.get_logger().info(f"teaching into {self.cfg.map_path} with {self.backend.name} features")

    def _check_map_path(self) -> None:
        if not self.cfg.map_path:
            raise StartupError(f"{NODE_NAME}: parameter map_path is empty; pass -p map_path:=/path/to/new_map")
        map_path = pathlib.Path(self.cfg.map_path)
        if map_path.exists() and any(map_path.iterdir()) and not self.cfg.overwrite:
            raise StartupError(
                f"{NODE_NAME}: map directory {map_path} exists and is not empty; choose another "
                "map_path or pass -p overwrite:=true"
            )

    # ---- executor thread ------------------------------------------------------------------------------------
    def _on_ground_truth(self, msg: PoseStamped) -> None:
        try:
            stamp_ns, _, T = conversions.pose_stamped_to_matrix(msg)
        except ValueError:
            return
        if transforms.is_rigid(T, tol=1e-4):
            self.ground_truth.add(stamp_ns, T)

    def _summary(self) -> tuple[bytes, str, dict]:
        keyframes = self.teacher.num_keyframes if self.teacher else 0
        return DiagnosticStatus.OK, f"teaching: {keyframes} keyframes", {"keyframes": keyframes}

    # ---- worker thread --------------------------------------------------------------------------------------
    def _process(self, frames: StereoSet) -> None:
        stamp_ns = frames.stamp_ns
        try:
            T_vehicle_camera = self.static_transforms.lookup(
                self.cfg.base_frame, frames.left_info.header.frame_id, self.cfg.extrinsic_wait_s
            )
            frame = decode_stereo(frames.left, frames.right, frames.left_info, frames.right_info, T_vehicle_camera)
            teacher = self._teacher_for(frame.rig)
            T_odom_vehicle = self.odometry.lookup(stamp_ns, self.cfg.odometry_wait_s)
            T_world_vehicle = self._ground_truth_at(stamp_ns)
            keyframe = teacher.add_frame(stamp_ns, frame.left_rgb, frame.right_rgb, T_odom_vehicle, T_world_vehicle)
        except (StereoInputError, OdometryLookupError, LookupError, ValueError) as exc:
            self._frame_failed(frames, f"frame at {stamp_ns * 1e-9:.3f} s skipped: {exc}")
            return
        except OSError as exc:
            self._frame_failed(frames, f"cannot write the map at {self.cfg.map_path}: {exc}")
            return
        self._publish_frame_result(
            frames,
            DiagnosticStatus.OK,
            "frame" if keyframe is None else f"keyframe {keyframe.keyframe_id}",
            keyframe_id=None if keyframe is None else keyframe.keyframe_id,
        )
        if keyframe is not None:
            pose = conversions.matrix_to_pose_stamped(keyframe.T_map_keyframe, stamp_ns, self.cfg.map_frame)
            self._path.poses.append(pose)
            self._path.header.stamp = pose.header.stamp
            self.path_pub.publish(self._path)

    def _ground_truth_at(self, stamp_ns: int) -> np.ndarray | None:
        """Ground truth at the image stamp, or None when nobody publishes it. While a publisher exists, wait up to
        odometry_wait_s for its sample: the first images can arrive before the first ground-truth message."""
        if self.ground_truth_subscription is None:
            return None
        if len(self.ground_truth) == 0 and self.count_publishers(self.ground_truth_subscription.topic_name) == 0:
            return None
        try:
            return self.ground_truth.lookup(stamp_ns, self.cfg.odometry_wait_s)
        except OdometryLookupError:
            return None

    def _teacher_for(self, rig) -> Teacher:
        """The teacher, created on the first frame with the calibration from CameraInfo; it must not change."""
        if self.teacher is None:
            self.teacher = Teacher.create(
                self.cfg.map_path, self.backend, rig, self.teach_config, overwrite=self.cfg.overwrite
            )
            self._rig = rig
        elif self._rig is not None and not rig.matches(self._rig):  # set with the teacher
            raise StereoInputError(
                f"camera_info calibration changed during the teach pass (now {rig.to_dict()}, "
                f"map has {self._rig.to_dict()}); restart teaching into a new map"
            )
        return self.teacher

    def _frame_failed(self, frames: StereoSet, error: str) -> None:
        self.get_logger().error(error, throttle_duration_sec=5.0)
        self._publish_frame_result(frames, DiagnosticStatus.ERROR, error, error=error)

    def close(self) -> None:
        """Process the queued frames (up to `shutdown_timeout_s`), then report the finished map."""
        abandoned = self.stop_input(timeout_s=self.cfg.shutdown_timeout_s)
        keyframes = self.teacher.num_keyframes if self.teacher else 0
        used = self.frames_processed - self.frames_failed
        message = f"map {self.cfg.map_path}: {keyframes} keyframes from {used} frames"
        if self.frames_failed:
            message += f" ({self.frames_failed} skipped)"
        if abandoned:
            message += f"; {abandoned} queued frames abandoned after {self.cfg.shutdown_timeout_s} s"
        self.get_logger().info(message)


def main(argv: list[str] | None = None) -> int:
    return run_node(TeachNode, NODE_NAME, argv)


if __name__ == "__main__":
    sys.exit(main())
