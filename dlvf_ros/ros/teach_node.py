"""teach_node: builds a teach map from live stereo + odometry (wiring around `dlvf_ros.localization.Teacher`).

Inputs: approximate-time synchronised left/right Image + CameraInfo (sensor-data QoS), nav_msgs/Odometry on `odom`,
/tf_static (base_link -> left camera extrinsic), and optionally geometry_msgs/PoseStamped ground truth on
`ground_truth/pose` (world frame; stored per keyframe for evaluation when present).
Outputs: the map store at `map_path` (a keyframe every `teach.keyframe_distance_m` / `teach.keyframe_angle_deg` of
odometry motion, each committed atomically), the taught path on `localization/path` (nav_msgs/Path, transient
local, re-published per keyframe), /diagnostics (keyframes, frames, drops, last error, input watchdog).

Frames are queued (bounded; the oldest is dropped with a warning when the worker falls behind) and processed in
order by a worker thread; only keyframes cost feature extraction. SIGINT/SIGTERM process the queued frames, then
close the map; a killed node still leaves a map that loads up to its last complete keyframe (the map store commits
each keyframe atomically).
"""

from __future__ import annotations

import pathlib
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from dlvf_ros.geometry import transforms
from dlvf_ros.localization.teach import TeachConfig, Teacher
from dlvf_ros.ros import conversions
from dlvf_ros.ros.compat import describe as describe_compat
from dlvf_ros.ros.node_main import StartupError, make_node_backend, run_node
from dlvf_ros.ros.node_parameters import (
    Doc,
    ParameterSpec,
    read_node_configs,
    sgbm_docs,
    specs_from_config,
    stereo_node_docs,
)
from dlvf_ros.ros.odometry_buffer import OdometryBuffer, OdometryLookupError, add_odometry_message
from dlvf_ros.ros.static_transforms import StaticTransforms
from dlvf_ros.ros.stereo_input import StereoInput, StereoInputError, create_watchdog_timer, decode_stereo

NODE_NAME = "teach_node"
TEACH_PREFIX = "teach."


@dataclass
class TeachNodeConfig:
    """Node-level settings (the teacher's are `TeachConfig`, parameters `teach.*`)."""

    map_path: str = ""
    overwrite: bool = False
    backend: str = "learned"
    model: str = ""
    queue_size: int = 10
    slop_s: float = 0.02
    max_pending_frames: int = 30
    no_input_warning_s: float = 3.0
    diagnostics_period_s: float = 1.0
    odometry_horizon_s: float = 10.0
    odometry_max_gap_s: float = 0.5
    odometry_max_hold_s: float = 0.0  # a keyframe pose is odometry at its stamp, never an older one held
    odometry_wait_s: float = 1.0  # the worker has a queue: waiting for late odometry costs no frames
    use_ground_truth: bool = True
    shutdown_timeout_s: float = 30.0
    map_frame: str = "map"
    base_frame: str = "base_link"
    torch_threads: int = 2


NODE_DOCS = {
    "map_path": Doc("map store directory to create (required)"),
    "overwrite": Doc("replace an existing map store at map_path"),
    "backend": Doc("feature backend: learned (needs model), orb, sift or xfeat (optional extra)"),
    "model": Doc("exported feature model (.pt) for the learned backend; empty: the one shipped in models/"),
    **stereo_node_docs(),
    "max_pending_frames": Doc("frames queued for the worker; beyond this the oldest is dropped", 1, 10_000),
    "use_ground_truth": Doc("store ground truth (ground_truth/pose, world frame) with each keyframe when available"),
    "shutdown_timeout_s": Doc("on shutdown, time (s) allowed for processing the queued frames", 0.0, 3600.0),
    "map_frame": Doc("frame of the map being taught (the teach odometry frame)"),
    "base_frame": Doc("vehicle frame (REP 105 base_link), parent of the camera on /tf_static"),
}

_T = TEACH_PREFIX
TEACH_DOCS = {
    _T + "keyframe_distance_m": Doc("odometry distance (m) between keyframes", 0.001, 1000.0),
    _T + "keyframe_angle_deg": Doc("odometry rotation (deg) between keyframes", 0.001, 360.0),
    _T + "min_valid_points": Doc("a frame with fewer stereo points is skipped, the next one tried", 3, 1_000_000),
    _T + "store_images": Doc("store the keyframe stereo images (needed by `dlvf map reextract`)"),
    **sgbm_docs(_T + "sgbm."),
}


def parameter_specs() -> list[ParameterSpec]:
    """Every parameter of teach_node with its default (from the config dataclasses), description and range."""
    return specs_from_config(TeachNodeConfig(), NODE_DOCS) + specs_from_config(TeachConfig(), TEACH_DOCS, TEACH_PREFIX)


class TeachNode(Node):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.cfg, self.teach_config = read_node_configs(
            self,
            NODE_NAME,
            parameter_specs(),
            [(TeachNodeConfig, NODE_DOCS, ""), (TeachConfig, TEACH_DOCS, TEACH_PREFIX)],
        )
        self._check_map_path()
        self.backend = make_node_backend(NODE_NAME, self.cfg.backend, self.cfg.model, self.cfg.torch_threads)
        self.get_logger().info(describe_compat())
        self.teacher: Teacher | None = None
        self._rig = None
        self._queue: deque = deque()
        self._queue_cv = threading.Condition()
        self._stopping = False
        self._stats_lock = threading.Lock()
        self.frames_received = 0
        self.frames_processed = 0
        self.frames_failed = 0
        self.frames_dropped = 0
        self.last_error = ""

        self.odometry = OdometryBuffer(
            self.cfg.odometry_horizon_s, self.cfg.odometry_max_gap_s, self.cfg.odometry_max_hold_s
        )
        self.ground_truth = OdometryBuffer(
            self.cfg.odometry_horizon_s, self.cfg.odometry_max_gap_s, self.cfg.odometry_max_hold_s
        )
        self.static_transforms = StaticTransforms(self)
        latched = QoSProfile(
            depth=1,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE,
        )
        self.path_pub = self.create_publisher(Path, "localization/path", latched)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(Odometry, "odom", self._on_odometry, 50)
        self.ground_truth_subscription = (
            self.create_subscription(PoseStamped, "ground_truth/pose", self._on_ground_truth, 50)
            if self.cfg.use_ground_truth
            else None
        )
        self.stereo = StereoInput(self, self._on_stereo, self.cfg.queue_size, self.cfg.slop_s)
        create_watchdog_timer(self, self.cfg.diagnostics_period_s, self._on_diagnostics_timer)
        self._path = Path()
        self._path.header.frame_id = self.cfg.map_frame
        self._worker = threading.Thread(target=self._work, name="teach_worker", daemon=True)
        self._worker.start()
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
    def _on_odometry(self, msg: Odometry) -> None:
        try:
            add_odometry_message(self.odometry, msg)
        except ValueError as exc:
            self._report_problem(str(exc))

    def _on_ground_truth(self, msg: PoseStamped) -> None:
        try:
            stamp_ns, _, T = conversions.pose_stamped_to_matrix(msg)
        except ValueError:
            return
        if transforms.is_rigid(T, tol=1e-4):
            self.ground_truth.add(stamp_ns, T)

    def _on_stereo(self, left, right, left_info, right_info) -> None:
        with self._queue_cv:
            self._queue.append((left, right, left_info, right_info))
            self.frames_received += 1
            if len(self._queue) > self.cfg.max_pending_frames:
                self._queue.popleft()
                self.frames_dropped += 1
                self.get_logger().warning(
                    f"teach worker behind: dropped the oldest queued frame ({self.frames_dropped} so far)",
                    throttle_duration_sec=5.0,
                )
            self._queue_cv.notify()

    def _on_diagnostics_timer(self) -> None:
        silent_s, warning = self.stereo.watchdog(self.cfg.no_input_warning_s, self.get_logger())
        level, message = DiagnosticStatus.OK, "teaching"
        if warning is not None:
            level, message = DiagnosticStatus.WARN, warning
        with self._stats_lock:
            values = {
                "keyframes": self.teacher.num_keyframes if self.teacher else 0,
                "frames_received": self.frames_received,
                "frames_processed": self.frames_processed,
                "frames_failed": self.frames_failed,
                "frames_dropped": self.frames_dropped,
                "last_error": self.last_error,
                "seconds_since_stereo": f"{silent_s:.1f}",
            }
        self._publish_status(level, message, values)

    # ---- worker thread --------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._queue_cv:
                while not self._queue and not self._stopping:
                    self._queue_cv.wait()
                if not self._queue:
                    return
                item = self._queue.popleft()
            try:
                self._process(*item)
            except Exception as exc:
                self.get_logger().error(f"internal error on a frame:\n{traceback.format_exc()}")
                self._frame_failed(
                    f"frame at {conversions.stamp_to_ns(item[0].header.stamp) * 1e-9:.3f} s "
                    f"failed: internal error {type(exc).__name__}: {exc}"
                )

    def _process(self, left, right, left_info, right_info) -> None:
        stamp_ns = conversions.stamp_to_ns(left.header.stamp)
        try:
            T_vehicle_camera = self.static_transforms.lookup(self.cfg.base_frame, left_info.header.frame_id)
            frame = decode_stereo(left, right, left_info, right_info, T_vehicle_camera)
            teacher = self._teacher_for(frame.rig)
            T_odom_vehicle = self.odometry.lookup(stamp_ns, self.cfg.odometry_wait_s)
            T_world_vehicle = self._ground_truth_at(stamp_ns)
            keyframe = teacher.add_frame(stamp_ns, frame.left_rgb, frame.right_rgb, T_odom_vehicle, T_world_vehicle)
        except (StereoInputError, OdometryLookupError, LookupError, ValueError) as exc:
            self._frame_failed(f"frame at {stamp_ns * 1e-9:.3f} s skipped: {exc}")
            return
        except OSError as exc:
            self._frame_failed(f"cannot write the map at {self.cfg.map_path}: {exc}")
            return
        with self._stats_lock:
            self.frames_processed += 1
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
        elif not rig.matches(self._rig):
            raise StereoInputError(
                f"camera_info calibration changed during the teach pass (now {rig.to_dict()}, "
                f"map has {self._rig.to_dict()}); restart teaching into a new map"
            )
        return self.teacher

    def _frame_failed(self, error: str) -> None:
        with self._stats_lock:
            self.frames_failed += 1
        self._report_problem(error)

    def _report_problem(self, error: str) -> None:
        with self._stats_lock:
            self.last_error = error
        self.get_logger().error(error, throttle_duration_sec=5.0)
        self._publish_status(DiagnosticStatus.ERROR, error, {"last_error": error})

    def _publish_status(self, level: bytes, message: str, values: dict) -> None:
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [
            DiagnosticStatus(
                level=level,
                name=f"{self.get_name()}: teach",
                message=message,
                hardware_id=self.get_name(),
                values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
            )
        ]
        self.diagnostics_pub.publish(array)

    def close(self) -> None:
        """Process the queued frames (up to `shutdown_timeout_s`), then report the finished map."""
        deadline = time.monotonic() + self.cfg.shutdown_timeout_s
        with self._queue_cv:
            self._stopping = True
            self._queue_cv.notify()
        self._worker.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._queue_cv:
            abandoned = len(self._queue)
            self._queue.clear()
        keyframes = self.teacher.num_keyframes if self.teacher else 0
        message = f"map {self.cfg.map_path}: {keyframes} keyframes from {self.frames_processed} frames"
        if abandoned:
            message += f"; {abandoned} queued frames abandoned after {self.cfg.shutdown_timeout_s} s"
        self.get_logger().info(message)


def main(argv: list[str] | None = None) -> int:
    return run_node(TeachNode, NODE_NAME, argv)


if __name__ == "__main__":
    sys.exit(main())
