"""ROS 2 messages (rclpy classes) <-> numpy / StereoRig: images, camera info, poses, odometry, transforms, stamps.

A cv_bridge replacement by encoding table (rgb8, bgr8, mono8, rgba8, bgra8, 16UC1, 32FC1): receiving is zero-copy
(`np.frombuffer` honouring `step`), sending uses `arr.tobytes()`; colour and grey convert to rgb8.
The field logic is shared with the bag code in dlvf_ros/data/msg_codec.py. Imports message classes only, never
rclpy's node machinery.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import (
    Point,
    Pose,
    PoseStamped,
    PoseWithCovariance,
    PoseWithCovarianceStamped,
    Quaternion,
    Transform,
    TransformStamped,
    Twist,
    TwistWithCovariance,
    Vector3,
)
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from dlvf_ros.data import msg_codec
from dlvf_ros.data.msg_codec import IMAGE_ENCODINGS, stamp_to_ns
from dlvf_ros.geometry.camera import StereoRig

__all__ = [
    "IMAGE_ENCODINGS",
    "array_to_image",
    "camera_infos_to_rig",
    "image_to_array",
    "image_to_rgb8",
    "make_header",
    "matrix_to_odometry",
    "matrix_to_pose",
    "matrix_to_pose_stamped",
    "matrix_to_pose_with_covariance_stamped",
    "matrix_to_transform_stamped",
    "ns_to_stamp",
    "odometry_to_matrix",
    "pose_stamped_to_matrix",
    "pose_to_matrix",
    "rig_to_camera_infos",
    "stamp_to_ns",
    "transform_stamped_to_matrix",
]


# --- stamps ------------------------------------------------------------------------------------------------------


def ns_to_stamp(stamp_ns: int) -> Time:
    sec, nanosec = msg_codec.ns_to_sec_nanosec(stamp_ns)
    return Time(sec=sec, nanosec=nanosec)


def make_header(stamp_ns: int, frame_id: str) -> Header:
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


# --- images ------------------------------------------------------------------------------------------------------


def image_to_array(msg: Image) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, C) or (H, W) numpy view of the message data (no copy), in its own encoding."""
    return msg_codec.image_to_array(msg)


def image_to_rgb8(msg: Image) -> np.ndarray:
    """Colour or grey image message (rgb8, bgr8, mono8, rgba8, bgra8) -> (H, W, 3) uint8 RGB (a new array)."""
    return msg_codec.convert_encoding(msg_codec.image_to_array(msg), msg.encoding, "rgb8")


def array_to_image(array: np.ndarray, encoding: str = "rgb8", stamp_ns: int = 0, frame_id: str = "") -> Image:
    """Numpy image -> sensor_msgs/Image; the array's dtype and channels must match `encoding`."""
    return Image(header=make_header(stamp_ns, frame_id), **msg_codec.array_to_image_fields(array, encoding))


# --- camera info -------------------------------------------------------------------------------------------------


def camera_infos_to_rig(left: CameraInfo, right: CameraInfo, T_vehicle_camera: np.ndarray) -> StereoRig:
    """StereoRig from a rectified left/right CameraInfo pair; `T_vehicle_camera` of the left optical frame."""
    return msg_codec.rig_from_camera_infos(left, right, T_vehicle_camera)


def rig_to_camera_infos(
    rig: StereoRig,
    stamp_ns: int = 0,
    left_frame: str = "camera_left_optical",
    right_frame: str = "camera_right_optical",
) -> tuple[CameraInfo, CameraInfo]:
    """(left, right) CameraInfo of a rig; right P[0, 3] = -f * baseline."""
    return tuple(
        CameraInfo(header=make_header(stamp_ns, frame), **msg_codec.camera_info_fields(rig, right))
        for frame, right in ((left_frame, False), (right_frame, True))
    )


# --- poses and transforms ----------------------------------------------------------------------------------------


def pose_to_matrix(pose: Pose) -> np.ndarray:
    return msg_codec.pose_to_matrix(pose)


def matrix_to_pose(T: np.ndarray) -> Pose:
    xyz, q = msg_codec.matrix_to_xyz_quaternion(T)
    return Pose(position=Point(x=xyz[0], y=xyz[1], z=xyz[2]), orientation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]))


def pose_stamped_to_matrix(msg: PoseStamped) -> tuple[int, str, np.ndarray]:
    """(stamp_ns, frame_id, T_frame_pose)."""
    return stamp_to_ns(msg.header.stamp), msg.header.frame_id, pose_to_matrix(msg.pose)


def matrix_to_pose_stamped(T: np.ndarray, stamp_ns: int, frame_id: str) -> PoseStamped:
    return PoseStamped(header=make_header(stamp_ns, frame_id), pose=matrix_to_pose(T))


def _covariance36(covariance: np.ndarray | None, name: str) -> np.ndarray:
    if covariance is None:
        return np.zeros(36)
    covariance = np.asarray(covariance, dtype=np.float64)
    if covariance.shape != (6, 6) or not np.allclose(covariance, covariance.T) or not np.all(np.isfinite(covariance)):
        raise ValueError(f"{name} must be a finite symmetric 6x6 matrix (x, y, z, rx, ry, rz), got {covariance.shape}")
    return covariance.reshape(36)


def matrix_to_pose_with_covariance_stamped(
    T: np.ndarray, covariance: np.ndarray | None, stamp_ns: int, frame_id: str
) -> PoseWithCovarianceStamped:
    """`covariance`: 6x6 over (x, y, z, rot x, rot y, rot z) in m^2 / rad^2, or None (unknown: zeros)."""
    return PoseWithCovarianceStamped(
        header=make_header(stamp_ns, frame_id),
        pose=PoseWithCovariance(pose=matrix_to_pose(T), covariance=_covariance36(covariance, "pose covariance")),
    )


def odometry_to_matrix(msg: Odometry) -> tuple[int, np.ndarray]:
    """(stamp_ns, T_odom_vehicle) where odom = header.frame_id and vehicle = child_frame_id."""
    return stamp_to_ns(msg.header.stamp), pose_to_matrix(msg.pose.pose)


def matrix_to_odometry(
    T_odom_vehicle: np.ndarray,
    stamp_ns: int,
    frame_id: str = "odom",
    child_frame_id: str = "base_link",
    twist: np.ndarray | None = None,
    pose_covariance: np.ndarray | None = None,
    twist_covariance: np.ndarray | None = None,
) -> Odometry:
    """`twist`: (vx, vy, vz, wx, wy, wz) in the child frame (m/s, rad/s), or None for zero."""
    twist = np.zeros(6) if twist is None else np.asarray(twist, dtype=np.float64).reshape(6)
    return Odometry(
        header=make_header(stamp_ns, frame_id),
        child_frame_id=child_frame_id,
        pose=PoseWithCovariance(
            pose=matrix_to_pose(T_odom_vehicle), covariance=_covariance36(pose_covariance, "pose covariance")
        ),
        twist=TwistWithCovariance(
            twist=Twist(
                linear=Vector3(x=twist[0], y=twist[1], z=twist[2]), angular=Vector3(x=twist[3], y=twist[4], z=twist[5])
            ),
            covariance=_covariance36(twist_covariance, "twist covariance"),
        ),
    )


def transform_stamped_to_matrix(msg: TransformStamped) -> tuple[str, str, np.ndarray]:
    """(parent frame, child frame, T_parent_child)."""
    return msg.header.frame_id, msg.child_frame_id, msg_codec.transform_to_matrix(msg.transform)


def matrix_to_transform_stamped(T_parent_child: np.ndarray, stamp_ns: int, parent: str, child: str) -> TransformStamped:
    xyz, q = msg_codec.matrix_to_xyz_quaternion(T_parent_child)
    return TransformStamped(
        header=make_header(stamp_ns, parent),
        child_frame_id=child,
        transform=Transform(
            translation=Vector3(x=xyz[0], y=xyz[1], z=xyz[2]), rotation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3])
        ),
    )
