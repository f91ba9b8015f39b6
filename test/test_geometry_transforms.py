"""SE(3) helpers and the stereo rig model."""

import numpy as np
import pytest

from dlvf_ros.geometry import transforms as tf
from dlvf_ros.geometry.camera import StereoRig, default_T_vehicle_camera


def random_transform(rng):
    return tf.make_transform(tf.so3_exp(rng.normal(size=3)), rng.normal(size=3) * 5)


def test_invert_and_compose():
    rng = np.random.default_rng(0)
    T_a_b, T_b_c = random_transform(rng), random_transform(rng)
    np.testing.assert_allclose(T_a_b @ tf.invert(T_a_b), np.eye(4), atol=1e-12)
    p_c = rng.normal(size=(10, 3))
    np.testing.assert_allclose(
        tf.transform_points(T_a_b @ T_b_c, p_c), tf.transform_points(T_a_b, tf.transform_points(T_b_c, p_c)), atol=1e-12
    )
    stack = np.stack([T_a_b, T_b_c])
    np.testing.assert_allclose(tf.invert(stack)[1], tf.invert(T_b_c), atol=1e-12)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 0.3, 2.0, np.pi - 1e-7, np.pi])
def test_so3_exp_log_round_trip(angle):
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    R = tf.so3_exp(axis * angle)
    assert tf.is_rigid(tf.make_transform(R, np.zeros(3)))
    np.testing.assert_allclose(tf.so3_exp(tf.so3_log(R)), R, atol=1e-9)
    assert tf.rotation_angle(R) == pytest.approx(angle, abs=1e-7)


def test_interpolate_is_linear_in_translation_and_geodesic_in_rotation():
    T_a, T_b = tf.from_xyz_rpy(1.0, 2.0, 0.0), tf.from_xyz_rpy(3.0, -2.0, 1.0, yaw=np.pi / 2)
    np.testing.assert_allclose(tf.interpolate(T_a, T_b, 0.0), T_a, atol=1e-12)
    np.testing.assert_allclose(tf.interpolate(T_a, T_b, 1.0), T_b, atol=1e-12)
    T_mid = tf.interpolate(T_a, T_b, 0.25)
    np.testing.assert_allclose(T_mid[:3, 3], [1.5, 1.0, 0.25], atol=1e-12)
    np.testing.assert_allclose(T_mid[:3, :3], tf.rot_z(np.pi / 8), atol=1e-12)
    rng = np.random.default_rng(3)
    T_c, T_d = random_transform(rng), random_transform(rng)
    T_half = tf.interpolate(T_c, T_d, 0.5)  # halfway: equal rotation angles to both ends
    assert tf.rotation_angle(T_half[:3, :3].T @ T_c[:3, :3]) == pytest.approx(
        tf.rotation_angle(T_half[:3, :3].T @ T_d[:3, :3]), abs=1e-9
    )


def test_quaternion_round_trip_and_ros_order():
    R = tf.rot_z(np.pi / 2)
    q = tf.quaternion_from_rotation(R)
    np.testing.assert_allclose(q, [0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12)  # (x, y, z, w)
    rng = np.random.default_rng(1)
    for _ in range(20):
        R = tf.so3_exp(rng.normal(size=3))
        np.testing.assert_allclose(tf.rotation_from_quaternion(tf.quaternion_from_rotation(R)), R, atol=1e-9)


def test_from_xyz_rpy_matches_ros_convention_and_yaw():
    T = tf.from_xyz_rpy(1.0, 2.0, 3.0, yaw=0.4)
    assert tf.yaw_of(T) == pytest.approx(0.4)
    np.testing.assert_allclose(T[:3, 3], [1, 2, 3])


def test_se3_log_of_pure_translation_and_rotation():
    np.testing.assert_allclose(tf.se3_log(tf.from_xyz_rpy(1, -2, 3)), [1, -2, 3, 0, 0, 0], atol=1e-12)
    xi = tf.se3_log(tf.from_xyz_rpy(0, 0, 0, yaw=0.5))
    np.testing.assert_allclose(xi, [0, 0, 0, 0, 0, 0.5], atol=1e-12)


def test_default_extrinsic_looks_forward_and_down():
    T_vehicle_camera = default_T_vehicle_camera(pitch_down_deg=19.0)
    optical_axis_vehicle = T_vehicle_camera[:3, :3] @ np.array([0.0, 0.0, 1.0])
    assert optical_axis_vehicle[0] > 0.9  # forward
    assert np.rad2deg(np.arcsin(-optical_axis_vehicle[2])) == pytest.approx(19.0)  # pitched down
    camera_x_vehicle = T_vehicle_camera[:3, :3] @ np.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(camera_x_vehicle, [0.0, -1.0, 0.0], atol=1e-12)  # image right = vehicle right


def test_stereo_rig_pixel_point_pixel_round_trip():
    rig = StereoRig()
    rng = np.random.default_rng(2)
    uv = rng.uniform([0, 0], [rig.width - 1, rig.height - 1], size=(100, 2))
    disparity = rng.uniform(1.0, 48.0, size=100)
    points, valid = rig.points_from_disparity(uv, disparity)
    assert valid.all()
    uv_back, disparity_back = rig.project(points)
    np.testing.assert_allclose(uv_back, uv, atol=1e-9)
    np.testing.assert_allclose(disparity_back, disparity, atol=1e-9)


def test_stereo_rig_rejects_invalid_disparities():
    rig = StereoRig()
    _, valid = rig.points_from_disparity(np.zeros((4, 2)), np.array([0.0, -1.0, np.nan, 1e-6]))
    assert not valid.any()


def test_stereo_rig_validation_and_scaling():
    with pytest.raises(ValueError, match="baseline"):
        StereoRig(baseline=0.0)
    with pytest.raises(ValueError, match="rigid"):
        StereoRig(T_vehicle_camera=np.ones((4, 4)))
    rig = StereoRig()
    half = rig.scaled(256, 192)
    assert half.f == pytest.approx(rig.f / 2)
    # The centre of the image stays the centre under the pixel-centre convention.
    assert (half.cu + 0.5) * 2 - 0.5 == pytest.approx(rig.cu)
    assert StereoRig.from_dict(rig.to_dict()).matches(rig)
    assert not half.matches(rig)
    P_right = rig.projection_matrix(right=True)
    assert P_right[0, 3] == pytest.approx(-rig.f * rig.baseline)


@pytest.mark.parametrize("yaw", [1e-7, 1e-5, 1e-3, 0.01, 1.0, 3.0])
def test_se3_log_inverts_the_exponential_at_all_angles(yaw):
    """Round trip exp(log(T)) == T, including the small angles where the closed form cancels."""
    T = tf.from_xyz_rpy(1.0, -0.5, 0.2, roll=yaw / 3, yaw=yaw)
    xi = tf.se3_log(T)
    rho, phi = xi[:3], xi[3:]
    angle = np.linalg.norm(phi)
    K = np.array([[0.0, -phi[2], phi[1]], [phi[2], 0.0, -phi[0]], [-phi[1], phi[0], 0.0]])
    if angle < 1e-8:
        V = np.eye(3) + 0.5 * K
    else:
        V = np.eye(3) + (1 - np.cos(angle)) / angle**2 * K + (angle - np.sin(angle)) / angle**3 * (K @ K)
    np.testing.assert_allclose(V @ rho, T[:3, 3], atol=1e-9)
    np.testing.assert_allclose(tf.so3_exp(phi), T[:3, :3], atol=1e-12)
