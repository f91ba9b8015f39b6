"""Reads a stereo run bag: the rig from CameraInfo + /tf_static, then stereo pairs with odometry and ground truth
interpolated at each image stamp. Any rosbag2 bag with these topics works (rosbags reads mcap and sqlite3).
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from dlvf_ros.data import msg_codec
from dlvf_ros.data.bag_format import TOPIC_TYPES, BagError, BagStereoFrame, BagTopics, typestore_for
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig

if TYPE_CHECKING:
    from rosbags.interfaces import Connection

log = logging.getLogger(__name__)

_MAX_UNPAIRED = 32  # images waiting for their stereo partner before the oldest is dropped


class PoseTrack:
    """Time-stamped poses; `at(stamp_ns)` interpolates inside the track and takes the nearest within `tolerance_ns`
    outside it (None beyond)."""

    def __init__(self, stamps_ns: list[int], poses: list[np.ndarray], tolerance_ns: int = 50_000_000) -> None:
        order = np.argsort(stamps_ns, kind="stable")
        self.stamps_ns = np.asarray(stamps_ns, dtype=np.int64)[order]
        self.poses = [poses[i] for i in order]
        self.tolerance_ns = tolerance_ns

    def __len__(self) -> int:
        return len(self.poses)

    def at(self, stamp_ns: int) -> np.ndarray | None:
        if not self.poses:
            return None
        i = int(np.searchsorted(self.stamps_ns, stamp_ns))
        if i < len(self.poses) and self.stamps_ns[i] == stamp_ns:
            return self.poses[i].copy()
        if 0 < i < len(self.poses):
            t0, t1 = self.stamps_ns[i - 1], self.stamps_ns[i]
            return transforms.interpolate(self.poses[i - 1], self.poses[i], float(stamp_ns - t0) / float(t1 - t0))
        nearest = 0 if i == 0 else len(self.poses) - 1
        if abs(int(self.stamps_ns[nearest]) - stamp_ns) <= self.tolerance_ns:
            return self.poses[nearest].copy()
        return None


def _static_transform(tf_messages: list, parent: str, child: str) -> np.ndarray | None:
    """T_parent_child from /tf_static messages, walking up the tree from child (None if not connected)."""
    edges: dict[str, tuple[str, np.ndarray]] = {}
    for message in tf_messages:
        for t in message.transforms:
            parent_frame = t.header.frame_id.lstrip("/")
            edges[t.child_frame_id.lstrip("/")] = (parent_frame, msg_codec.transform_to_matrix(t.transform))
    T_parent_child, frame, visited = np.eye(4), child, set()
    while frame != parent:
        if frame not in edges or frame in visited:
            return None
        visited.add(frame)
        frame, T_up = edges[frame]
        T_parent_child = T_up @ T_parent_child
    return T_parent_child


@contextlib.contextmanager
def _open_reader(path: Path) -> Iterator:
    from rosbags.highlevel import AnyReader

    if not path.exists():
        raise FileNotFoundError(f"bag {path} does not exist")
    try:
        reader = AnyReader([path], default_typestore=typestore_for("kilted"))
        reader.open()
    except Exception as exc:  # rosbags raises many types for a foreign, truncated or corrupt bag
        raise BagError(
            f"bag {path} cannot be read ({type(exc).__name__}: {exc}); pass a rosbag2 bag directory (with "
            "metadata.yaml, mcap or sqlite3 storage) or its .mcap/.db3 file"
        ) from exc
    try:
        yield reader
    finally:
        reader.close()


def _messages(reader, connections: list, path: Path, skipped: Counter) -> Iterator[tuple[Connection, Any]]:
    """(connection, message) in log-time order. A message that does not decode is skipped and counted; a storage
    that fails part-way (truncated or corrupt file) is a BagError."""
    stream = reader.messages(connections=connections)
    read = 0
    while True:
        try:
            connection, _, raw = next(stream)
        except StopIteration:
            return
        except Exception as exc:  # rosbags raises many types for a truncated or corrupt storage file
            raise BagError(
                f"bag {path} is corrupt or truncated after {read} message(s) ({type(exc).__name__}: {exc})"
            ) from exc
        read += 1
        try:
            message = reader.deserialize(raw, connection.msgtype)
        except Exception as exc:  # rosbags raises many types for corrupt message bytes
            count_skip(skipped, f"undecodable {connection.topic} message", f"bag {path}: {type(exc).__name__}: {exc}")
            continue
        yield connection, message


def count_skip(skipped: Counter, reason: str, detail: str) -> None:
    """Count one skipped item under `reason`; the first of each reason is logged with its detail."""
    if not skipped[reason]:
        log.warning("%s (%s); such items are skipped and counted", reason, detail)
    skipped[reason] += 1


class BagFrames:
    """Iterator over a bag's stereo frames; `skipped` counts, by reason, what was left out so far (undecodable or
    unpaired images, messages that do not decode, odometry or ground truth that is not a rigid pose)."""

    def __init__(self, frames: Iterator[BagStereoFrame], skipped: Counter) -> None:
        self._frames = frames
        self.skipped = skipped

    def __iter__(self) -> BagFrames:
        return self

    def __next__(self) -> BagStereoFrame:
        return next(self._frames)


def read_stereo_bag(
    path: str | Path,
    topics: BagTopics = BagTopics(),
    T_vehicle_camera: np.ndarray | None = None,
    tolerance_ns: int = 50_000_000,
) -> tuple[StereoRig, BagFrames]:
    """The rig (CameraInfo + /tf_static) and an iterator of stereo frames paired by header stamp, in bag order.

    Odometry and ground truth are interpolated at each image stamp (nearest within `tolerance_ns` just outside
    their range, else None). `T_vehicle_camera` is used only when the bag has no /tf_static for the left camera.
    Each topic's message type is checked before any message is decoded. A bag that cannot be read, lacks a topic
    or the calibration is a BagError; bad single messages are skipped and counted in the iterator's `skipped`.
    """
    path = Path(path)
    skipped: Counter = Counter()
    with _open_reader(path) as reader:
        by_topic = {c.topic: c for c in reader.connections}
        missing = [
            t for t in (topics.left_image, topics.right_image, topics.left_info, topics.right_info) if t not in by_topic
        ]
        if missing:
            raise BagError(f"bag {path} lacks topic(s) {missing}; it has {sorted(by_topic)}")
        for field, msgtype in TOPIC_TYPES.items():
            connection = by_topic.get(getattr(topics, field))
            if connection is not None and connection.msgtype != msgtype:
                raise BagError(
                    f"bag {path}: topic {connection.topic} has message type {connection.msgtype}, expected {msgtype}"
                )
        wanted = [
            by_topic[t]
            for t in (topics.left_info, topics.right_info, topics.tf_static, topics.odom, topics.ground_truth)
            if t in by_topic
        ]
        infos: dict[str, Any] = {}
        tf_messages: list[Any] = []
        odom: tuple[list[int], list[np.ndarray]] = ([], [])
        truth: tuple[list[int], list[np.ndarray]] = ([], [])
        for connection, message in _messages(reader, wanted, path, skipped):
            if connection.topic in (topics.left_info, topics.right_info):
                infos.setdefault(connection.topic, message)
            elif connection.topic == topics.tf_static:
                tf_messages.append(message)
            else:
                track = odom if connection.topic == topics.odom else truth
                try:
                    pose = msg_codec.pose_to_matrix(
                        message.pose.pose if connection.topic == topics.odom else message.pose
                    )
                except ValueError as exc:
                    count_skip(skipped, f"bad pose on {connection.topic}", str(exc))
                    continue
                track[0].append(msg_codec.stamp_to_ns(message.header.stamp))
                track[1].append(pose)
    left_info, right_info = infos.get(topics.left_info), infos.get(topics.right_info)
    frame = (left_info.header.frame_id if left_info is not None else topics.left_frame).lstrip("/") or topics.left_frame
    try:
        T_static = _static_transform(tf_messages, topics.base_frame, frame)
    except ValueError as exc:
        raise BagError(f"bag {path}: {topics.tf_static}: {exc}") from exc
    if T_static is None:
        if T_vehicle_camera is None:
            raise BagError(
                f"bag {path} has no {topics.base_frame} -> {frame} transform on {topics.tf_static}; "
                "pass T_vehicle_camera="
            )
        T_static = np.asarray(T_vehicle_camera, dtype=np.float64)
    try:
        rig = msg_codec.rig_from_camera_infos(left_info, right_info, T_static)
    except ValueError as exc:
        raise BagError(f"bag {path}: {exc}") from exc
    tracks = PoseTrack(*odom, tolerance_ns=tolerance_ns), PoseTrack(*truth, tolerance_ns=tolerance_ns)
    return rig, BagFrames(_iterate_frames(path, topics, rig, *tracks, skipped), skipped)


def _decode_image(message, rig: StereoRig) -> np.ndarray:
    """An Image message as an RGB array of the rig's size that owns its pixels (writable, unlike a view of the
    bag's buffer); ValueError naming the problem."""
    image = msg_codec.convert_encoding(msg_codec.image_to_array(message), message.encoding, "rgb8")
    if image.shape[:2] != (rig.height, rig.width):
        raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, CameraInfo says {rig.width}x{rig.height}")
    return image if image.flags.writeable else image.copy()


def _iterate_frames(
    path: Path, topics: BagTopics, rig: StereoRig, odom: PoseTrack, truth: PoseTrack, skipped: Counter
) -> Iterator[BagStereoFrame]:
    # images waiting for their partner, by topic and stamp; None marks an image that did not decode
    pending: dict[str, dict[int, np.ndarray | None]] = {topics.left_image: {}, topics.right_image: {}}
    with _open_reader(path) as reader:
        connections = [c for c in reader.connections if c.topic in pending]
        for connection, message in _messages(reader, connections, path, skipped):
            stamp_ns = msg_codec.stamp_to_ns(message.header.stamp)
            try:
                image = _decode_image(message, rig)
            except ValueError as exc:
                count_skip(skipped, "undecodable image", f"bag {path}: {connection.topic} at {stamp_ns} ns: {exc}")
                image = None
            other = topics.right_image if connection.topic == topics.left_image else topics.left_image
            if stamp_ns in pending[other]:
                partner = pending[other].pop(stamp_ns)
                for stale in [s for s in pending[other] if s < stamp_ns]:
                    _count_unpaired(pending[other].pop(stale), skipped)
                if image is None or partner is None:
                    continue  # counted when the bad image was decoded
                left, right = (image, partner) if connection.topic == topics.left_image else (partner, image)
                yield BagStereoFrame(stamp_ns, left, right, odom.at(stamp_ns), truth.at(stamp_ns))
            else:
                waiting = pending[connection.topic]
                if stamp_ns in waiting:
                    count_skip(skipped, "duplicate image stamp", f"bag {path}: {connection.topic} at {stamp_ns} ns")
                waiting[stamp_ns] = image
                if len(waiting) > _MAX_UNPAIRED:
                    _count_unpaired(waiting.pop(min(waiting)), skipped)
    for waiting in pending.values():
        for image in waiting.values():
            _count_unpaired(image, skipped)
    if skipped:
        log.warning("bag %s: skipped %s", path, ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items())))


def _count_unpaired(image: np.ndarray | None, skipped: Counter) -> None:
    if image is not None:  # an image that did not decode was counted then
        skipped["image without a partner of the same stamp"] += 1
