"""The one place that picks message_filters, tf2_ros and cv_bridge: the real packages where installed, else equivalents.

Every ROS 2 robot install has `message_filters`, `tf2_ros` and `cv_bridge`; the pip environment has none of them.
Node code does `from dlvf_ros.ros.compat import cv_bridge, message_filters, tf2_ros` and then uses the same calls as
with the real packages (`message_filters.Subscriber(node, Image, topic, qos_profile=...)`,
`message_filters.ApproximateTimeSynchronizer(fs, queue_size, slop)`, `tf2_ros.TransformBroadcaster(node)`,
`tf2_ros.StaticTransformBroadcaster(node)`, `cv_bridge.CvBridge().imgmsg_to_cv2(msg, "rgb8")`).

The equivalents below behave like the real Python packages:
- `ApproximateTimeSynchronizer` (message_filters' Python algorithm): each input keeps up to `queue_size` messages
  keyed by header stamp (a repeated stamp replaces the older message; the oldest stamp is dropped when full). When a
  message arrives, the other inputs' messages within `slop` of it are tried, closest first; the first set whose stamp
  spread is strictly below `slop` is emitted and removed from the queues (so `slop` 0 never matches, as with the
  real class). Older unmatched messages stay queued until pushed out.
- `TransformBroadcaster` publishes tf2_msgs/TFMessage on /tf (depth 100); `StaticTransformBroadcaster` on /tf_static
  with depth 1, transient local, and like rclcpp's (and newer tf2_ros') it re-publishes every static transform sent
  so far, keyed by child frame, so one latched message carries them all.
- `CvBridge` converts with `dlvf_ros.ros.conversions` (numpy by encoding table).
The test environment installs the real message_filters where ../shared/ros2-wheels exists (the Makefile's venv
recipe); `describe()` says which implementation runs, and the test session header repeats it.
"""

from __future__ import annotations

import importlib
import itertools
import threading
from types import SimpleNamespace
from typing import Any, Callable

from rclpy.logging import get_logger
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile

TF2_MSGS_HINT = (
    "tf2_msgs is not installed in this environment: run `bash tools/build_tf2_msgs.sh .venv` (or `make venv`)"
)


def stamp_ns_of(msg: Any) -> int | None:
    """Header stamp of a message in integer nanoseconds, or None for a message without `header.stamp`."""
    stamp = getattr(getattr(msg, "header", None), "stamp", None)
    if stamp is None:
        return None
    if hasattr(stamp, "nanoseconds"):
        return int(stamp.nanoseconds)
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class SimpleFilter:
    """A message source that calls registered callbacks (message_filters.SimpleFilter)."""

    def __init__(self) -> None:
        self.callbacks: dict[int, tuple[Callable, tuple]] = {}

    def registerCallback(self, cb: Callable, *args: Any) -> int:
        connection = len(self.callbacks)
        self.callbacks[connection] = (cb, args)
        return connection

    def signalMessage(self, *msgs: Any) -> None:
        for cb, args in list(self.callbacks.values()):
            cb(*(msgs + args))


class Subscriber(SimpleFilter):
    """A ROS 2 subscription as a filter: `Subscriber(node, msg_type, topic, qos_profile=10, **kwargs)`."""

    def __init__(self, node: Any, msg_type: Any, topic: str, **kwargs: Any) -> None:
        super().__init__()
        self.node = node
        self.topic = topic
        kwargs.setdefault("qos_profile", 10)
        self.sub = node.create_subscription(msg_type, topic, self.callback, **kwargs)

    def callback(self, msg: Any) -> None:
        self.signalMessage(msg)

    def getTopic(self) -> str:
        return self.topic


class ApproximateTimeSynchronizer(SimpleFilter):
    """Emits one message from each input whose header stamps lie within `slop` seconds of each other."""

    def __init__(self, fs: list, queue_size: int, slop: float, allow_headerless: bool = False) -> None:
        super().__init__()
        if len(fs) < 2:
            raise ValueError(f"ApproximateTimeSynchronizer: needs at least 2 inputs, got {len(fs)}")
        if int(queue_size) < 1:
            raise ValueError(f"ApproximateTimeSynchronizer: queue_size must be >= 1, got {queue_size}")
        if not slop >= 0.0:
            raise ValueError(f"ApproximateTimeSynchronizer: slop must be >= 0 s, got {slop}")
        self.queue_size = int(queue_size)
        self.slop_ns = int(round(float(slop) * 1e9))
        self.allow_headerless = allow_headerless
        self.lock = threading.Lock()
        self.queues: list[dict[int, Any]] = [{} for _ in fs]
        self.input_connections = [f.registerCallback(self.add, self.queues[i], i) for i, f in enumerate(fs)]

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int) -> None:
        stamp_ns = stamp_ns_of(msg)
        if stamp_ns is None:
            if not self.allow_headerless:
                get_logger("message_filters_approx").warning(
                    "dropping a message without header.stamp; pass allow_headerless=True to stamp it on arrival"
                )
                return
            from rclpy.clock import ROSClock

            stamp_ns = ROSClock().now().nanoseconds
        matched = None
        with self.lock:
            my_queue[stamp_ns] = msg
            while len(my_queue) > self.queue_size:
                del my_queue[min(my_queue)]
            candidates = []
            for index, queue in enumerate(self.queues):
                if index == my_queue_index:
                    continue
                near = sorted((s for s in queue if abs(s - stamp_ns) <= self.slop_ns), key=lambda s: abs(s - stamp_ns))
                if not near:
                    return
                candidates.append(near)
            for combination in itertools.product(*candidates):
                stamps = list(combination)
                stamps.insert(my_queue_index, stamp_ns)
                if max(stamps) - min(stamps) < self.slop_ns:
                    matched = [queue.pop(s) for queue, s in zip(self.queues, stamps)]
                    break
        if matched is not None:
            self.signalMessage(*matched)


def _tf_message_type() -> Any:
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError as exc:
        raise ImportError(TF2_MSGS_HINT) from exc
    return TFMessage


def _as_transform_list(transform: Any) -> list:
    if isinstance(transform, list):
        return transform
    if hasattr(transform, "__iter__"):
        return list(transform)
    return [transform]


class TransformBroadcaster:
    """Publishes geometry_msgs/TransformStamped on /tf as tf2_msgs/TFMessage (tf2_ros.TransformBroadcaster)."""

    def __init__(self, node: Any, qos: QoSProfile | int | None = None) -> None:
        tf_message = _tf_message_type()
        self._tf_message = tf_message
        self.pub_tf = node.create_publisher(tf_message, "/tf", QoSProfile(depth=100) if qos is None else qos)

    def sendTransform(self, transform: Any) -> None:
        self.pub_tf.publish(self._tf_message(transforms=_as_transform_list(transform)))


class StaticTransformBroadcaster:
    """Publishes static transforms on /tf_static (transient local, depth 1), all of them in every message."""

    def __init__(self, node: Any, qos: QoSProfile | int | None = None) -> None:
        tf_message = _tf_message_type()
        if qos is None:
            qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)
        self._tf_message = tf_message
        self._by_child_frame: dict[str, Any] = {}
        self.pub_tf = node.create_publisher(tf_message, "/tf_static", qos)

    def sendTransform(self, transform: Any) -> None:
        for t in _as_transform_list(transform):
            self._by_child_frame[t.child_frame_id] = t
        self.pub_tf.publish(self._tf_message(transforms=list(self._by_child_frame.values())))


class CvBridgeError(TypeError):
    """An image message cannot be converted (cv_bridge.CvBridgeError)."""


# (dtype, channels) -> encoding, for `cv2_to_imgmsg(..., "passthrough")` where the array alone decides it
_PASSTHROUGH_ENCODINGS = {("uint8", 1): "mono8", ("uint16", 1): "16UC1", ("float32", 1): "32FC1"}


class CvBridge:
    """Image message <-> numpy array by encoding table (cv_bridge.CvBridge; `dlvf_ros.ros.conversions` does it).

    `imgmsg_to_cv2` gives the message's own layout for "passthrough" (or its own encoding), and converts colour and
    grey images to "rgb8" or "bgr8". `cv2_to_imgmsg` needs the encoding named except for single-channel arrays.
    """

    def imgmsg_to_cv2(self, img_msg: Any, desired_encoding: str = "passthrough") -> Any:
        from dlvf_ros.ros import conversions

        try:
            if desired_encoding in ("passthrough", img_msg.encoding):
                return conversions.image_to_array(img_msg).copy()
            if desired_encoding in ("rgb8", "bgr8"):
                rgb = conversions.image_to_rgb8(img_msg)
                return rgb if desired_encoding == "rgb8" else rgb[:, :, ::-1].copy()
        except ValueError as exc:
            size = f"{img_msg.width}x{img_msg.height}"
            raise CvBridgeError(f"image encoding {img_msg.encoding!r} ({size}): {exc}") from exc
        raise CvBridgeError(
            f"conversion to {desired_encoding!r} is not supported; ask for 'passthrough', 'rgb8' or 'bgr8'"
        )

    def cv2_to_imgmsg(self, cvim: Any, encoding: str = "passthrough", header: Any = None) -> Any:
        from dlvf_ros.ros import conversions

        if encoding == "passthrough":
            channels = 1 if cvim.ndim == 2 else cvim.shape[2]
            inferred = _PASSTHROUGH_ENCODINGS.get((str(cvim.dtype), channels))
            if inferred is None:
                raise CvBridgeError(
                    f"cannot infer the encoding of a {cvim.dtype} array with {channels} channels; "
                    "name it, e.g. cv2_to_imgmsg(array, 'rgb8')"
                )
            encoding = inferred
        try:
            msg = conversions.array_to_image(cvim, encoding)
        except ValueError as exc:
            raise CvBridgeError(str(exc)) from exc
        if header is not None:
            msg.header = header
        return msg


FALLBACKS = {
    "message_filters": SimpleNamespace(
        SimpleFilter=SimpleFilter, Subscriber=Subscriber, ApproximateTimeSynchronizer=ApproximateTimeSynchronizer
    ),
    "tf2_ros": SimpleNamespace(
        TransformBroadcaster=TransformBroadcaster, StaticTransformBroadcaster=StaticTransformBroadcaster
    ),
    "cv_bridge": SimpleNamespace(CvBridge=CvBridge, CvBridgeError=CvBridgeError),
}


def _real_or_fallback(name: str) -> tuple[Any, bool]:
    try:
        return importlib.import_module(name), True
    except ImportError:
        return FALLBACKS[name], False


message_filters, HAVE_REAL_MESSAGE_FILTERS = _real_or_fallback("message_filters")
tf2_ros, HAVE_REAL_TF2_ROS = _real_or_fallback("tf2_ros")
cv_bridge, HAVE_REAL_CV_BRIDGE = _real_or_fallback("cv_bridge")


def describe() -> str:
    """One line naming which implementation of each package is in use (for start-up logs)."""
    flags = {
        "message_filters": HAVE_REAL_MESSAGE_FILTERS,
        "tf2_ros": HAVE_REAL_TF2_ROS,
        "cv_bridge": HAVE_REAL_CV_BRIDGE,
    }
    return ", ".join(f"{name}: {'installed' if real else 'dlvf_ros.ros.compat'}" for name, real in flags.items())
