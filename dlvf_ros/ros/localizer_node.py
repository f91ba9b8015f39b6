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
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry, Path

from dlvf_ros import tracker_client
from dlvf_ros.config import setting
from dlvf_ros.evaluation import records
from dlvf_ros.geometry import transforms
from dlvf_ros.localization.health import HealthState
from dlvf_ros.localization.localizer import Localizer, LocalizerConfig
from dlvf_ros.localization.path_tracking import TaughtPath
from dlvf_ros.ros import conversions
from dlvf_ros.ros.compat import tf2_ros
from dlvf_ros.ros.node_base import StereoNode, StereoNodeConfig, StereoSet
from dlvf_ros.ros.node_main import StartupError, make_node_backend, run_node
from dlvf_ros.ros.node_parameters import ParameterSpec, node_parameter_specs
from dlvf_ros.ros.odometry_buffer import OdometryLookupError
from dlvf_ros.ros.stereo_input import StereoInputError, decode_stereo
from dlvf_ros.ros.tracker_output import tracking_messages

NODE_NAME = "localizer_node"


@dataclass
class LocalizerNodeConfig(StereoNodeConfig):
    """Node-level settings (the localizer core's are `LocalizerConfig`, parameters `localizer.*`)."""

    backend: str = setting(
        "", "feature backend: learned, orb, sift or xfeat; empty: the backend the map was built with"
    )
    publish_tf: bool = setting(True, "broadcast the localization on /tf")
    publish_map_to_base_link: bool = setting(
        False,
        "broadcast map -> base_link instead of map -> odom (only for robots whose tf tree has no odom -> base_link)",
    )
    publish_dead_reckoning: bool = setting(
        False,
        "also publish poses of frames without a fix (last fix + odometry, grown covariance); off: only fixes are "
        "published",
    )
    transform_tolerance_s: float = setting(
        0.1, "future-date the map -> odom transform by this much (s), as AMCL does", (0.0, 10.0)
    )
    odom_frame: str = setting("odom", "odometry frame (REP 105 odom)")


PARAMETERS = ((LocalizerNodeConfig, ""), (LocalizerConfig, "localizer."))


def parameter_specs() -> list[ParameterSpec]:
    """Every parameter of localizer_node with its default, description and range (from the config dataclasses)."""
    return node_parameter_specs(PARAMETERS)


class LocalizerNode(StereoNode):
    """See the module docstring."""

    DROPPED_KEY = "frames_dropped_stale"

    def __init__(self) -> None:
        super().__init__(NODE_NAME, PARAMETERS)
        self.localizer_config: LocalizerConfig = self.core_config
        self._open_map()
        self._latencies_ms: deque[float] = deque(maxlen=50)
        self._processed_monotonic: deque[float] = deque(maxlen=50)
        self._last_inliers = 0
        self._state = HealthState.LOST.value
        self._T_map_odom: np.ndarray | None = None
        self._localizer: Localizer | None = None
        self._rig = None
        self._taught_path = TaughtPath(np.stack([entry.T_map_keyframe for entry in self.map.entries]))
        self._vertex_id: int | None = None
        self._previous_odometry: tuple[int, np.ndarray] | None = None

        self.pose_pub = self.create_publisher(PoseWithCovarianceStamped, "localization/pose", 10)
        self.vertex_odometry_pub = self.create_publisher(
            Odometry, tracker_client.VERTEX_ODOMETRY_TOPIC, tracker_client.QUEUE_DEPTH
        )
        self.tracking_status_pub = self.create_publisher(
            DiagnosticArray, tracker_client.TRACKING_STATUS_TOPIC, tracker_client.QUEUE_DEPTH
        )
        self.tf_broadcaster = tf2_ros.TransformBroadcaster(self) if self.cfg.publish_tf else None
        self._publish_path()
        # one-slot mailbox: an unprocessed older set is dropped as stale, never queued
        self.start_input(mailbox_capacity=1, drain_on_stop=False, warn_on_drop=False)
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

    # ---- summary ------------------------------------------------------------------------------------------
    def _summary(self) -> tuple[str, dict]:
        latencies = list(self._latencies_ms)
        times = list(self._processed_monotonic)
        rate_hz = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        return f"state {self._state}", {
            "state": self._state,
            "rate_hz": f"{rate_hz:.2f}",
            "latency_ms_mean": f"{np.mean(latencies):.1f}" if latencies else "",
            "inliers": self._last_inliers,
        }

    # ---- worker thread --------------------------------------------------------------------------------------
    def _process(self, frames: StereoSet) -> None:
        stamp_ns = frames.stamp_ns
        try:
            frame = decode_stereo(
                frames.left, frames.right, frames.left_info, frames.right_info, self.map.rig.T_vehicle_camera
            )
            localizer = self._localizer_for(frame.rig)
            T_odom_vehicle = self.odometry.lookup(stamp_ns, self.cfg.odometry_wait_s)
            result = localizer.process(stamp_ns, frame.left_rgb, frame.right_rgb, T_odom_vehicle)
        except (StereoInputError, OdometryLookupError, ValueError) as exc:
            self._frame_failed(frames, str(exc))
            return
        latency_ms = 1000.0 * (time.monotonic() - frames.received_monotonic)
        if result.T_map_vehicle is not None and (result.fixed or self.cfg.publish_dead_reckoning):
            self._publish_pose(stamp_ns, result.T_map_vehicle, result.covariance)
        if result.fixed:
            self._T_map_odom = result.T_map_vehicle @ transforms.invert(T_odom_vehicle)
        if result.T_map_vehicle is not None:
            self._broadcast_tf(stamp_ns, result.T_map_vehicle)
        self._publish_tracking(stamp_ns, result, T_odom_vehicle)
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

    def _publish_tracking(self, stamp_ns: int, result, T_odom_vehicle: np.ndarray) -> None:
        """The path-tracker output of a localized frame (`dlvf_ros.tracker_client` describes it)."""
        position = None
        if result.T_map_vehicle is not None:
            near = result.keyframe_id if result.fixed else self._vertex_id
            position = self._taught_path.locate(result.T_map_vehicle, result.covariance, near)
            self._vertex_id = position.vertex_id
        velocity = None
        if self._previous_odometry is not None and stamp_ns > self._previous_odometry[0]:
            previous_ns, T_previous = self._previous_odometry
            velocity = transforms.body_twist(T_previous, T_odom_vehicle, (stamp_ns - previous_ns) * 1e-9)
        self._previous_odometry = (stamp_ns, T_odom_vehicle)
        self._send_tracking(
            stamp_ns, result.state, result.health_reason, result.fixed, result.num_inliers, position, velocity
        )

    def _send_tracking(self, stamp_ns, state, reason, fixed, inliers, position, velocity) -> None:
        odometry, status = tracking_messages(
            stamp_ns, state, reason, fixed, inliers, position, velocity, self.cfg.base_frame, self.get_name()
        )
        if odometry is not None:
            self.vertex_odometry_pub.publish(odometry)
        self.tracking_status_pub.publish(status)

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

    def _frame_failed(self, frames: StereoSet, error: str) -> None:
        stamp_ns = frames.stamp_ns
        latency_ms = 1000.0 * (time.monotonic() - frames.received_monotonic)
        with self._stats_lock:
            self.frames_processed += 1
            self.last_error = error
            self._last_inliers = 0
        self.get_logger().error(error, throttle_duration_sec=5.0)
        self._send_tracking(stamp_ns, HealthState(self._state), error, False, 0, None, None)
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
            "frame", level, message, {records.FRAME_STAMP_KEY: stamp_ns, **values}, conversions.ns_to_stamp(stamp_ns)
        )


def main(argv: list[str] | None = None) -> int:
    return run_node(LocalizerNode, NODE_NAME, argv)


if __name__ == "__main__":
    sys.exit(main())
