"""ROS message fields <-> numpy / StereoRig, for any message class family (rclpy's or rosbags').

Everything here reads messages by attribute (duck typing) and returns plain values, so the bag code (rosbags
classes) and the nodes (rclpy classes, via dlvf_ros/ros/conversions.py) share one implementation. No ROS import.

Images: an encoding table; decoding is zero-copy (`np.frombuffer`, honouring `step`; the result is read-only when
the message data is immutable), encoding returns `arr.tobytes()`. Stamps are integer nanoseconds.
"""

from __future__ import annotations

import cv2
import numpy as np

from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig

# encoding -> (element dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "mono8": (np.dtype(np.uint8), 1),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}
# colour encodings: source channels that give R, G, B
_RGB_CHANNELS = {"rgb8": [0, 1, 2], "bgr8": [2, 1, 0], "rgba8": [0, 1, 2], "bgra8": [2, 1, 0], "mono8": [0, 0, 0]}
CONVERTIBLE_TO = ("rgb8", "bgr8", "mono8")


def _encoding_spec(encoding: str) -> tuple[np.dtype, int]:
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"unsupported image encoding {encoding!r}; supported: {', '.join(IMAGE_ENCODINGS)}")
    return IMAGE_ENCODINGS[encoding]


# ---------------------------------------------------------------------------------------------------------------
# Stamps
# ---------------------------------------------------------------------------------------------------------------


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time (sec, nanosec) -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_sec_nanosec(stamp_ns: int) -> tuple[int, int]:
    """Integer nanoseconds -> (sec, nanosec) with 0 <= nanosec < 1e9."""
    stamp_ns = int(stamp_ns)
    if stamp_ns < 0:
        raise ValueError(f"stamp_ns must be >= 0, got {stamp_ns}")
    return divmod(stamp_ns, 1_000_000_000)


# ---------------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------------


def image_to_array(image) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, C) or (H, W) array viewing the message data (no copy)."""
    dtype, channels = _encoding_spec(image.encoding)
    dtype = dtype.newbyteorder(">" if image.is_bigendian else "<") if dtype.itemsize > 1 else dtype
    height, width, step = int(image.height), int(image.width), int(image.step)
    row_bytes = width * channels * dtype.itemsize
    if height <= 0 or width <= 0:
        raise ValueError(f"image has no pixels: {width}x{height} ({image.encoding})")
    if step < row_bytes:
        raise ValueError(f"image step {step} is shorter than a row ({width} x {channels} x {dtype.itemsize} bytes)")
    buffer = np.frombuffer(image.data, dtype=np.uint8)
    if buffer.size < step * height:
        raise ValueError(f"image data has {buffer.size} bytes, expected step x height = {step * height}")
    rows = buffer[: step * height].reshape(height, step)[:, :row_bytes]
    array = rows.view(dtype).reshape(height, width, channels)
    return array[:, :, 0] if channels == 1 else array


def array_to_image_fields(array: np.ndarray, encoding: str) -> dict:
    """Numpy image -> dict of sensor_msgs/Image fields (height, width, encoding, is_bigendian, step, data bytes)."""
    dtype, channels = _encoding_spec(encoding)
    array = np.asarray(array)
    expected_ndim = 2 if channels == 1 else 3
    shape_ok = array.ndim == expected_ndim or (channels == 1 and array.ndim == 3 and array.shape[2] == 1)
    if not shape_ok or (array.ndim == 3 and array.shape[2] != channels) or array.dtype != dtype:
        raise ValueError(
            f"encoding {encoding!r} needs a {dtype} array of shape (H, W{'' if channels == 1 else f', {channels}'}), "
            f"got {array.dtype} {array.shape}"
        )
    height, width = array.shape[:2]
    return {
        "height": int(height),
        "width": int(width),
        "encoding": encoding,
        "is_bigendian": 0,
        "step": int(width * channels * dtype.itemsize),
        "data": np.ascontiguousarray(array, dtype=dtype.newbyteorder("<")).tobytes(),
    }


def convert_encoding(array: np.ndarray, encoding: str, desired: str) -> np.ndarray:
    """Image in `encoding` -> `desired` ('passthrough' or the same encoding: unchanged, no copy).

    Colour and grey uint8 encodings convert to rgb8, bgr8 (new arrays) and mono8 (ITU-R 601 luma, as OpenCV).
    """
    if desired in ("passthrough", encoding):
        return array
    if encoding not in _RGB_CHANNELS or desired not in CONVERTIBLE_TO:
        raise ValueError(
            f"cannot convert image encoding {encoding!r} to {desired!r}; colour encodings "
            f"({', '.join(_RGB_CHANNELS)}) convert to {', '.join(CONVERTIBLE_TO)}"
        )
    array = np.asarray(array)
    channels = _RGB_CHANNELS[encoding]
    if desired == "bgr8":
        channels = channels[::-1]
    rgb = np.ascontiguousarray((array[:, :, None] if array.ndim == 2 else array)[:, :, channels])
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if desired == "mono8" else rgb


# ---------------------------------------------------------------------------------------------------------------
# CameraInfo
# ---------------------------------------------------------------------------------------------------------------


def camera_info_fields(rig: StereoRig, right: bool = False) -> dict:
    """sensor_msgs/CameraInfo fields of a rectified camera (no header, binning or roi); right P[0, 3] = -f b."""
    return {
        "width": int(rig.width),
        "height": int(rig.height),
        "distortion_model": "plumb_bob",
        "d": np.zeros(5),
        "k": rig.K.reshape(9).copy(),
        "r": np.eye(3).reshape(9),
        "p": rig.projection_matrix(right).reshape(12),
    }


def rig_from_camera_infos(left, right, T_vehicle_camera: np.ndarray) -> StereoRig:
    """StereoRig from the left and right CameraInfo of a rectified pair (intrinsics from P, baseline from right P).

    Only P is used: it describes the rectified image. D and K are those of the raw camera, so a rectified stream
    (stereo_image_proc's image_rect) may carry a non-zero D with its rectified P; the images must be rectified.
    `T_vehicle_camera`: the left optical frame on the vehicle (from /tf_static).
    """
    if left is None or right is None:
        raise ValueError(f"need both left and right CameraInfo, missing the {'left' if left is None else 'right'} one")
    P_left = np.asarray(left.p, dtype=np.float64).reshape(3, 4)
    P_right = np.asarray(right.p, dtype=np.float64).reshape(3, 4)
    for name, info, P in (("left", left, P_left), ("right", right, P_right)):
        if int(info.width) <= 0 or int(info.height) <= 0 or P[0, 0] <= 0:
            raise ValueError(f"{name} CameraInfo is uncalibrated (size {info.width}x{info.height}, P[0,0] {P[0, 0]})")
        if abs(P[0, 0] - P[1, 1]) > 1e-6 * P[0, 0]:
            raise ValueError(f"{name} CameraInfo: fx {P[0, 0]} != fy {P[1, 1]}; StereoRig needs square pixels")
    if (left.width, left.height) != (right.width, right.height):
        raise ValueError(f"left {left.width}x{left.height} and right {right.width}x{right.height} sizes differ")
    if not np.allclose(P_left[:, :3], P_right[:, :3], rtol=1e-6, atol=1e-6):
        raise ValueError("left and right CameraInfo P have different intrinsics; the pair is not rectified")
    if P_left[0, 3] != 0.0 or P_right[0, 3] >= 0.0:
        raise ValueError(
            f"expected left P[0,3] = 0 and right P[0,3] = -f * baseline < 0, got {P_left[0, 3]} and {P_right[0, 3]}"
        )
    f = float(P_left[0, 0])
    return StereoRig(
        width=int(left.width),
        height=int(left.height),
        f=f,
        cu=float(P_left[0, 2]),
        cv=float(P_left[1, 2]),
        baseline=float(-P_right[0, 3] / f),
        T_vehicle_camera=np.asarray(T_vehicle_camera, dtype=np.float64),
    )


# ---------------------------------------------------------------------------------------------------------------
# Poses and transforms
# ---------------------------------------------------------------------------------------------------------------


def _matrix(xyz, q) -> np.ndarray:
    quaternion = np.array([q.x, q.y, q.z, q.w], dtype=np.float64)
    norm = np.linalg.norm(quaternion)
    if not np.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"invalid quaternion (x, y, z, w) = {quaternion.tolist()}: it must have unit norm")
    if abs(norm - 1.0) > 1e-3:
        raise ValueError(f"quaternion (x, y, z, w) = {quaternion.tolist()} has norm {norm:.6f}, expected 1")
    translation = np.array([xyz.x, xyz.y, xyz.z], dtype=np.float64)
    if not np.all(np.isfinite(translation)):
        raise ValueError(f"invalid translation {translation.tolist()}")
    return transforms.make_transform(transforms.rotation_from_quaternion(quaternion), translation)


def pose_to_matrix(pose) -> np.ndarray:
    """geometry_msgs/Pose (position, orientation) -> 4x4."""
    return _matrix(pose.position, pose.orientation)


def transform_to_matrix(transform) -> np.ndarray:
    """geometry_msgs/Transform (translation, rotation) -> 4x4."""
    return _matrix(transform.translation, transform.rotation)


def matrix_to_xyz_quaternion(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4x4 rigid transform -> (translation (3,), quaternion (x, y, z, w) with w >= 0)."""
    T = np.asarray(T, dtype=np.float64)
    if not transforms.is_rigid(T):
        raise ValueError("expected a rigid 4x4 transform (orthonormal rotation, last row 0 0 0 1)")
    return T[:3, 3].copy(), transforms.quaternion_from_rotation(T[:3, :3])
