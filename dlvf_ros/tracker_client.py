"""What a path tracker reads from localizer_node, and a small client that reads it (no rclpy import here).

Per processed stereo frame localizer_node publishes two messages with the frame's image stamp (reliable, depth 10;
the mapping is documented in docs/conventions.md, "Path-tracker output"):
- `localization/vertex_odometry` (nav_msgs/Odometry), only for frames with a pose (a fix, or the last fix carried on
  by odometry): `header.frame_id` = `teach_vertex_<id>` (the nearest teach vertex), `child_frame_id` = the vehicle
  frame, `pose` = T_vertex_vehicle with its covariance in the vertex frame, `twist` = the vehicle's velocity in its
  own frame (from odometry).
- `localization/tracking_status` (diagnostic_msgs/DiagnosticArray, one status, never on /diagnostics), for every
  processed frame: level OK / WARN / ERROR for LOCALIZED / DEGRADED / LOST, message = the health reason, values
  `localized`, `state`, `fixed`, `inliers`, `vertex_id`, `progress_m`, `cross_track_m`, `heading_error_rad` (the last
  four empty when the frame has no pose).
`localized` is false when the localizer is LOST or the frame has no pose: a tracker must stop then.

`TrackerClient` pairs the two by stamp into one `TrackingUpdate` per frame (nothing is emitted until both halves of a
frame with a pose have arrived), newest first wins. Feed it from your own subscriptions, or let `attach(node)` create
them on an rclpy node you own:

    client = TrackerClient(on_update=lambda update: controller.track(update))
    client.attach(node)                      # or: client.add_vertex_odometry(msg) / client.add_tracking_status(msg)
    if client.latest is None or not client.latest.localized: stop()
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlvf_ros.data import msg_codec

VERTEX_ODOMETRY_TOPIC = "localization/vertex_odometry"
TRACKING_STATUS_TOPIC = "localization/tracking_status"
QUEUE_DEPTH = 10
VERTEX_FRAME_PREFIX = "teach_vertex_"

# keys of the tracking status values
LOCALIZED_KEY = "localized"
STATE_KEY = "state"
FIXED_KEY = "fixed"
INLIERS_KEY = "inliers"
VERTEX_KEY = "vertex_id"
PROGRESS_KEY = "progress_m"
CROSS_TRACK_KEY = "cross_track_m"
HEADING_ERROR_KEY = "heading_error_rad"


def vertex_frame_id(vertex_id: int) -> str:
    """The frame id naming teach vertex `vertex_id` (`teach_vertex_<id>`)."""
    return f"{VERTEX_FRAME_PREFIX}{int(vertex_id)}"


def vertex_id_of_frame(frame_id: str) -> int:
    """The vertex id in a `teach_vertex_<id>` frame id; ValueError for any other frame id."""
    suffix = frame_id.lstrip("/").removeprefix(VERTEX_FRAME_PREFIX)
    if suffix == frame_id.lstrip("/") or not suffix.isdigit():
        raise ValueError(f"frame id {frame_id!r} does not name a teach vertex ({VERTEX_FRAME_PREFIX}<id>)")
    return int(suffix)


def format_flag(value: bool) -> str:
    return "true" if value else "false"


def format_number(value: float | None) -> str:
    """A float as the status carries it: repr (exact round trip), empty for None."""
    return "" if value is None else repr(float(value))


@dataclass(frozen=True)
class VertexPose:
    """One `localization/vertex_odometry` message, parsed."""

    stamp_ns: int
    vertex_id: int
    T_vertex_vehicle: np.ndarray  # 4x4
    covariance: np.ndarray  # 6x6 (x, y, z, rx, ry, rz) in the vertex frame, m^2 / rad^2
    velocity: np.ndarray  # (vx, vy, vz, wx, wy, wz) in the vehicle frame, m/s and rad/s


@dataclass(frozen=True)
class TrackingStatus:
    """One `localization/tracking_status` message, parsed (path values None when the frame has no pose)."""

    stamp_ns: int
    localized: bool
    state: str  # LOCALIZED, DEGRADED or LOST
    reason: str
    fixed: bool  # this frame gave a new fix
    inliers: int
    vertex_id: int | None
    progress_m: float | None  # arc length along the taught path (m)
    cross_track_m: float | None  # + left of the path (m)
    heading_error_rad: float | None  # vehicle yaw - path yaw, + counter-clockwise (rad)


@dataclass(frozen=True)
class TrackingUpdate:
    """Everything the localizer said about one frame: the status and, when the frame has a pose, its vertex pose."""

    status: TrackingStatus
    pose: VertexPose | None

    @property
    def stamp_ns(self) -> int:
        return self.status.stamp_ns

    @property
    def localized(self) -> bool:
        return self.status.localized


def _stamp_ns(header: Any) -> int:
    return msg_codec.stamp_to_ns(header.stamp)


def parse_vertex_odometry(msg: Any) -> VertexPose:
    """A nav_msgs/Odometry from `localization/vertex_odometry` as a `VertexPose`; ValueError when malformed."""
    twist = msg.twist.twist
    return VertexPose(
        stamp_ns=_stamp_ns(msg.header),
        vertex_id=vertex_id_of_frame(msg.header.frame_id),
        T_vertex_vehicle=msg_codec.pose_to_matrix(msg.pose.pose),
        covariance=np.asarray(msg.pose.covariance, dtype=np.float64).reshape(6, 6),
        velocity=np.array(
            [twist.linear.x, twist.linear.y, twist.linear.z, twist.angular.x, twist.angular.y, twist.angular.z]
        ),
    )


def parse_tracking_status(msg: Any) -> TrackingStatus:
    """A diagnostic_msgs/DiagnosticArray from `localization/tracking_status` as a `TrackingStatus`; ValueError when
    it is not one."""
    if len(msg.status) != 1:
        raise ValueError(f"a tracking status carries one DiagnosticStatus, got {len(msg.status)}")
    status = msg.status[0]
    values = {kv.key: kv.value for kv in status.values}
    missing = {LOCALIZED_KEY, STATE_KEY, FIXED_KEY, INLIERS_KEY, VERTEX_KEY} - set(values)
    if missing:
        raise ValueError(f"tracking status without {sorted(missing)}: {values}")

    def number(key: str) -> float | None:
        return None if values.get(key, "") == "" else float(values[key])

    return TrackingStatus(
        stamp_ns=_stamp_ns(msg.header),
        localized=values[LOCALIZED_KEY] == "true",
        state=values[STATE_KEY],
        reason=status.message,
        fixed=values[FIXED_KEY] == "true",
        inliers=int(values[INLIERS_KEY]),
        vertex_id=None if values[VERTEX_KEY] == "" else int(values[VERTEX_KEY]),
        progress_m=number(PROGRESS_KEY),
        cross_track_m=number(CROSS_TRACK_KEY),
        heading_error_rad=number(HEADING_ERROR_KEY),
    )


class TrackerClient:
    """Pairs vertex poses and tracking statuses by stamp into `TrackingUpdate`s (thread-safe).

    `on_update(update)` is called for each complete frame newer than the last one emitted; `latest` is that update.
    A frame more than `backwards_jump_s` older than `latest` means time went backwards (a looped bag, a simulator
    reset): it starts afresh. At most `max_pending` unpaired halves are kept (the oldest go first).
    """

    def __init__(
        self,
        on_update: Callable[[TrackingUpdate], None] | None = None,
        max_pending: int = 20,
        backwards_jump_s: float = 1.0,
    ) -> None:
        self.on_update = on_update
        self.max_pending = max_pending
        self.backwards_jump_ns = int(backwards_jump_s * 1e9)
        self.latest: TrackingUpdate | None = None
        self._poses: dict[int, VertexPose] = {}
        self._statuses: dict[int, TrackingStatus] = {}
        self._lock = threading.Lock()

    def add_vertex_odometry(self, msg: Any) -> TrackingUpdate | None:
        """Take one `localization/vertex_odometry` message; the update it completes, if any."""
        return self._pair(pose=parse_vertex_odometry(msg))

    def add_tracking_status(self, msg: Any) -> TrackingUpdate | None:
        """Take one `localization/tracking_status` message; the update it completes, if any."""
        return self._pair(status=parse_tracking_status(msg))

    def _pair(self, status: TrackingStatus | None = None, pose: VertexPose | None = None) -> TrackingUpdate | None:
        """One half of a frame: the update it completes with the pending other half (a status without a vertex is
        complete alone), else None and the half waits for its partner."""
        with self._lock:
            if status is None:
                assert pose is not None
                status = self._statuses.pop(pose.stamp_ns, None)
                if status is None:
                    self._remember(self._poses, pose.stamp_ns, pose)
                    return None
            elif status.vertex_id is not None:
                pose = self._poses.pop(status.stamp_ns, None)
                if pose is None:
                    self._remember(self._statuses, status.stamp_ns, status)
                    return None
            update = self._accept(TrackingUpdate(status, pose))
        if update is not None and self.on_update is not None:
            self.on_update(update)
        return update

    def attach(self, node: Any, namespace: str = "") -> None:
        """Subscribe both topics (under the localizer's `namespace`) on an rclpy node; its executor feeds this."""
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry

        prefix = namespace.rstrip("/") + "/" if namespace else ""
        node.create_subscription(Odometry, prefix + VERTEX_ODOMETRY_TOPIC, self.add_vertex_odometry, QUEUE_DEPTH)
        node.create_subscription(DiagnosticArray, prefix + TRACKING_STATUS_TOPIC, self.add_tracking_status, QUEUE_DEPTH)

    def _remember(self, pending: dict, stamp_ns: int, item: Any) -> None:
        pending[stamp_ns] = item
        while len(pending) > self.max_pending:
            del pending[min(pending)]

    def _accept(self, update: TrackingUpdate) -> TrackingUpdate | None:
        if self.latest is not None and update.stamp_ns <= self.latest.stamp_ns:
            if self.latest.stamp_ns - update.stamp_ns <= self.backwards_jump_ns:
                return None  # an older frame completed late: the tracker already acted on a newer one
            self._poses.clear()  # time went backwards: what is pending is from before the jump
            self._statuses.clear()
        self.latest = update
        for pending in (self._poses, self._statuses):
            for stamp_ns in [s for s in pending if s < update.stamp_ns]:
                del pending[stamp_ns]
        return update
