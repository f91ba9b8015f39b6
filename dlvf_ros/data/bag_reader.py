"""Reads a stereo run bag: the rig from CameraInfo + /tf_static, then stereo pairs with odometry and ground truth
interpolated at each image stamp. Any rosbag2 bag with these topics works (rosbags reads mcap and sqlite3).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from dlvf_ros.data import msg_codec
from dlvf_ros.data.bag_format import BagStereoFrame, BagTopics, typestore_for
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig

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
    from rosbags.highlevel import AnyReader, AnyReaderError

    if not path.exists():
        raise FileNotFoundError(f"bag {path} does not exist")
    reader = AnyReader([path], default_typestore=typestore_for("kilted"))
    try:
        reader.open()
    except AnyReaderError as exc:
        raise ValueError(f"bag {path} cannot be read: {exc}") from exc
    try:
        yield reader
    finally:
        reader.close()


def read_stereo_bag(
    path: str | Path,
    topics: BagTopics = BagTopics(),
    T_vehicle_camera: np.ndarray | None = None,
    tolerance_ns: int = 50_000_000,
) -> tuple[StereoRig, Iterator[BagStereoFrame]]:
    """The rig (CameraInfo + /tf_static) and an iterator of stereo frames paired by header stamp, in time order.

    Odometry and ground truth are interpolated at each image stamp (nearest within `tolerance_ns` just outside
    their range, else None). `T_vehicle_camera` is used only when the bag has no /tf_static for the left camera.
    """
    path = Path(path)
    with _open_reader(path) as reader:
        by_topic = {c.topic: c for c in reader.connections}
        missing = [
            t for t in (topics.left_image, topics.right_image, topics.left_info, topics.right_info) if t not in by_topic
        ]
        if missing:
            raise ValueError(f"bag {path} lacks topic(s) {missing}; it has {sorted(by_topic)}")
        wanted = [
            by_topic[t]
            for t in (topics.left_info, topics.right_info, topics.tf_static, topics.odom, topics.ground_truth)
            if t in by_topic
        ]
        infos: dict[str, object] = {}
        tf_messages, odom, truth = [], ([], []), ([], [])
        for connection, _, raw in reader.messages(connections=wanted):
            message = reader.deserialize(raw, connection.msgtype)
            if connection.topic in (topics.left_info, topics.right_info):
                infos.setdefault(connection.topic, message)
            elif connection.topic == topics.tf_static:
                tf_messages.append(message)
            else:
                track = odom if connection.topic == topics.odom else truth
                track[0].append(msg_codec.stamp_to_ns(message.header.stamp))
                track[1].append(
                    msg_codec.pose_to_matrix(message.pose.pose if connection.topic == topics.odom else message.pose)
                )
    left_info, right_info = infos.get(topics.left_info), infos.get(topics.right_info)
    frame = (left_info.header.frame_id if left_info is not None else topics.left_frame).lstrip("/") or topics.left_frame
    T_static = _static_transform(tf_messages, topics.base_frame, frame)
    if T_static is None:
        if T_vehicle_camera is None:
            raise ValueError(
                f"bag {path} has no {topics.base_frame} -> {frame} transform on {topics.tf_static}; "
                "pass T_vehicle_camera="
            )
        T_static = np.asarray(T_vehicle_camera, dtype=np.float64)
    try:
        rig = msg_codec.rig_from_camera_infos(left_info, right_info, T_static)
    except ValueError as exc:
        raise ValueError(f"bag {path}: {exc}") from exc
    tracks = PoseTrack(*odom, tolerance_ns=tolerance_ns), PoseTrack(*truth, tolerance_ns=tolerance_ns)
    return rig, _iterate_frames(path, topics, rig, *tracks)


def _iterate_frames(
    path: Path, topics: BagTopics, rig: StereoRig, odom: PoseTrack, truth: PoseTrack
) -> Iterator[BagStereoFrame]:
    pending: dict[str, dict[int, np.ndarray]] = {topics.left_image: {}, topics.right_image: {}}
    dropped = 0
    with _open_reader(path) as reader:
        connections = [c for c in reader.connections if c.topic in pending]
        for connection, _, raw in reader.messages(connections=connections):
            message = reader.deserialize(raw, connection.msgtype)
            stamp_ns = msg_codec.stamp_to_ns(message.header.stamp)
            image = msg_codec.convert_encoding(msg_codec.image_to_array(message), message.encoding, "rgb8")
            if image.shape[:2] != (rig.height, rig.width):
                raise ValueError(
                    f"bag {path}: {connection.topic} image at {stamp_ns} ns is {image.shape[1]}x"
                    f"{image.shape[0]}, CameraInfo says {rig.width}x{rig.height}"
                )
            other = topics.right_image if connection.topic == topics.left_image else topics.left_image
            if stamp_ns in pending[other]:
                partner = pending[other].pop(stamp_ns)
                left, right = (image, partner) if connection.topic == topics.left_image else (partner, image)
                for stale in [s for s in pending[other] if s < stamp_ns]:
                    del pending[other][stale]
                    dropped += 1
                yield BagStereoFrame(stamp_ns, left, right, odom.at(stamp_ns), truth.at(stamp_ns))
            else:
                pending[connection.topic][stamp_ns] = image
                if len(pending[connection.topic]) > _MAX_UNPAIRED:
                    del pending[connection.topic][min(pending[connection.topic])]
                    dropped += 1
    dropped += sum(len(p) for p in pending.values())
    if dropped:
        log.warning("bag %s: %d image(s) had no partner with the same stamp and were skipped", path, dropped)
