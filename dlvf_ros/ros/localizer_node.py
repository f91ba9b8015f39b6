"""localizer_node: localizes live stereo against a teach map (wiring around `dlvf_ros.localization.Localizer`).

Inputs: approximate-time synchronised rectified left/right Image + CameraInfo
(`stereo/{left,right}/{image_rect,camera_info}`, sensor-data QoS; CameraInfo's P is used, so a non-zero D is fine),
odom -> base_link from nav_msgs/Odometry on `odom` (QoS reliability a parameter; frame ids checked) or from /tf
(`odometry_source: tf`), `initialpose` (geometry_msgs/PoseWithCovarianceStamped in the map frame, as AMCL and
rviz's "2D Pose Estimate"): search around it. Calibration comes from CameraInfo (intrinsics, baseline) and the map's
vehicle-camera extrinsic; it must match the map's.
Outputs: geometry_msgs/PoseWithCovarianceStamped on `localization/pose` (stamped with the image time, frame `map`);
the path-tracker output (`localization/vertex_odometry`, `localization/tracking_status`: `dlvf_ros.tracker_client`);
map -> odom on /tf (REP 105; optionally map -> base_link instead, for robots without an odom frame on tf): sent with
each localized frame and re-sent from the last fix every `tf_period_s` (also while frames are missing), stopped
once the state has been LOST for `lost_tf_timeout_s` or `lost_tf_distance_m` of odometry (or held: `tf_when_lost`);
the taught path on `localization/path` (nav_msgs/Path, transient local); the health as a text marker
(`localization/health_marker`) and, when `publish_match_image`, the left image with the fix's inliers
(`localization/match_image`); each frame's result (`dlvf_ros.localization.frame_record.FrameRecord`: state,
inliers, latency, keyframe, error; and fixed, matches, search, refused, time_*_ms) on `localization/frame_status`;
the ~1 Hz health summary on /diagnostics (rate, latency, input age, state, counters, last error:
`dlvf_ros.ros.node_base`).
Services: `~/reset` (forget the fix, search as at start-up), `~/relocalize` (search the whole map), both
std_srvs/Trigger; they apply from the next frame. A frame stamped before the previous one (a looped bag, a simulator
reset) resets the localizer with a warning. Parameters marked "(can change at run time)" in config/localizer_node.yaml
can be set while the node runs (`ros2 param set`), validated like at start-up.

Threads: the executor thread only stores the newest synchronised set in a one-slot mailbox (an unprocessed older
set is dropped as stale, never queued); a worker thread decodes, localizes and publishes.
Start-up failures (no map, map/model mismatch, bad parameters) are fatal with a message naming the fix; bad input at
run time (encoding, size, calibration, unsynchronised or missing topics, NaN odometry) is reported in the frame's
result or the health summary and the log, and the node keeps running. `dlvf_ros.ros.managed_localizer_node` is the
same node as a managed (lifecycle) node.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry, Path
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker

from dlvf_ros import tracker_client
from dlvf_ros.config import setting
from dlvf_ros.geometry import transforms
from dlvf_ros.localization.health import HealthState
from dlvf_ros.localization.localizer import LocalizationResult, Localizer, LocalizerConfig
from dlvf_ros.localization.path_tracking import PathPosition, TaughtPath
from dlvf_ros.ros import conversions
from dlvf_ros.ros.compat import tf2_ros
from dlvf_ros.ros.node_base import StereoNode, StereoNodeConfig, StereoSet
from dlvf_ros.ros.node_main import StartupError, make_node_backend, run_node
from dlvf_ros.ros.node_parameters import ParameterSpec, node_parameter_specs
from dlvf_ros.ros.odometry_buffer import OdometryLookupError
from dlvf_ros.ros.stereo_input import StereoInputError, decode_stereo, distortion_note
from dlvf_ros.ros.tracker_output import LEVELS, TrackingFrame, tracking_messages
from dlvf_ros.ros.visual_output import health_marker, match_image_message

if TYPE_CHECKING:
    from dlvf_ros.geometry.camera import StereoRig
    from dlvf_ros.localization.map_store import MapStore

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
    tf_period_s: float = setting(
        0.05, "re-send map -> odom from the last fix at this period (s), also while frames are missing", (0.005, 60.0)
    )
    tf_when_lost: Literal["stop", "hold"] = setting(
        "stop",
        "map -> odom once LOST beyond lost_tf_timeout_s / lost_tf_distance_m: stop sending it, or hold the last one "
        "(the tracking status says LOST)",
    )
    lost_tf_timeout_s: float = setting(
        1.0, "map -> odom stops this long (s) after the state became LOST (tf_when_lost: stop)", (0.0, 3600.0)
    )
    lost_tf_distance_m: float = setting(
        1.0,
        "map -> odom stops once the vehicle drove this far (m, odometry) after the state became LOST",
        (0.0, 100_000.0),
    )
    publish_match_image: bool = setting(
        False, "publish the left image with the frame's keypoints, inliers and verdict on localization/match_image"
    )


PARAMETERS = ((LocalizerNodeConfig, ""), (LocalizerConfig, "localizer."))
# what may change while the node runs: node outputs, and the localizer settings it reads on every frame
RUNTIME_PARAMETERS = (
    "no_input_warning_s",
    "odometry_wait_s",
    "publish_dead_reckoning",
    "transform_tolerance_s",
    "tf_when_lost",
    "lost_tf_timeout_s",
    "lost_tf_distance_m",
    "publish_match_image",
    "localizer.matching.",
    "localizer.ransac.",
    "localizer.refine.",
    "localizer.window.",
    "localizer.health.",
    "localizer.covariance.",
    "localizer.min_matches",
)


def parameter_specs() -> list[ParameterSpec]:
    """Every parameter of localizer_node with its default, description and range (from the config dataclasses)."""
    return node_parameter_specs(PARAMETERS, RUNTIME_PARAMETERS)


@dataclass
class _TfState:
    """What map -> odom is sent from: the last fix's T_map_odom, and since when (ns, node clock) and from which
    odometry pose the state has been LOST (None while it is not)."""

    T_map_odom: np.ndarray | None = None
    lost_since_ns: int | None = None
    lost_T_odom_vehicle: np.ndarray | None = None


class LocalizerNode(StereoNode):
    """See the module docstring. `autostart` False leaves configure / activate to a lifecycle manager."""

    DROPPED_KEY = "frames_dropped_stale"

    def __init__(self, autostart: bool = True) -> None:
        super().__init__(NODE_NAME, PARAMETERS, RUNTIME_PARAMETERS)
        self.localizer_config: LocalizerConfig = self.core_config
        self._last_inliers = 0
        self._state = HealthState.LOST.value
        self._health_reason = ""
        self._map: MapStore | None = None
        if autostart:
            self.configure_node()
            self.activate_node()

    @property
    def map(self) -> MapStore:
        """The map store opened by `configure_node`."""
        if self._map is None:
            raise RuntimeError(f"{NODE_NAME}: no map is open (the node is not configured)")
        return self._map

    # ---- life cycle -----------------------------------------------------------------------------------------
    def configure_node(self) -> None:
        """Open the map and the backend, create the outputs and services (StartupError naming the fix)."""
        self._open_map()
        self._localizer: Localizer | None = None
        self._rig: StereoRig | None = None
        self._taught_path = TaughtPath(np.stack([entry.T_map_keyframe for entry in self.map.entries]))
        self._vertex_id: int | None = None
        self._previous_odometry: tuple[int, np.ndarray] | None = None
        self._last_stamp_ns: int | None = None
        self._distortion_reported = False
        # (request, whether it restarts tracking) for the worker to apply before its next frame
        self._controls: deque[tuple[Callable[[Localizer], None], bool]] = deque()
        self._tf_lock = threading.Lock()
        self._tf = _TfState()
        self.pose_pub = self.create_publisher(PoseWithCovarianceStamped, "localization/pose", 10)
        self.vertex_odometry_pub = self.create_publisher(
            Odometry, tracker_client.VERTEX_ODOMETRY_TOPIC, tracker_client.QUEUE_DEPTH
        )
        self.tracking_status_pub = self.create_publisher(
            DiagnosticArray, tracker_client.TRACKING_STATUS_TOPIC, tracker_client.QUEUE_DEPTH
        )
        self.marker_pub = self.create_publisher(Marker, "localization/health_marker", 10)
        self.match_image_pub = self.create_publisher(Image, "localization/match_image", 2)
        self.tf_broadcaster = tf2_ros.TransformBroadcaster(self) if self.cfg.publish_tf else None
        self._control_services = [
            self.create_service(Trigger, "~/reset", self._on_reset),
            self.create_service(Trigger, "~/relocalize", self._on_relocalize),
        ]
        self._initial_pose_subscription = self.create_subscription(
            PoseWithCovarianceStamped, "initialpose", self._on_initial_pose, 10
        )
        self._publish_path()
        self.get_logger().info(
            f"localizing against {self.map.path} ({len(self.map)} keyframes, {self.backend.name} features"
            + (f", model {self.backend.model_path}" if self.backend.name == "learned" else "")
            + ")"
        )

    def activate_node(self) -> None:
        """Start the input, the worker and the map -> odom timer."""
        # one-slot mailbox: an unprocessed older set is dropped as stale, never queued
        self.start_input(mailbox_capacity=1, drain_on_stop=False, warn_on_drop=False)
        self._tf_timer = self.create_timer(self.cfg.tf_period_s, self._on_tf_timer)

    def deactivate_node(self) -> None:
        """Stop the input, the worker and the map -> odom timer (the frame in progress finishes; up to 10 s)."""
        self.destroy_timer(self._tf_timer)
        self.stop_input(timeout_s=10.0)

    def cleanup_node(self) -> None:
        """Drop the map, the localizer, the outputs and the services (back to the state before `configure_node`)."""
        for publisher in (
            self.pose_pub,
            self.vertex_odometry_pub,
            self.tracking_status_pub,
            self.marker_pub,
            self.match_image_pub,
        ):
            self.destroy_publisher(publisher)
        if self.tf_broadcaster is not None:
            self.destroy_publisher(self.tf_broadcaster.pub_tf)
        for service in self._control_services:
            self.destroy_service(service)
        self.destroy_subscription(self._initial_pose_subscription)
        self._map = self._localizer = None

    def close(self) -> None:
        if self._worker is not None:
            self.deactivate_node()

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
            self._map = MapStore.open(self.cfg.map_path)
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

    # ---- control (executor thread) --------------------------------------------------------------------------
    def _request(self, what: str, action: Callable[[Localizer], None]) -> None:
        """Queue `action` for the worker (applied before the next frame) and stop map -> odom until a new fix."""
        self._controls.append((action, True))
        with self._tf_lock:
            self._tf = _TfState()
        self.get_logger().info(f"{what}: applies from the next frame")

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._request("reset", Localizer.reset)
        response.success, response.message = True, "reset: the next frame searches as at start-up"
        return response

    def _on_relocalize(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._request("relocalize", Localizer.relocalize)
        response.success, response.message = True, "relocalize: the next frame searches the whole map"
        return response

    def _on_initial_pose(self, msg: PoseWithCovarianceStamped) -> None:
        frame = msg.header.frame_id.lstrip("/")
        if frame != self.cfg.map_frame:
            self._report_problem(f"initialpose ignored: it is in frame {frame!r}, expected {self.cfg.map_frame!r}")
            return
        try:
            T_map_vehicle = conversions.pose_to_matrix(msg.pose.pose)
        except ValueError as exc:
            self._report_problem(f"initialpose ignored: {exc}")
            return
        covariance = np.asarray(msg.pose.covariance, dtype=np.float64).reshape(6, 6)
        xy = T_map_vehicle[:2, 3]
        self._request(
            f"initial pose ({xy[0]:.2f}, {xy[1]:.2f}) m", lambda localizer: localizer.seed(T_map_vehicle, covariance)
        )

    def _apply_configs(self, node_config: LocalizerNodeConfig, core_config: LocalizerConfig) -> None:
        super()._apply_configs(node_config, core_config)
        self._controls.append((lambda localizer: localizer.update_config(core_config), False))

    # ---- summary ------------------------------------------------------------------------------------------
    def _summary(self) -> tuple[bytes, str, dict]:
        values = {"state": self._state, "inliers": self._last_inliers}
        if self.frames_processed == 0:
            return DiagnosticStatus.OK, "waiting for the first stereo frame", values
        return LEVELS[HealthState(self._state)], f"{self._state}: {self._health_reason}", values

    # ---- worker thread --------------------------------------------------------------------------------------
    def _process(self, frames: StereoSet) -> None:
        stamp_ns = frames.stamp_ns
        try:
            frame = decode_stereo(
                frames.left, frames.right, frames.left_info, frames.right_info, self.map.rig.T_vehicle_camera
            )
            self._note_distortion(frames)
            localizer = self._localizer_for(frame.rig)
            self._apply_controls(localizer, stamp_ns)
            T_odom_vehicle = self.odometry.lookup(stamp_ns, self.cfg.odometry_wait_s)
            features = localizer.frame_features(frame.left_rgb, frame.right_rgb)
            result = localizer.localize(stamp_ns, features, T_odom_vehicle)
        except (StereoInputError, OdometryLookupError, ValueError) as exc:
            self._frame_failed(frames, str(exc))
            return
        self._last_stamp_ns = stamp_ns
        if result.T_map_vehicle is not None and (result.fixed or self.cfg.publish_dead_reckoning):
            self.pose_pub.publish(
                conversions.matrix_to_pose_with_covariance_stamped(
                    result.T_map_vehicle, result.covariance, stamp_ns, self.cfg.map_frame
                )
            )
        self._update_tf(stamp_ns, result, T_odom_vehicle)
        position = self._publish_tracking(stamp_ns, result, T_odom_vehicle)
        self._publish_visuals(frames, frame.left_rgb, features.features.keypoints, result, position)
        with self._stats_lock:
            self._last_inliers = result.num_inliers
            self._state = result.state.value
            self._health_reason = result.health_reason
        self._publish_frame_result(
            frames,
            LEVELS[result.state],
            f"{result.state.value}: {result.health_reason}",
            state=result.state.value,
            inliers=result.num_inliers,
            keyframe_id=result.keyframe_id,
            extra={
                "fixed": result.fixed,
                "matches": result.num_matches,
                "search": result.search,
                "refused": result.fix_refused,
                "guided": result.guided,
                **{f"time_{k}_ms": f"{v:.1f}" for k, v in result.timings_ms.items()},
            },
        )

    def _apply_controls(self, localizer: Localizer, stamp_ns: int) -> None:
        """Queued service / initial pose / parameter requests, then a reset when time went backwards."""
        while self._controls:
            action, restarts_tracking = self._controls.popleft()
            action(localizer)
            if restarts_tracking:
                self._forget_tracking()
        if self._last_stamp_ns is not None and stamp_ns < self._last_stamp_ns:
            self.get_logger().warning(
                f"time jumped back {(self._last_stamp_ns - stamp_ns) * 1e-9:.3f} s (image stamp "
                f"{stamp_ns * 1e-9:.3f} s; a looped bag or a simulator reset?): localizer reset"
            )
            localizer.reset()
            self._forget_tracking()
            with self._tf_lock:
                self._tf = _TfState()

    def _forget_tracking(self) -> None:
        self._vertex_id = None
        self._previous_odometry = None
        self._last_stamp_ns = None

    def _note_distortion(self, frames: StereoSet) -> None:
        if not self._distortion_reported:
            note = distortion_note(frames.left_info)
            if note is not None:
                self.get_logger().info(note)
            self._distortion_reported = True

    def _localizer_for(self, rig) -> Localizer:
        """The localizer for this calibration (built on the first frame; a calibration change is an input error)."""
        if self._localizer is not None and self._rig is not None and rig.matches(self._rig):
            return self._localizer
        if not rig.matches(self.map.rig):
            raise StereoInputError(
                f"camera_info calibration {rig.to_dict()} does not match the map's "
                f"{self.map.rig.to_dict()}; use the camera the map was taught with (or re-teach)"
            )
        from dlvf_ros.localization.frontend import StereoFrontend

        frontend = StereoFrontend(self.backend, rig, self.localizer_config.stereo)
        self._localizer = Localizer(self.map, frontend, self.core_config)
        self._rig = rig
        return self._localizer

    def _frame_failed(self, frames: StereoSet, error: str) -> None:
        with self._stats_lock:
            self._last_inliers = 0
        self.get_logger().error(error, throttle_duration_sec=5.0)
        self._send_tracking(TrackingFrame(frames.stamp_ns, HealthState(self._state), error, False, 0, None, None))
        self._publish_frame_result(
            frames, DiagnosticStatus.ERROR, error, state=self._state, error=error, extra={"fixed": False}
        )

    # ---- outputs --------------------------------------------------------------------------------------------
    def _publish_tracking(
        self, stamp_ns: int, result: LocalizationResult, T_odom_vehicle: np.ndarray
    ) -> PathPosition | None:
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
            TrackingFrame(
                stamp_ns, result.state, result.health_reason, result.fixed, result.num_inliers, position, velocity
            )
        )
        return position

    def _send_tracking(self, frame: TrackingFrame) -> None:
        odometry, status = tracking_messages(frame, self.cfg.base_frame, self.get_name())
        if odometry is not None:
            self.vertex_odometry_pub.publish(odometry)
        self.tracking_status_pub.publish(status)

    def _publish_visuals(
        self,
        frames: StereoSet,
        left_rgb: np.ndarray,
        keypoints_uv: np.ndarray,
        result: LocalizationResult,
        position: PathPosition | None,
    ) -> None:
        """The health text beside the vehicle, and the match image when asked for."""
        summary = f"{result.num_inliers} inliers / {result.num_matches} matches ({result.search})"
        if position is not None and result.T_map_vehicle is not None:
            summary += f"\nvertex {position.vertex_id}, {position.progress_m:.1f} m, {position.cross_track_m:+.2f} m"
            self.marker_pub.publish(
                health_marker(frames.stamp_ns, self.cfg.map_frame, result.T_map_vehicle, result.state.value, summary)
            )
        if self.cfg.publish_match_image:
            inliers_uv = np.zeros((0, 2))
            if self._rig is not None and result.inlier_points_camera is not None and len(result.inlier_points_camera):
                inliers_uv, _ = self._rig.project(result.inlier_points_camera)
            lines = [*summary.split("\n"), result.health_reason]
            self.match_image_pub.publish(
                match_image_message(
                    frames.stamp_ns,
                    frames.left.header.frame_id,
                    left_rgb,
                    keypoints_uv,
                    inliers_uv,
                    result.state.value,
                    lines,
                )
            )

    def _update_tf(self, stamp_ns: int, result: LocalizationResult, T_odom_vehicle: np.ndarray) -> None:
        """Track what map -> odom is sent from, and send it for this frame."""
        now_ns = self.get_clock().now().nanoseconds
        with self._tf_lock:
            if result.fixed:
                self._tf.T_map_odom = result.T_map_vehicle @ transforms.invert(T_odom_vehicle)
            if result.state != HealthState.LOST:
                self._tf.lost_since_ns = self._tf.lost_T_odom_vehicle = None
            elif self._tf.lost_since_ns is None:
                self._tf.lost_since_ns, self._tf.lost_T_odom_vehicle = now_ns, T_odom_vehicle
        self._broadcast_tf(stamp_ns + int(self.cfg.transform_tolerance_s * 1e9), T_odom_vehicle)

    def _on_tf_timer(self) -> None:
        """Re-send map -> odom from the last fix (stamped now), e.g. while camera frames are missing."""
        newest = self.odometry.newest()
        if newest is not None:
            # map -> base_link holds at the odometry's stamp; map -> odom (the last fix) holds now
            stamp_ns = newest[0] if self.cfg.publish_map_to_base_link else self.get_clock().now().nanoseconds
            self._broadcast_tf(stamp_ns + int(self.cfg.transform_tolerance_s * 1e9), newest[1])

    def _broadcast_tf(self, stamp_ns: int, T_odom_vehicle: np.ndarray) -> None:
        """map -> odom (or map -> base_link at `T_odom_vehicle`) from the last fix, unless LOST for too long."""
        if self.tf_broadcaster is None:
            return
        with self._tf_lock:
            tf = self._tf
            if tf.T_map_odom is None:
                return
            if tf.lost_since_ns is not None and tf.lost_T_odom_vehicle is not None and self.cfg.tf_when_lost == "stop":
                lost_s = (self.get_clock().now().nanoseconds - tf.lost_since_ns) * 1e-9
                driven_m = float(np.linalg.norm(T_odom_vehicle[:2, 3] - tf.lost_T_odom_vehicle[:2, 3]))
                if lost_s > self.cfg.lost_tf_timeout_s or driven_m > self.cfg.lost_tf_distance_m:
                    return
            T_map_odom = tf.T_map_odom
        if self.cfg.publish_map_to_base_link:
            message = conversions.matrix_to_transform_stamped(
                T_map_odom @ T_odom_vehicle, stamp_ns, self.cfg.map_frame, self.cfg.base_frame
            )
        else:
            message = conversions.matrix_to_transform_stamped(
                T_map_odom, stamp_ns, self.cfg.map_frame, self.cfg.odom_frame
            )
        self.tf_broadcaster.sendTransform(message)


def main(argv: list[str] | None = None) -> int:
    return run_node(LocalizerNode, NODE_NAME, argv)


if __name__ == "__main__":
    sys.exit(main())
