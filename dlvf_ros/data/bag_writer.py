"""Writes a stereo run bag (rosbag2, mcap or sqlite3) from simulator frames with `rosbags`.

Per frame at its `stamp_ns`: left/right sensor_msgs/Image (rgb8) and CameraInfo (right P[0,3] = -f b),
nav_msgs/Odometry (odom -> base_link; twist by central differences; covariance growing with distance travelled),
geometry_msgs/PoseStamped ground truth (world); once, on /tf_static (transient local), base_link ->
camera_left_optical / camera_right_optical from `rig.T_vehicle_camera`. The bag is written in a hidden staging
directory and renamed into place at the end, so a killed writer never leaves a half bag under the final name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np
from tqdm import tqdm

from dlvf_ros import fileio
from dlvf_ros.data import msg_codec
from dlvf_ros.data.bag_format import STORAGES, BagTopics, typestore_for
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.geometry.transforms import body_twist

if TYPE_CHECKING:
    from rosbags.interfaces import Connection

# 1-sigma wheel-odometry noise reported in the Odometry covariances
ODOM_POSITION_SIGMA_M = 0.02  # plus ODOM_POSITION_SIGMA_PER_M for each metre travelled
ODOM_POSITION_SIGMA_PER_M = 0.01
ODOM_ROTATION_SIGMA_RAD = 0.005  # plus ODOM_YAW_SIGMA_PER_M (heading) for each metre travelled
ODOM_YAW_SIGMA_PER_M = 0.002
ODOM_LINEAR_SPEED_SIGMA_MPS = 0.05
ODOM_ANGULAR_SPEED_SIGMA_RADPS = 0.02


def odometry_covariances(distance_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(6x6 pose, 6x6 twist) covariances (x, y, z, rx, ry, rz; m^2, rad^2 and per s^2) a wheel odometry reports
    after `distance_m` metres travelled."""
    position_sigma = ODOM_POSITION_SIGMA_M + ODOM_POSITION_SIGMA_PER_M * distance_m
    yaw_sigma = ODOM_ROTATION_SIGMA_RAD + ODOM_YAW_SIGMA_PER_M * distance_m
    pose_sigma = [position_sigma] * 3 + [ODOM_ROTATION_SIGMA_RAD] * 2 + [yaw_sigma]
    twist_sigma = [ODOM_LINEAR_SPEED_SIGMA_MPS] * 3 + [ODOM_ANGULAR_SPEED_SIGMA_RADPS] * 3
    return np.diag(np.square(pose_sigma)), np.diag(np.square(twist_sigma))


def _qos(durability_transient_local: bool, depth: int):
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    zero = QosTime(0, 0)
    return Qos(
        QosHistory.KEEP_LAST,
        depth,
        QosReliability.RELIABLE,
        QosDurability.TRANSIENT_LOCAL if durability_transient_local else QosDurability.VOLATILE,
        zero,
        zero,
        QosLiveliness.AUTOMATIC,
        zero,
        False,
    )


class _MessageFactory:
    """Builds rosbags message objects of one typestore."""

    def __init__(self, typestore) -> None:
        self.typestore = typestore
        self.types = typestore.types

    def header(self, stamp_ns: int, frame_id: str):
        sec, nanosec = msg_codec.ns_to_sec_nanosec(stamp_ns)
        return self.types["std_msgs/msg/Header"](
            stamp=self.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id
        )

    def image(self, stamp_ns: int, frame_id: str, rgb: np.ndarray):
        fields = msg_codec.array_to_image_fields(rgb, "rgb8")
        fields["data"] = np.frombuffer(fields["data"], dtype=np.uint8)
        return self.types["sensor_msgs/msg/Image"](header=self.header(stamp_ns, frame_id), **fields)

    def camera_info(self, stamp_ns: int, frame_id: str, rig: StereoRig, right: bool):
        roi = self.types["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        )
        return self.types["sensor_msgs/msg/CameraInfo"](
            header=self.header(stamp_ns, frame_id),
            binning_x=0,
            binning_y=0,
            roi=roi,
            **msg_codec.camera_info_fields(rig, right),
        )

    def pose(self, T: np.ndarray):
        xyz, q = msg_codec.matrix_to_xyz_quaternion(T)
        return self.types["geometry_msgs/msg/Pose"](
            position=self.types["geometry_msgs/msg/Point"](x=xyz[0], y=xyz[1], z=xyz[2]),
            orientation=self.types["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]),
        )

    def vector3(self, v):
        return self.types["geometry_msgs/msg/Vector3"](x=float(v[0]), y=float(v[1]), z=float(v[2]))

    def transform_stamped(self, stamp_ns: int, parent: str, child: str, T_parent_child: np.ndarray):
        xyz, q = msg_codec.matrix_to_xyz_quaternion(T_parent_child)
        transform = self.types["geometry_msgs/msg/Transform"](
            translation=self.vector3(xyz),
            rotation=self.types["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]),
        )
        return self.types["geometry_msgs/msg/TransformStamped"](
            header=self.header(stamp_ns, parent), child_frame_id=child, transform=transform
        )

    def odometry(
        self, stamp_ns: int, topics: BagTopics, T_odom_vehicle: np.ndarray, twist_body: np.ndarray, distance_m: float
    ):
        pose_covariance, twist_covariance = odometry_covariances(distance_m)
        T = self.types
        return T["nav_msgs/msg/Odometry"](
            header=self.header(stamp_ns, topics.odom_frame),
            child_frame_id=topics.base_frame,
            pose=T["geometry_msgs/msg/PoseWithCovariance"](
                pose=self.pose(T_odom_vehicle), covariance=pose_covariance.reshape(36)
            ),
            twist=T["geometry_msgs/msg/TwistWithCovariance"](
                twist=T["geometry_msgs/msg/Twist"](
                    linear=self.vector3(twist_body[:3]), angular=self.vector3(twist_body[3:])
                ),
                covariance=twist_covariance.reshape(36),
            ),
        )


def _pairs_with_next(frames: Iterable) -> Iterator[tuple[object, object | None]]:
    """(frame, next frame or None): one frame of look-ahead for finite differences."""
    previous = None
    for frame in frames:
        if previous is not None:
            yield previous, frame
        previous = frame
    if previous is not None:
        yield previous, None


def write_run_bag(
    path: str | Path,
    frames: Iterable,
    rig: StereoRig,
    storage: str = "mcap",
    topics: BagTopics = BagTopics(),
    distro: str = "kilted",
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write a stereo run bag directory at `path`; returns it.

    `frames`: objects with pose_id, stamp_ns (strictly increasing), left, right ((H, W, 3) uint8 RGB of the rig's
    size), T_world_vehicle and T_odom_vehicle (4x4; either may be None to leave that topic out). Streams: frames are
    not kept in memory. Twist: central differences of T_odom_vehicle (one-sided at the ends).
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    if storage not in STORAGES:
        raise ValueError(f"unsupported bag storage {storage!r}; supported: {STORAGES}")
    final = Path(path)
    if final.exists() and not overwrite:
        raise FileExistsError(f"bag {final} exists already; remove it or pass overwrite=True")
    final.parent.mkdir(parents=True, exist_ok=True)
    typestore = typestore_for(distro)
    make = _MessageFactory(typestore)
    with fileio.replacing_directory(final) as staged:
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        with Writer(staged, version=Writer.VERSION_LATEST, storage_plugin=plugin) as writer:
            connections: dict[str, Connection] = {}

            def write(topic: str, message, stamp_ns: int, latched: bool = False) -> None:
                if topic not in connections:
                    connections[topic] = writer.add_connection(
                        topic,
                        message.__msgtype__,
                        typestore=typestore,
                        offered_qos_profiles=[_qos(latched, 1 if latched else 10)],
                    )
                writer.write(connections[topic], stamp_ns, typestore.serialize_cdr(message, message.__msgtype__))

            count = _write_frames(write, make, frames, rig, topics, progress, final)
        if count == 0:
            raise ValueError(f"write_run_bag({final}): no frames to write")
    return final


def _write_frames(
    write, make: _MessageFactory, frames: Iterable, rig: StereoRig, topics: BagTopics, progress: bool, name: Path
) -> int:
    previous_odom, distance_m, count = None, 0.0, 0
    iterator = _pairs_with_next(frames)
    for frame, following in tqdm(iterator, desc=f"bag {name.name}", unit="frame", disable=not progress):
        stamp_ns = int(frame.stamp_ns)
        if following is not None and int(following.stamp_ns) <= stamp_ns:
            raise ValueError(
                f"frame {following.pose_id}: stamp_ns {following.stamp_ns} does not increase (previous {stamp_ns})"
            )
        for side in ("left", "right"):
            image = np.asarray(getattr(frame, side))
            if image.shape != (rig.height, rig.width, 3) or image.dtype != np.uint8:
                raise ValueError(
                    f"frame {frame.pose_id}: {side} image is {image.dtype} {image.shape}, the rig needs "
                    f"uint8 ({rig.height}, {rig.width}, 3) RGB"
                )
        if count == 0:
            T_vehicle_right = rig.T_vehicle_camera @ transforms.make_transform(np.eye(3), [rig.baseline, 0.0, 0.0])
            tf = make.types["tf2_msgs/msg/TFMessage"](
                transforms=[
                    make.transform_stamped(stamp_ns, topics.base_frame, topics.left_frame, rig.T_vehicle_camera),
                    make.transform_stamped(stamp_ns, topics.base_frame, topics.right_frame, T_vehicle_right),
                ]
            )
            write(topics.tf_static, tf, stamp_ns, latched=True)
        write(topics.left_info, make.camera_info(stamp_ns, topics.left_frame, rig, right=False), stamp_ns)
        write(topics.left_image, make.image(stamp_ns, topics.left_frame, frame.left), stamp_ns)
        write(topics.right_info, make.camera_info(stamp_ns, topics.right_frame, rig, right=True), stamp_ns)
        write(topics.right_image, make.image(stamp_ns, topics.right_frame, frame.right), stamp_ns)
        T_odom = getattr(frame, "T_odom_vehicle", None)
        if T_odom is not None:
            if previous_odom is not None:
                distance_m += float(np.linalg.norm(T_odom[:3, 3] - previous_odom[1][:3, 3]))
            twist = _central_twist(previous_odom, (stamp_ns, T_odom), following)
            write(topics.odom, make.odometry(stamp_ns, topics, T_odom, twist, distance_m), stamp_ns)
            previous_odom = (stamp_ns, np.asarray(T_odom, dtype=np.float64))
        T_world = getattr(frame, "T_world_vehicle", None)
        if T_world is not None:
            pose = make.types["geometry_msgs/msg/PoseStamped"](
                header=make.header(stamp_ns, topics.world_frame), pose=make.pose(T_world)
            )
            write(topics.ground_truth, pose, stamp_ns)
        count += 1
    return count


def _central_twist(previous, current, following) -> np.ndarray:
    """Body twist at `current` from its neighbours (stamp_ns, T_odom_vehicle); zero for a single frame."""
    after = None
    if following is not None and getattr(following, "T_odom_vehicle", None) is not None:
        after = (int(following.stamp_ns), np.asarray(following.T_odom_vehicle, dtype=np.float64))
    start = previous if previous is not None else current
    end = after if after is not None else current
    if start is end:
        return np.zeros(6)
    return body_twist(start[1], end[1], (end[0] - start[0]) * 1e-9)
