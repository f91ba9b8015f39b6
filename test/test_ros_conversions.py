"""ROS message <-> numpy / StereoRig conversions on real rclpy message classes (incl. a CDR round trip)."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image

from dlvf_ros.data import msg_codec
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.ros import conversions as cv

RNG = np.random.default_rng(7)
ARRAYS = {
    "rgb8": RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    "bgr8": RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    "mono8": RNG.integers(0, 256, (5, 7), dtype=np.uint8),
    "rgba8": RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    "bgra8": RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    "16UC1": RNG.integers(0, 65536, (5, 7), dtype=np.uint16),
    "32FC1": RNG.normal(size=(5, 7)).astype(np.float32),
}


@pytest.mark.parametrize("encoding", sorted(ARRAYS))
def test_image_round_trip_over_cdr(encoding):
    array = ARRAYS[encoding]
    msg = cv.array_to_image(array, encoding, stamp_ns=3_000_000_123, frame_id="camera_left_optical")
    received = deserialize_message(serialize_message(msg), Image)
    assert (received.encoding, received.height, received.width) == (encoding, 5, 7)
    assert cv.stamp_to_ns(received.header.stamp) == 3_000_000_123
    decoded = cv.image_to_array(received)
    assert decoded.dtype == array.dtype and np.array_equal(decoded, array)


def test_receive_is_zero_copy_and_honours_step():
    rows = [np.concatenate([ARRAYS["rgb8"][r].reshape(-1), [255, 254, 253]]).astype(np.uint8) for r in range(5)]
    msg = Image(height=5, width=7, encoding="rgb8", step=7 * 3 + 3, data=np.concatenate(rows).tobytes())
    decoded = cv.image_to_array(msg)
    assert np.array_equal(decoded, ARRAYS["rgb8"]) and np.array_equal(cv.image_to_rgb8(msg), decoded)
    msg.data[0] = (int(msg.data[0]) + 1) % 256  # the view follows the message buffer: no copy was made
    assert decoded[0, 0, 0] == msg.data[0]


def test_big_endian_16uc1():
    depth_mm = ARRAYS["16UC1"]
    msg = Image(height=5, width=7, encoding="16UC1", is_bigendian=1, step=14, data=depth_mm.astype(">u2").tobytes())
    assert np.array_equal(cv.image_to_array(msg), depth_mm)


@pytest.mark.parametrize(
    "encoding, channels",
    [("rgb8", [0, 1, 2]), ("bgr8", [2, 1, 0]), ("rgba8", [0, 1, 2]), ("bgra8", [2, 1, 0]), ("mono8", [0, 0, 0])],
)
def test_colour_images_to_rgb8_bgr8_mono8(encoding, channels):
    array = ARRAYS[encoding]
    msg = cv.array_to_image(array, encoding)
    rgb = cv.image_to_rgb8(msg)
    expected = (array[:, :, None] if array.ndim == 2 else array)[:, :, channels]
    assert rgb.shape == (5, 7, 3) and np.array_equal(rgb, expected)
    decoded = cv.image_to_array(msg)
    assert np.array_equal(msg_codec.convert_encoding(decoded, encoding, "bgr8"), expected[:, :, ::-1])
    grey = msg_codec.convert_encoding(decoded, encoding, "mono8")
    luma = 0.299 * expected[..., 0] + 0.587 * expected[..., 1] + 0.114 * expected[..., 2]
    assert grey.shape == (5, 7) and np.abs(grey - luma).max() <= 1.0


def test_image_errors_name_the_encoding_and_the_fix():
    with pytest.raises(ValueError, match=r"unsupported image encoding 'yuv422'; supported: rgb8, bgr8, mono8"):
        cv.image_to_array(Image(height=1, width=1, encoding="yuv422", step=2, data=b"ab"))
    with pytest.raises(ValueError, match=r"encoding 'rgb8' needs a uint8 array of shape \(H, W, 3\), got float32"):
        cv.array_to_image(ARRAYS["32FC1"], "rgb8")
    with pytest.raises(ValueError, match=r"encoding '16UC1' needs a uint16 array of shape \(H, W\)"):
        cv.array_to_image(ARRAYS["rgb8"], "16UC1")
    with pytest.raises(ValueError, match="image data has 20 bytes, expected step x height = 105"):
        cv.image_to_array(Image(height=5, width=7, encoding="rgb8", step=21, data=bytes(20)))
    with pytest.raises(ValueError, match="step 20 is shorter than a row"):
        cv.image_to_array(Image(height=5, width=7, encoding="rgb8", step=20, data=bytes(100)))
    with pytest.raises(ValueError, match="cannot convert image encoding '32FC1' to 'rgb8'; colour encodings"):
        cv.image_to_rgb8(cv.array_to_image(ARRAYS["32FC1"], "32FC1"))
    with pytest.raises(ValueError, match="cannot convert image encoding 'rgb8' to '16UC1'"):
        msg_codec.convert_encoding(ARRAYS["rgb8"], "rgb8", "16UC1")


def test_camera_infos_round_trip_to_rig():
    rig = StereoRig(
        width=320,
        height=240,
        f=250.5,
        cu=160.25,
        cv=118.5,
        baseline=0.3,
        T_vehicle_camera=transforms.from_xyz_rpy(0.2, 0.0, 1.1, -1.6, 0.0, -1.57),
    )
    left, right = (
        deserialize_message(serialize_message(m), CameraInfo) for m in cv.rig_to_camera_infos(rig, 5, "cam_l", "cam_r")
    )
    assert right.p[3] == pytest.approx(-250.5 * 0.3) and left.p[3] == 0.0 and right.header.frame_id == "cam_r"
    back = cv.camera_infos_to_rig(left, right, rig.T_vehicle_camera)
    assert back.matches(rig, tol=1e-12)


def _broken(field_changes: dict, right_side: bool = True):
    left, right = cv.rig_to_camera_infos(StereoRig())
    target = right if right_side else left
    for name, value in field_changes.items():
        setattr(target, name, value)
    return left, right


@pytest.mark.parametrize(
    "pair, message",
    [
        ((cv.rig_to_camera_infos(StereoRig())[0], None), "missing the right one"),
        (_broken({"p": np.zeros(12)}), "right CameraInfo is uncalibrated"),
        (_broken({"p": np.array([388.0, 0, 253.5, -93.0, 0, 390.0, 196.8, 0, 0, 0, 1, 0])}), "fx 388.0 != fy 390.0"),
        (_broken({"p": StereoRig().projection_matrix(right=False).reshape(12)}), r"right P\[0,3\] = -f \* baseline"),
        (_broken({"width": 640}), "sizes differ"),
    ],
)
def test_invalid_camera_infos(pair, message):
    with pytest.raises(ValueError, match=message):
        cv.camera_infos_to_rig(*pair, np.eye(4))


def test_rectified_camera_info_with_the_raw_distortion_uses_p():
    """stereo_image_proc's image_rect comes with the camera's raw D (and K) and the rectified P: P is the model."""
    from dlvf_ros.ros.stereo_input import distortion_note

    rig = StereoRig()
    left, right = cv.rig_to_camera_infos(rig)
    assert distortion_note(left) is None
    for info in (left, right):
        info.d = [0.1, -0.05, 0.001, 0.0, 0.0]
        info.k = [400.0, 0, 250.0, 0, 400.0, 190.0, 0, 0, 1]  # raw intrinsics: ignored
    assert cv.camera_infos_to_rig(left, right, rig.T_vehicle_camera).matches(rig)
    assert "using P" in distortion_note(left) and "rectified" in distortion_note(left)


def test_poses_transforms_and_odometry_round_trip():
    T = transforms.from_xyz_rpy(1.5, -2.0, 0.25, 0.1, -0.2, 2.9)
    np.testing.assert_allclose(cv.pose_to_matrix(cv.matrix_to_pose(T)), T, atol=1e-12)
    stamp, frame, T_back = cv.pose_stamped_to_matrix(cv.matrix_to_pose_stamped(T, 12_000_000_001, "world"))
    assert (stamp, frame) == (12_000_000_001, "world")
    np.testing.assert_allclose(T_back, T, atol=1e-12)
    parent, child, T_back = cv.transform_stamped_to_matrix(cv.matrix_to_transform_stamped(T, 7, "base_link", "cam"))
    assert (parent, child) == ("base_link", "cam")
    np.testing.assert_allclose(T_back, T, atol=1e-12)
    covariance = np.diag([0.01, 0.01, 0.04, 1e-4, 1e-4, 4e-4])
    odom = cv.matrix_to_odometry(T, 99, twist=[1.0, 0, 0, 0, 0, 0.2], pose_covariance=covariance)
    odom = deserialize_message(serialize_message(odom), type(odom))
    stamp, T_back = cv.odometry_to_matrix(odom)
    assert stamp == 99 and (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")
    np.testing.assert_allclose(T_back, T, atol=1e-12)
    assert odom.twist.twist.angular.z == 0.2 and np.array_equal(np.reshape(odom.pose.covariance, (6, 6)), covariance)
    with_cov = cv.matrix_to_pose_with_covariance_stamped(T, covariance, 5, "map")
    assert with_cov.header.frame_id == "map" and with_cov.pose.covariance[35] == 4e-4


def test_pose_and_stamp_errors():
    bad = cv.matrix_to_pose(np.eye(4))
    bad.orientation.w = 0.0
    with pytest.raises(ValueError, match="invalid quaternion"):
        cv.pose_to_matrix(bad)
    bad.orientation.w = 2.0
    with pytest.raises(ValueError, match="has norm 2.000000, expected 1"):
        cv.pose_to_matrix(bad)
    with pytest.raises(ValueError, match="expected a rigid 4x4 transform"):
        cv.matrix_to_pose(np.diag([2.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="stamp_ns must be >= 0"):
        cv.ns_to_stamp(-1)
    with pytest.raises(ValueError, match="pose covariance must be a finite symmetric 6x6"):
        cv.matrix_to_pose_with_covariance_stamped(np.eye(4), np.ones((3, 3)), 0, "map")
    assert cv.stamp_to_ns(cv.ns_to_stamp(1_999_999_999)) == 1_999_999_999
