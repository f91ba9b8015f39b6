"""Synchronised stereo input shared by teach_node and localizer_node.

Four inputs (left/right Image + left/right CameraInfo, sensor-data QoS, REP 2003) go through an approximate-time
synchroniser (queue size and slop from parameters). `StereoInput` also watches every input on its own, so when no
synchronised set has arrived for a while it can say why: which input is silent, or which two never fall within the slop
of each other (`watchdog`, called from a timer made by `create_watchdog_timer`). `decode_stereo` turns a synchronised
set into RGB arrays and a `StereoRig`, raising `StereoInputError` with a message naming the bad input (encoding, size
mismatch, calibration).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from dlvf_ros.data.bag_format import BagTopics
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.ros import conversions
from dlvf_ros.ros.compat import cv_bridge, message_filters, stamp_ns_of

INPUT_NAMES = ("left image", "right image", "left camera_info", "right camera_info")
# rectified images (stereo_image_proc's names); remap them to your camera's topics
TOPICS = ("stereo/left/image_rect", "stereo/right/image_rect", "stereo/left/camera_info", "stereo/right/camera_info")


def bag_remappings(topics: BagTopics = BagTopics()) -> dict[str, str]:
    """Remappings of the node inputs to a stereo run bag's topics (`dlvf sim --bags` names its images image_raw)."""
    bag = (topics.left_image, topics.right_image, topics.left_info, topics.right_info)
    return {node: bag_topic for node, bag_topic in zip(TOPICS, bag) if "/" + node != bag_topic}


def distortion_note(left_info: CameraInfo) -> str | None:
    """What the node says once when CameraInfo carries a non-zero D (P is used: the images must be rectified)."""
    if not np.any(np.asarray(left_info.d, dtype=np.float64) != 0.0):
        return None
    return (
        f"camera_info has distortion coefficients D = {list(left_info.d)}: using P, the rectified projection; the "
        "images must be rectified (image_rect)"
    )


class StereoInputError(ValueError):
    """A synchronised stereo set cannot be used; the message names the input and the problem."""


@dataclass
class StereoFrame:
    """A decoded synchronised stereo pair: image stamp (ns), RGB uint8 arrays and the rig from CameraInfo."""

    stamp_ns: int
    left_rgb: np.ndarray
    right_rgb: np.ndarray
    rig: StereoRig


class StereoInput:
    """Subscribes the four stereo topics of `node` and calls `on_frame(left, right, left_info, right_info)`."""

    def __init__(self, node, on_frame, queue_size: int, slop_s: float) -> None:
        self.slop_s = slop_s
        self._lock = threading.Lock()
        self._latest_stamp_ns: list[int | None] = [None] * 4
        self._counts_since_sync = [0] * 4
        self._last_sync_monotonic = time.monotonic()
        self._silence_reported = False
        self.synchronised_sets = 0
        self._subscribers = []
        self.topics = []  # as resolved (namespace, remappings), for the explanations
        for index, (topic, msg_type) in enumerate(zip(TOPICS, (Image, Image, CameraInfo, CameraInfo))):
            subscriber = message_filters.Subscriber(node, msg_type, topic, qos_profile=qos_profile_sensor_data)
            subscriber.registerCallback(self._count, index)
            self._subscribers.append(subscriber)
            self.topics.append(getattr(subscriber.sub, "topic_name", topic))
        self._sync = message_filters.ApproximateTimeSynchronizer(self._subscribers, queue_size, slop_s)
        self._on_frame = on_frame
        self._sync.registerCallback(self._synchronised)

    def subscriptions(self) -> list:
        """The rclpy subscriptions of the four inputs (to destroy them)."""
        return [subscriber.sub for subscriber in self._subscribers]

    def _count(self, msg, index: int) -> None:
        with self._lock:
            self._counts_since_sync[index] += 1
            self._latest_stamp_ns[index] = stamp_ns_of(msg)

    def _synchronised(self, *msgs) -> None:
        with self._lock:
            self._counts_since_sync = [0] * 4
            self._last_sync_monotonic = time.monotonic()
            self.synchronised_sets += 1
            self._silence_reported = False
        self._on_frame(*msgs)

    def seconds_since_last_set(self) -> float:
        return time.monotonic() - self._last_sync_monotonic

    def watchdog(self, warning_s: float, logger) -> tuple[float, str | None]:
        """(seconds since the last synchronised set, warning or None): a warning naming the cause once no set has
        arrived for more than `warning_s`; logged on `logger` once per silence."""
        silent_s = self.seconds_since_last_set()
        if not silent_s > warning_s:
            return silent_s, None
        message = f"no synchronised stereo set for {silent_s:.1f} s: {self.explain_silence()}"
        if not self._silence_reported:
            logger.warning(message)
            self._silence_reported = True
        return silent_s, message

    def explain_silence(self) -> str:
        """Why no synchronised set has arrived: silent inputs, or the pair of inputs furthest apart in time."""
        with self._lock:
            counts = list(self._counts_since_sync)
            latest = list(self._latest_stamp_ns)
        missing = [f"{name} ({topic})" for name, topic, count in zip(INPUT_NAMES, self.topics, counts) if count == 0]
        if len(missing) == 4:
            return f"no stereo input at all (no image or camera_info message on {', '.join(self.topics)})"
        if missing:
            received = ", ".join(f"{name} {count}" for name, count in zip(INPUT_NAMES, counts) if count)
            return f"missing {', '.join(missing)} (received {received}); check the topic names and remappings"
        stamps_ns = [-1 if stamp is None else stamp for stamp in latest]  # None: a message without a header stamp
        spread = max(stamps_ns) - min(stamps_ns)
        first, last = INPUT_NAMES[int(np.argmin(stamps_ns))], INPUT_NAMES[int(np.argmax(stamps_ns))]
        return (
            f"all inputs arrive but never within slop {self.slop_s:.3f} s of each other (latest {first} and "
            f"{last} stamps differ by {spread * 1e-9:.3f} s); check the camera time stamps or raise slop_s"
        )


def create_watchdog_timer(node, period_s: float, callback):
    """A timer on the steady (wall) clock: the summary and the input watchdog keep running when a bag's /clock
    stops."""
    return node.create_timer(period_s, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))


_bridge = cv_bridge.CvBridge()


def decode_stereo(
    left: Image, right: Image, left_info: CameraInfo, right_info: CameraInfo, T_vehicle_camera: np.ndarray
) -> StereoFrame:
    """RGB arrays and the rig (CameraInfo intrinsics and baseline, `T_vehicle_camera` extrinsic) of one set."""
    images = []
    for name, msg in (("left image", left), ("right image", right)):
        try:
            images.append(_bridge.imgmsg_to_cv2(msg, "rgb8"))
        except (cv_bridge.CvBridgeError, ValueError, TypeError) as exc:
            raise StereoInputError(f"{name}: {exc}") from exc
    if images[0].shape != images[1].shape:
        raise StereoInputError(
            f"left image {left.width}x{left.height} and right image {right.width}x{right.height} "
            "differ in size; publish a rectified pair of one size"
        )
    try:
        rig = conversions.camera_infos_to_rig(left_info, right_info, T_vehicle_camera)
    except ValueError as exc:
        raise StereoInputError(f"camera_info: {exc}") from exc
    if (rig.width, rig.height) != (left.width, left.height):
        raise StereoInputError(
            f"camera_info is for {rig.width}x{rig.height} images but the images are {left.width}x{left.height}"
        )
    stamp_ns = stamp_ns_of(left)
    if stamp_ns is None:
        raise StereoInputError("left image: no header.stamp; publish sensor_msgs/Image")
    return StereoFrame(stamp_ns, images[0], images[1], rig)
