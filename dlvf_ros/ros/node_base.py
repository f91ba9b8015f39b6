"""The skeleton teach_node and localizer_node share: settings, stereo input, worker thread, odometry, outputs.

`StereoNode` declares the node's parameters from its config dataclasses (`StereoNodeConfig` and a core config under
a prefix; the ones the node names as run-time parameters can be set while it runs, validated like at start-up, and
reach it through `_apply_configs`), publishes the taught path (`localization/path`, latched), and between
`start_input` and `stop_input` buffers odometry (nav_msgs/Odometry on `odom`, QoS reliability a parameter; or
odom -> base_link from /tf) and feeds every synchronised stereo set (`StereoSet`) through a bounded mailbox
(`FrameWorker`) to a worker thread that calls the node's `_process`.

Outputs of every handled frame and of the node's health:
- each frame's result (`_publish_frame_result`) on `localization/frame_status`, stamped with the image time
  (`dlvf_ros.localization.frame_record`);
- /diagnostics: one status "<node name>: summary" every `diagnostics_period_s` (1 s; steady clock, so it keeps
  running when a bag's /clock stops) in the diagnostic_updater style: level and message (the worst of the input
  watchdog's warning, the errors of the period and the node's own verdict) and values `rate_hz` (frames handled per
  second over the period), `latency_ms` (mean of image stamp to result, node clock), `processing_ms` (mean of arrival
  to result), `input_age_s` (since the last synchronised stereo set), the node's own (localizer_node: `state`),
  `frames_received`, `frames_processed`, `frames_failed`, the dropped count and `last_error`.
A node implements `_process`, `_frame_failed` and `_summary`.

`StereoNode` is a plain rclpy Node; a subclass that also derives from `rclpy.lifecycle.LifecycleNode` (after the
node class, so the MRO puts LifecycleNode under `StereoNode`) gets a managed node with the same code.
"""

from __future__ import annotations

import abc
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry, Path
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from dlvf_ros.config import check_settings, setting
from dlvf_ros.localization.frame_record import (
    FRAME_STATUS_DEPTH,
    FRAME_STATUS_KIND,
    FRAME_STATUS_TOPIC,
    FrameRecord,
)
from dlvf_ros.ros import conversions
from dlvf_ros.ros.compat import TF2_MSGS_HINT
from dlvf_ros.ros.compat import describe as describe_compat
from dlvf_ros.ros.node_parameters import (
    ParameterError,
    config_from_parameters,
    node_parameter_specs,
    read_node_configs,
)
from dlvf_ros.ros.odometry_buffer import OdometryBuffer, add_odometry_message, add_tf_message
from dlvf_ros.ros.stereo_input import StereoInput, create_watchdog_timer

LATCHED_QOS = QoSProfile(
    depth=1,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
)
FRAME_STATUS_QOS = QoSProfile(
    depth=FRAME_STATUS_DEPTH, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE
)


@dataclass
class StereoNodeConfig:
    """Node-level settings of both nodes (a node's own come after these; the core's are under a prefix)."""

    map_path: str = setting(
        "",
        "map store directory (required): teach_node creates it, localizer_node reads it (`dlvf teach` also writes one)",
    )
    backend: str = setting("learned", "feature backend: learned (needs model), orb, sift or xfeat (optional extra)")
    model: str = setting(
        "",
        "exported feature model (.pt) for the learned backend (localizing: the one the map was built with); "
        "empty: the one shipped with the package (models/)",
    )
    queue_size: int = setting(10, "messages kept per stereo input while waiting for a synchronised set", (1, 1000))
    slop_s: float = setting(
        0.02,
        "a synchronised left/right image + camera_info set spans less than this (s; message_filters' slop)",
        (0.0001, 10.0),
    )
    no_input_warning_s: float = setting(
        3.0, "warn (log + diagnostics) when no synchronised stereo set arrived for this long (s)", (0.1, 3600.0)
    )
    diagnostics_period_s: float = setting(1.0, "period (s) of the health summary on /diagnostics", (0.05, 3600.0))
    odometry_horizon_s: float = setting(10.0, "odometry history kept for lookups at image stamps (s)", (0.1, 3600.0))
    odometry_max_gap_s: float = setting(
        0.5, "largest gap (s) between odometry samples to interpolate across", (0.001, 60.0)
    )
    odometry_max_hold_s: float = setting(
        0.25, "an image up to this much (s) newer than the newest odometry uses that odometry", (0.0, 60.0)
    )
    odometry_wait_s: float = setting(
        0.2, "wait up to this long (s, wall clock) for odometry at or after an image's stamp", (0.0, 10.0)
    )
    odometry_source: Literal["topic", "tf"] = setting(
        "topic",
        "where odom -> base_link comes from: topic (nav_msgs/Odometry on odom) or tf (/tf, e.g. an EKF's odom -> "
        "base_link)",
    )
    odometry_reliability: Literal["best_effort", "reliable"] = setting(
        "best_effort",
        "QoS reliability of the odom subscription: best_effort accepts reliable and best-effort publishers",
    )
    odom_frame: str = setting(
        "odom", "odometry frame (REP 105 odom): the odometry's header.frame_id, or its /tf parent"
    )
    map_frame: str = setting("map", "frame of the teach map (REP 105 map; the teach pass's odometry frame)")
    base_frame: str = setting(
        "base_link", "vehicle frame (REP 105 base_link; teach_node reads the camera extrinsic under it on /tf_static)"
    )
    torch_threads: int = setting(2, "CPU threads for the learned and xfeat backends (torch.set_num_threads)", (1, 256))

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class StereoSet:
    """One synchronised stereo set as received, and when it arrived (time.monotonic, s)."""

    left: Image
    right: Image
    left_info: CameraInfo
    right_info: CameraInfo
    received_monotonic: float

    @property
    def stamp_ns(self) -> int:
        """Image stamp (ns)."""
        return conversions.stamp_to_ns(self.left.header.stamp)


@dataclass
class HealthPeriod:
    """What happened since the last summary: its start (time.monotonic, s), per handled frame the latency from image
    stamp to result (ms, node clock) and from arrival to result (ms), and the failed frames and input errors."""

    started_monotonic: float
    latencies_ms: list[float] = field(default_factory=list)
    processing_ms: list[float] = field(default_factory=list)
    errors: int = 0

    def values(self, now_monotonic: float) -> dict[str, str]:
        """rate_hz, latency_ms, processing_ms (means; "" without frames) over the period ending now."""
        elapsed_s = now_monotonic - self.started_monotonic
        return {
            "rate_hz": f"{len(self.latencies_ms) / elapsed_s if elapsed_s > 0 else 0.0:.2f}",
            "latency_ms": f"{sum(self.latencies_ms) / len(self.latencies_ms):.1f}" if self.latencies_ms else "",
            "processing_ms": f"{sum(self.processing_ms) / len(self.processing_ms):.1f}" if self.processing_ms else "",
        }


class FrameWorker:
    """A worker thread fed through a bounded mailbox; `capacity` 1 is a one-slot mailbox holding only the newest item.

    `put` never blocks: when the mailbox is full its oldest item is dropped. `stop` ends the thread after the item in
    progress, first working off the mailbox if `drain_on_stop`.
    """

    def __init__(self, name: str, capacity: int, process: Callable[[Any], None], drain_on_stop: bool) -> None:
        if capacity < 1:
            raise ValueError(f"FrameWorker: capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._process = process
        self._drain_on_stop = drain_on_stop
        self._items: deque = deque()
        self._cv = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, item: Any) -> bool:
        """Queue `item`; True when the oldest queued item was dropped to make room."""
        with self._cv:
            self._items.append(item)
            dropped = len(self._items) > self.capacity
            if dropped:
                self._items.popleft()
            self._cv.notify()
        return dropped

    def stop(self, timeout_s: float) -> int:
        """Stop the thread (waiting up to `timeout_s`); returns the number of queued items left unprocessed."""
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join(timeout=timeout_s)
        with self._cv:
            abandoned = len(self._items)
            self._items.clear()
        return abandoned

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._items and not self._stopping:
                    self._cv.wait()
                if self._stopping and not (self._drain_on_stop and self._items):
                    return
                item = self._items.popleft()
            self._process(item)


class StereoNode(Node, abc.ABC):
    """Base of the stereo nodes (see the module docstring). `configs`: (config class, parameter prefix) pairs, the
    first a `StereoNodeConfig` (-> `self.cfg`), the second the core's (-> `self.core_config`)."""

    SUMMARY_STATUS = "summary"  # the status on /diagnostics: "<node name>: summary"
    DROPPED_KEY = "frames_dropped"  # summary key of the sets dropped from the mailbox

    def __init__(self, node_name: str, configs: Sequence[tuple[type, str]], runtime: Sequence[str] = ()) -> None:
        super().__init__(node_name)
        self._configs = configs
        self._parameter_names = [spec.name for spec in node_parameter_specs(configs)]
        self.cfg, self.core_config = read_node_configs(self, node_name, configs, runtime)
        self._stats_lock = threading.Lock()
        self.frames_received = 0
        self.frames_processed = 0  # frames with a result, failed ones included
        self.frames_failed = 0
        self.frames_dropped = 0
        self.last_error = ""
        self._period = HealthPeriod(time.monotonic())
        self.odometry = self.make_odometry_buffer()
        self.path_pub = self.create_publisher(Path, "localization/path", LATCHED_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.frame_status_pub = self.create_publisher(DiagnosticArray, FRAME_STATUS_TOPIC, FRAME_STATUS_QOS)
        self._worker: FrameWorker | None = None
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def make_odometry_buffer(self) -> OdometryBuffer:
        """A pose buffer with the node's odometry horizon, largest gap and hold."""
        return OdometryBuffer(self.cfg.odometry_horizon_s, self.cfg.odometry_max_gap_s, self.cfg.odometry_max_hold_s)

    def start_input(self, mailbox_capacity: int, drain_on_stop: bool, warn_on_drop: bool) -> None:
        """Subscribe odometry and the stereo input, start the summary timer and the worker."""
        self.get_logger().info(describe_compat())
        self._warn_on_drop = warn_on_drop
        self._worker = FrameWorker(f"{self.get_name()}_worker", mailbox_capacity, self._process_safely, drain_on_stop)
        self._odometry_subscription = self._subscribe_odometry()
        self.stereo = StereoInput(self, self._on_stereo, self.cfg.queue_size, self.cfg.slop_s)
        self._watchdog_timer = create_watchdog_timer(self, self.cfg.diagnostics_period_s, self._on_diagnostics_timer)
        self._worker.start()

    def stop_input(self, timeout_s: float) -> int:
        """Unsubscribe the inputs and stop the timer and the worker (the frame in progress finishes, and the queue
        is worked off first if the worker drains on stop; up to `timeout_s`); returns the frames left unprocessed."""
        if self._worker is None:
            return 0
        for subscription in (*self.stereo.subscriptions(), self._odometry_subscription):
            self.destroy_subscription(subscription)
        self.destroy_timer(self._watchdog_timer)
        abandoned = self._worker.stop(timeout_s)
        self._worker = None
        return abandoned

    def _subscribe_odometry(self) -> Any:
        if self.cfg.odometry_source == "tf":
            try:
                from tf2_msgs.msg import TFMessage
            except ImportError as exc:
                raise ImportError(TF2_MSGS_HINT) from exc
            return self.create_subscription(TFMessage, "/tf", self._on_tf, QoSProfile(depth=100))
        reliability = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
        qos = QoSProfile(depth=50, reliability=reliability[self.cfg.odometry_reliability])
        return self.create_subscription(Odometry, "odom", self._on_odometry, qos)

    def _on_set_parameters(self, parameters: list) -> SetParametersResult:
        """Validate new values of run-time parameters as at start-up, then hand the new configs to the node."""
        values = {name: self.get_parameter(name).value for name in self._parameter_names}
        values.update({parameter.name: parameter.value for parameter in parameters})
        try:
            configs = [config_from_parameters(config_cls, values, prefix) for config_cls, prefix in self._configs]
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self._apply_configs(*configs)
        return SetParametersResult(successful=True)

    def _apply_configs(self, node_config: Any, core_config: Any) -> None:
        """Take new configs from a run-time parameter change (executor thread); a node may apply more."""
        self.cfg = node_config
        self.core_config = core_config

    # ---- what a node implements -----------------------------------------------------------------------------
    @abc.abstractmethod
    def _process(self, frames: StereoSet) -> None:
        """Handle one stereo set (worker thread)."""

    @abc.abstractmethod
    def _frame_failed(self, frames: StereoSet, error: str) -> None:
        """Account for and report a stereo set that could not be handled."""

    @abc.abstractmethod
    def _summary(self) -> tuple[bytes, str, dict]:
        """(level, message, values) of the node's own verdict for the health summary; called holding the stats
        lock."""

    # ---- executor thread ------------------------------------------------------------------------------------
    def _on_odometry(self, msg: Odometry) -> None:
        try:
            add_odometry_message(self.odometry, msg, self.cfg.odom_frame, self.cfg.base_frame)
        except ValueError as exc:
            self._report_problem(str(exc))

    def _on_tf(self, msg: Any) -> None:
        try:
            add_tf_message(self.odometry, msg, self.cfg.odom_frame, self.cfg.base_frame)
        except ValueError as exc:
            self._report_problem(str(exc))

    def _on_stereo(self, left: Image, right: Image, left_info: CameraInfo, right_info: CameraInfo) -> None:
        worker = self._worker
        if worker is None:
            return  # the inputs were stopped while this message was in flight
        dropped = worker.put(StereoSet(left, right, left_info, right_info, time.monotonic()))
        with self._stats_lock:
            self.frames_received += 1
            self.frames_dropped += dropped
            dropped_total = self.frames_dropped
        if dropped and self._warn_on_drop:
            self.get_logger().warning(
                f"worker behind: dropped the oldest queued frame ({dropped_total} so far)", throttle_duration_sec=5.0
            )

    def _on_diagnostics_timer(self) -> None:
        input_age_s, warning = self.stereo.watchdog(self.cfg.no_input_warning_s, self.get_logger())
        now = time.monotonic()
        with self._stats_lock:
            period, self._period = self._period, HealthPeriod(now)
            level, message, values = self._summary()
            values = {
                **period.values(now),
                "input_age_s": f"{input_age_s:.1f}",
                **values,
                "frames_received": self.frames_received,
                "frames_processed": self.frames_processed,
                "frames_failed": self.frames_failed,
                self.DROPPED_KEY: self.frames_dropped,
                "last_error": self.last_error,
            }
        if period.errors:
            errors = f"{period.errors} errors in {now - period.started_monotonic:.1f} s, last: {values['last_error']}"
            level, message = max(level, DiagnosticStatus.ERROR), f"{errors}; {message}"
        if warning is not None:
            level, message = max(level, DiagnosticStatus.WARN), f"{warning}; {message}"
        self.diagnostics_pub.publish(self._status_array(self.SUMMARY_STATUS, level, message, values))

    # ---- worker thread --------------------------------------------------------------------------------------
    def _process_safely(self, frames: StereoSet) -> None:
        try:
            self._process(frames)
        except Exception as exc:
            self.get_logger().error(f"internal error on a frame:\n{traceback.format_exc()}")
            self._frame_failed(
                frames, f"frame at {frames.stamp_ns * 1e-9:.3f} s failed: internal error {type(exc).__name__}: {exc}"
            )

    # ---- outputs --------------------------------------------------------------------------------------------
    def _publish_frame_result(
        self,
        frames: StereoSet,
        level: bytes,
        message: str,
        state: str = "",
        inliers: int = 0,
        keyframe_id: int | None = None,
        error: str = "",
        extra: dict | None = None,
    ) -> None:
        """Count a handled frame (a failed one when `error`) for the summary and publish its `FrameRecord` (plus
        `extra` values) on localization/frame_status, stamped with the image time (worker thread)."""
        stamp_ns = frames.stamp_ns
        processing_ms = 1000.0 * (time.monotonic() - frames.received_monotonic)
        latency_ms = (self.get_clock().now().nanoseconds - stamp_ns) * 1e-6
        with self._stats_lock:
            self.frames_processed += 1
            self._period.latencies_ms.append(latency_ms)
            self._period.processing_ms.append(processing_ms)
            if error:
                self.frames_failed += 1
                self.last_error = error
                self._period.errors += 1
        record = FrameRecord(stamp_ns, state, inliers, processing_ms, -1 if keyframe_id is None else keyframe_id, error)
        values = {**record.to_dict(), **(extra or {})}
        array = self._status_array(FRAME_STATUS_KIND, level, message, values, conversions.ns_to_stamp(stamp_ns))
        self.frame_status_pub.publish(array)

    def _report_problem(self, error: str) -> None:
        """Log `error` (throttled); it becomes the summary's last_error and makes the next summary an ERROR."""
        with self._stats_lock:
            self.last_error = error
            self._period.errors += 1
        self.get_logger().error(error, throttle_duration_sec=5.0)

    def _status_array(self, kind: str, level: bytes, message: str, values: dict, stamp: Any = None) -> DiagnosticArray:
        """A DiagnosticArray holding one DiagnosticStatus "<node name>: <kind>", stamped `stamp` (default: now)."""
        array = DiagnosticArray()
        array.header.stamp = stamp if stamp is not None else self.get_clock().now().to_msg()
        array.status = [
            DiagnosticStatus(
                level=level,
                name=f"{self.get_name()}: {kind}",
                message=message,
                hardware_id=self.get_name(),
                values=[KeyValue(key=str(k), value=str(v)) for k, v in values.items()],
            )
        ]
        return array

    def close(self) -> None:
        """Stop the input and the worker (the frame in progress finishes first; up to 10 s)."""
        self.stop_input(timeout_s=10.0)
