"""localizer_node: localizes live stereo against a teach map (wiring around `dlvf_ros.localization.Localizer`).

Inputs: approximate-time synchronised left/right Image + CameraInfo (`stereo/{left,right}/{image_raw,camera_info}`,
sensor-data QoS), nav_msgs/Odometry on `odom`. Calibration comes from CameraInfo (intrinsics, baseline) and the
map's vehicle-camera extrinsic; it must match the map's.
Outputs: geometry_msgs/PoseWithCovarianceStamped on `localization/pose` (stamped with the image time, frame `map`),
map -> odom on /tf (REP 105; optionally map -> base_link instead, for robots without an odom frame on tf), the taught
path on `localization/path` (nav_msgs/Path, transient local), /diagnostics: one status per processed frame (state,
inliers, latency, keyframe, error) and a periodic summary (rate, latency, drops, last error, input watchdog).

Threads: the executor thread only stores the newest synchronised set in a one-slot mailbox (an unprocessed older
set is dropped as stale, never queued); a worker thread decodes, localizes and publishes.
Start-up failures (no map, map/model mismatch, bad parameters) are fatal with a message naming the fix; bad input at
run time (encoding, size, calibration, unsynchronised or missing topics, NaN odometry) is reported on /diagnostics
and the log, and the node keeps running.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from dlvf_ros.evaluation import records
from dlvf_ros.geometry import transforms
from dlvf_ros.localization.health import HealthState
from dlvf_ros.localization.localizer import Localizer, LocalizerConfig
from dlvf_ros.ros import conversions
from dlvf_ros.ros.compat import describe as describe_compat
from dlvf_ros.ros.compat import tf2_ros
from dlvf_ros.ros.node_main import StartupError, make_node_backend, run_node
from dlvf_ros.ros.node_parameters import (
    Doc,
    ParameterSpec,
    prefixed_docs,
    read_node_configs,
    sgbm_docs,
    specs_from_config,
    stereo_node_docs,
)
from dlvf_ros.ros.odometry_buffer import OdometryBuffer, OdometryLookupError, add_odometry_message
from dlvf_ros.ros.stereo_input import StereoInput, StereoInputError, create_watchdog_timer, decode_stereo

NODE_NAME = "localizer_node"
LOCALIZER_PREFIX = "localizer."


@dataclass
class LocalizerNodeConfig:
    """Node-level settings (the localizer core's are `LocalizerConfig`, parameters `localizer.*`)."""

    map_path: str = ""
    backend: str = ""  # "" = the backend the map was built with
    model: str = ""
    queue_size: int = 10
    slop_s: float = 0.02
    no_input_warning_s: float = 3.0
    diagnostics_period_s: float = 1.0
    odometry_horizon_s: float = 10.0
    odometry_max_gap_s: float = 0.5
    odometry_max_hold_s: float = 0.25
    odometry_wait_s: float = 0.2
    publish_tf: bool = True
    publish_map_to_base_link: bool = False
    publish_dead_reckoning: bool = False
    transform_tolerance_s: float = 0.1
    map_frame: str = "map"
    odom_frame: str = "odom"
    base_frame: str = "base_link"
    torch_threads: int = 2


NODE_DOCS = {
    "map_path": Doc("teach map store directory (required; `dlvf teach` or teach_node writes it)"),
    "backend": Doc("feature backend: learned, orb, sift or xfeat; empty: the backend the map was built with"),
    "model": Doc(
        "exported feature model (.pt) for a learned map (the one it was built with); empty: the one shipped in models/"
    ),
    **stereo_node_docs(),
    "publish_tf": Doc("broadcast the localization on /tf"),
    "publish_map_to_base_link": Doc(
        "broadcast map -> base_link instead of map -> odom (only for robots whose tf tree has no odom -> base_link)"
    ),
    "publish_dead_reckoning": Doc(
        "also publish poses of frames without a fix (last fix + odometry, grown "
        "covariance); off: only fixes are published"
    ),
    "transform_tolerance_s": Doc("future-date the map -> odom transform by this much (s), as AMCL does", 0.0, 10.0),
    "map_frame": Doc("frame of the teach map (REP 105 map)"),
    "odom_frame": Doc("odometry frame (REP 105 odom)"),
    "base_frame": Doc("vehicle frame (REP 105 base_link)"),
}

_L = LOCALIZER_PREFIX
LOCALIZER_DOCS = {
    **sgbm_docs(_L + "sgbm."),
    **prefixed_docs(
        _L + "matching.",
        {
            "zncc_min": Doc("learned features: lowest ZNCC of a descriptor match", -1.0, 1.0),
            "cosine_min": Doc("XFeat: lowest cosine similarity of a descriptor match", -1.0, 1.0),
            "hamming_max": Doc("ORB: largest Hamming distance (bits) of a descriptor match", 0, 256),
            "lowe_ratio": Doc("SIFT: Lowe ratio test threshold", 0.01, 1.0),
        },
    ),
    **prefixed_docs(
        _L + "ransac.",
        {
            "iterations": Doc("RANSAC hypotheses in total, at most", 1, 1_000_000),
            "hypotheses_per_round": Doc("RANSAC hypotheses scored together between early-stop checks", 1, 100_000),
            "sample_size": Doc("points per RANSAC minimal sample", 3, 1000),
            "inlier_threshold_m": Doc("3-D distance (m) under which a match is an inlier", 0.001, 100.0),
            "early_stop_inlier_ratio": Doc("stop RANSAC once this fraction of matches are inliers", 0.01, 1.0),
            "min_inliers": Doc("fewer RANSAC inliers than this is no fix", 3, 100_000),
            "weighted_sampling": Doc("draw RANSAC samples in proportion to match weights"),
            "refinement_steps": Doc("weighted-SVD refits on the inliers", 0, 100),
            "seed": Doc("seed of the RANSAC sampler", 0, 2**31 - 1),
        },
    ),
    **prefixed_docs(
        _L + "refine.",
        {
            "iterations": Doc("Gauss-Newton iterations of the stereo reprojection refinement", 2, 1000),
            "initial_threshold_px": Doc(
                "refinement inlier gate (px) of the second iteration, shrinking to inlier_threshold_px", 0.01, 10_000.0
            ),
            "inlier_threshold_px": Doc("final refinement inlier gate (px) on the (u, v, d) residual", 0.01, 1000.0),
            "huber_px": Doc("Huber loss width (px) of the refinement", 0.01, 1000.0),
            "min_sigma_px": Doc("floor of the residual standard deviation (px) used for the covariance", 0.001, 100.0),
            "weight_by_scores": Doc("scale refinement residuals by the match weights (descriptor quality x scores)"),
        },
    ),
    **prefixed_docs(
        _L + "window.",
        {
            "radius_m": Doc("search radius (m) around the expected position right after a fix", 0.01, 10_000.0),
            "growth_per_m": Doc("extra search radius per metre driven since the last fix", 0.0, 100.0),
            "degraded_factor": Doc("search radius multiplier while DEGRADED", 1.0, 100.0),
            "max_radius_m": Doc("largest search radius (m)", 0.01, 100_000.0),
            "max_candidates": Doc(
                "keyframes in the local submap (nearest first, the first is the reference)", 1, 10_000
            ),
            "global_ransac_candidates": Doc(
                "global search: keyframes with most matches tried as submap references", 1, 10_000
            ),
        },
    ),
    **prefixed_docs(
        _L + "health.",
        {
            "good_inliers": Doc("inliers for a frame to count as good", 1, 1_000_000),
            "frames_to_degrade": Doc("non-good frames in a row: LOCALIZED -> DEGRADED", 1, 100_000),
            "frames_to_recover": Doc("good frames in a row: DEGRADED -> LOCALIZED", 1, 100_000),
            "frames_to_lose": Doc("frames without a fix in a row: -> LOST", 1, 100_000),
            "max_dead_reckoning_m": Doc("metres on odometry alone since the last fix: -> LOST", 0.001, 100_000.0),
        },
    ),
    **prefixed_docs(
        _L + "covariance.",
        {
            "min_sigma_m": Doc("floor of the position standard deviation (m)", 0.0, 100.0),
            "min_sigma_rad": Doc("floor of the rotation standard deviation (rad)", 0.0, 3.2),
            "growth_m2_per_m": Doc("position variance added per metre driven without a fix (m^2/m)", 0.0, 100.0),
            "growth_rad2_per_m": Doc("rotation variance added per metre driven without a fix (rad^2/m)", 0.0, 100.0),
            "growth_m2_per_s": Doc("position variance added per second without a fix (m^2/s)", 0.0, 100.0),
            "growth_rad2_per_s": Doc("rotation variance added per second without a fix (rad^2/s)", 0.0, 100.0),
        },
    ),
    _L + "min_matches": Doc("descriptor matches a candidate keyframe needs to go through RANSAC", 3, 1_000_000),
    _L + "initial_keyframe_id": Doc(
        "start-up: search around this keyframe instead of the whole map", -1, 100_000_000, none_value=-1
    ),
}


def parameter_specs() -> list[ParameterSpec]:
    """Every parameter of localizer_node with its default (from the config dataclasses), description and range."""
    return specs_from_config(LocalizerNodeConfig(), NODE_DOCS) + specs_from_config(
        LocalizerConfig(), LOCALIZER_DOCS, LOCALIZER_PREFIX
    )


def _key_values(values: dict) -> list[KeyValue]:
    return [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]


class LocalizerNode(Node):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.cfg, self.localizer_config = read_node_configs(
            self,
            NODE_NAME,
            parameter_specs(),
            [(LocalizerNodeConfig, NODE_DOCS, ""), (LocalizerConfig, LOCALIZER_DOCS, LOCALIZER_PREFIX)],
        )
        self._open_map()
        self.get_logger().info(describe_compat())

        self._mailbox: tuple | None = None
        self._mailbox_cv = threading.Condition()
        self._stopping = False
        self._stats_lock = threading.Lock()
        self.frames_received = 0
        self.frames_processed = 0
        self.frames_dropped_stale = 0
        self.last_error = ""
        self._latencies_ms: deque[float] = deque(maxlen=50)
        self._processed_monotonic: deque[float] = deque(maxlen=50)
        self._last_inliers = 0
        self._state = HealthState.LOST.value
        self._T_map_odom: np.ndarray | None = None
        self._localizer: Localizer | None = None
        self._rig = None

        self.odometry = OdometryBuffer(
            self.cfg.odometry_horizon_s, self.cfg.odometry_max_gap_s, self.cfg.odometry_max_hold_s
        )
        self.pose_pub = self.create_publisher(PoseWithCovarianceStamped, "localization/pose", 10)
        latched = QoSProfile(
            depth=1,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE,
        )
        self.path_pub = self.create_publisher(Path, "localization/path", latched)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.tf_broadcaster = tf2_ros.TransformBroadcaster(self) if self.cfg.publish_tf else None
        self.create_subscription(Odometry, "odom", self._on_odometry, 50)
        self.stereo = StereoInput(self, self._on_stereo, self.cfg.queue_size, self.cfg.slop_s)
        create_watchdog_timer(self, self.cfg.diagnostics_period_s, self._on_diagnostics_timer)
        self._publish_path()
        self._worker = threading.Thread(target=self._work, name="localizer_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"localizing against {self.map.path} ({len(self.map)} keyframes, {self.backend.name} features)"
        )

    # ---- start-up -------------------------------------------------------------------------------------------
    def _open_map(self) -> None:
        """Open the map and the backend it needs; any mismatch is a StartupError naming the fix."""
        from dlvf_ros.localization.map_store import MapStore, MapStoreError

        if not self.cfg.map_path:
            raise StartupError(
                f"{NODE_NAME}: parameter map_path is empty; pass -p map_path:=/path/to/map "
                "(a map store from `dlvf teach` or teach_node)"
            )
        try:
            self.map = MapStore.open(self.cfg.map_path)
            if len(self.map) == 0:
                raise MapStoreError(f"map {self.map.path} has no keyframes; teach a path first")
            backend_name = self.cfg.backend or self.map.manifest["backend"]
            self.backend = make_node_backend(NODE_NAME, backend_name, self.cfg.model, self.cfg.torch_threads)
            self.map.check_compatible(self.backend)
        except MapStoreError as exc:
            raise StartupError(f"{NODE_NAME}: {exc}") from exc

    def _publish_path(self) -> None:
        path = Path()
        path.header.frame_id = self.cfg.map_frame
        path.header.stamp = self.get_clock().now().to_msg()
        for entry in self.map.entries:
            path.poses.append(
                conversions.matrix_to_pose_stamped(entry.T_map_keyframe, entry.stamp_ns, self.cfg.map_frame)
            )
        self.path_pub.publish(path)

    # ---- executor thread ------------------------------------------------------------------------------------
    def _on_odometry(self, msg: Odometry) -> None:
        try:
            add_odometry_message(self.odometry, msg)
        except ValueError as exc:
            self._report_problem(str(exc))

    def _on_stereo(self, left, right, left_info, right_info) -> None:
        received_monotonic = time.monotonic()
        with self._mailbox_cv:
            if self._mailbox is not None:
                self.frames_dropped_stale += 1
            self._mailbox = (left, right, left_info, right_info, received_monotonic)
            self.frames_received += 1
            self._mailbox_cv.notify()

    def _on_diagnostics_timer(self) -> None:
        silent_s, warning = self.stereo.watchdog(self.cfg.no_input_warning_s, self.get_logger())
        level, message = DiagnosticStatus.OK, f"state {self._state}"
        if warning is not None:
            level, message = DiagnosticStatus.WARN, warning
        with self._stats_lock:
            latencies = list(self._latencies_ms)
            times = list(self._processed_monotonic)
            values = {
                "state": self._state,
                "frames_received": self.frames_received,
                "frames_processed": self.frames_processed,
                "frames_dropped_stale": self.frames_dropped_stale,
                "rate_hz": f"{(len(times) - 1) / (times[-1] - times[0]):.2f}"
                if len(times) > 1 and times[-1] > times[0]
                else "0.00",
                "latency_ms_mean": f"{np.mean(latencies):.1f}" if latencies else "",
                "inliers": self._last_inliers,
                "last_error": self.last_error,
                "seconds_since_stereo": f"{silent_s:.1f}",
            }
        self._publish_status(f"{self.get_name()}: summary", level, message, values, self.get_clock().now().to_msg())

    # ---- worker thread --------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._mailbox_cv:
                while self._mailbox is None and not self._stopping:
                    self._mailbox_cv.wait()
                if self._stopping:
                    return
                item, self._mailbox = self._mailbox, None
            try:
                self._process(*item)
            except Exception as exc:
                self.get_logger().error(f"internal error on a frame:\n{traceback.format_exc()}")
                self._frame_failed(
                    conversions.stamp_to_ns(item[0].header.stamp),
                    f"internal error {type(exc).__name__}: {exc}",
                    item[4],
                )

    def _process(self, left, right, left_info, right_info, received_monotonic: float) -> None:
        stamp_ns = conversions.stamp_to_ns(left.header.stamp)
        try:
            frame = decode_stereo(left, right, left_info, right_info, self.map.rig.T_vehicle_camera)
            localizer = self._localizer_for(frame.rig)
            T_odom_vehicle = self.odometry.lookup(stamp_ns, self.cfg.odometry_wait_s)
            result = localizer.process(stamp_ns, frame.left_rgb, frame.right_rgb, T_odom_vehicle)
        except (StereoInputError, OdometryLookupError, ValueError) as exc:
            self._frame_failed(stamp_ns, str(exc), received_monotonic)
            return
        latency_ms = 1000.0 * (time.monotonic() - received_monotonic)
        if result.T_map_vehicle is not None and (result.fixed or self.cfg.publish_dead_reckoning):
            self._publish_pose(stamp_ns, result.T_map_vehicle, result.covariance)
        if result.fixed:
            self._T_map_odom = result.T_map_vehicle @ transforms.invert(T_odom_vehicle)
        if result.T_map_vehicle is not None:
            self._broadcast_tf(stamp_ns, result.T_map_vehicle)
        with self._stats_lock:
            self.frames_processed += 1
            self._latencies_ms.append(latency_ms)
            self._processed_monotonic.append(time.monotonic())
            self._last_inliers = result.num_inliers
            self._state = result.state.value
        level = {
            HealthState.LOCALIZED: DiagnosticStatus.OK,
            HealthState.DEGRADED: DiagnosticStatus.WARN,
            HealthState.LOST: DiagnosticStatus.ERROR,
        }[result.state]
        self._publish_frame_status(
            stamp_ns,
            level,
            f"{result.state.value}: {result.health_reason}",
            {
                records.FRAME_STATE_KEY: result.state.value,
                records.FRAME_INLIERS_KEY: result.num_inliers,
                records.FRAME_LATENCY_KEY: f"{latency_ms:.1f}",
                records.FRAME_KEYFRAME_KEY: "" if result.keyframe_id is None else result.keyframe_id,
                records.FRAME_ERROR_KEY: "",
                "fixed": result.fixed,
                "matches": result.num_matches,
                "search": result.search,
                **{f"time_{k}_ms": f"{v:.1f}" for k, v in result.timings_ms.items()},
            },
        )

    def _localizer_for(self, rig) -> Localizer:
        """The localizer for this calibration (built on the first frame; a calibration change is an input error)."""
        if self._localizer is not None and rig.matches(self._rig):
            return self._localizer
        if not rig.matches(self.map.rig):
            raise StereoInputError(
                f"camera_info calibration {rig.to_dict()} does not match the map's "
                f"{self.map.rig.to_dict()}; use the camera the map was taught with (or re-teach)"
            )
        from dlvf_ros.localization.frontend import StereoFrontend

        frontend = StereoFrontend(self.backend, rig, self.localizer_config.sgbm)
        self._localizer = Localizer(self.map, frontend, self.localizer_config)
        self._rig = rig
        return self._localizer

    def _frame_failed(self, stamp_ns: int, error: str, received_monotonic: float) -> None:
        latency_ms = 1000.0 * (time.monotonic() - received_monotonic)
        with self._stats_lock:
            self.frames_processed += 1
            self.last_error = error
            self._last_inliers = 0
        self.get_logger().error(error, throttle_duration_sec=5.0)
        self._publish_frame_status(
            stamp_ns,
            DiagnosticStatus.ERROR,
            error,
            {
                records.FRAME_STATE_KEY: self._state,
                records.FRAME_INLIERS_KEY: 0,
                records.FRAME_LATENCY_KEY: f"{latency_ms:.1f}",
                records.FRAME_KEYFRAME_KEY: "",
                records.FRAME_ERROR_KEY: error,
                "fixed": False,
            },
        )
        if self._T_map_odom is not None:
            self._broadcast_map_odom(stamp_ns)

    def _report_problem(self, error: str) -> None:
        with self._stats_lock:
            self.last_error = error
        self.get_logger().error(error, throttle_duration_sec=5.0)
        self._publish_status(
            f"{self.get_name()}: input",
            DiagnosticStatus.ERROR,
            error,
            {"last_error": error},
            self.get_clock().now().to_msg(),
        )

    # ---- outputs --------------------------------------------------------------------------------------------
    def _publish_pose(self, stamp_ns: int, T_map_vehicle: np.ndarray, covariance: np.ndarray) -> None:
        self.pose_pub.publish(
            conversions.matrix_to_pose_with_covariance_stamped(T_map_vehicle, covariance, stamp_ns, self.cfg.map_frame)
        )

    def _broadcast_tf(self, stamp_ns: int, T_map_vehicle: np.ndarray) -> None:
        if self.tf_broadcaster is None:
            return
        if self.cfg.publish_map_to_base_link:
            stamp = stamp_ns + int(self.cfg.transform_tolerance_s * 1e9)
            self.tf_broadcaster.sendTransform(
                conversions.matrix_to_transform_stamped(T_map_vehicle, stamp, self.cfg.map_frame, self.cfg.base_frame)
            )
        elif self._T_map_odom is not None:
            self._broadcast_map_odom(stamp_ns)

    def _broadcast_map_odom(self, stamp_ns: int) -> None:
        if self.tf_broadcaster is None or self.cfg.publish_map_to_base_link:
            return
        stamp = stamp_ns + int(self.cfg.transform_tolerance_s * 1e9)
        self.tf_broadcaster.sendTransform(
            conversions.matrix_to_transform_stamped(self._T_map_odom, stamp, self.cfg.map_frame, self.cfg.odom_frame)
        )

    def _publish_frame_status(self, stamp_ns: int, level: bytes, message: str, values: dict) -> None:
        self._publish_status(
            f"{self.get_name()}: frame",
            level,
            message,
            {records.FRAME_STAMP_KEY: stamp_ns, **values},
            conversions.ns_to_stamp(stamp_ns),
        )

    def _publish_status(self, name: str, level: bytes, message: str, values: dict, stamp) -> None:
        array = DiagnosticArray()
        array.header.stamp = stamp
        array.status = [
            DiagnosticStatus(
                level=level, name=name, message=message, hardware_id=self.get_name(), values=_key_values(values)
            )
        ]
        self.diagnostics_pub.publish(array)

    def close(self) -> None:
        """Stop the worker (the frame in progress finishes first)."""
        with self._mailbox_cv:
            self._stopping = True
            self._mailbox_cv.notify()
        self._worker.join(timeout=10.0)


def main(argv: list[str] | None = None) -> int:
    return run_node(LocalizerNode, NODE_NAME, argv)


if __name__ == "__main__":
    sys.exit(main())
