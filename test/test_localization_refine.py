"""Stereo reprojection refinement: converges from a RANSAC-sized error, rejects outliers, honest covariance."""

import numpy as np

from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.localization.refine import RefineConfig, refine_stereo_pose, stereo_measurements

RIG = StereoRig()


def scene(rng, n=120, noise_px=0.3, outliers=30):
    """Keyframe points (left optical, m), the true T_cur_keyframe and noisy current (u, v, d) measurements."""
    depth = rng.uniform(4, 40, n)
    uv = rng.uniform([0, 0], [RIG.width - 1, RIG.height - 1], (n, 2))
    points_keyframe = np.column_stack([(uv - [RIG.cu, RIG.cv]) * depth[:, None] / RIG.f, depth])
    T_true = transforms.make_transform(transforms.so3_exp([0.01, -0.04, 0.005]), [0.45, 0.02, -0.6])
    measured = stereo_measurements(RIG, transforms.transform_points(T_true, points_keyframe))
    measured = measured + rng.normal(0, noise_px, measured.shape)
    measured[:outliers, :2] += rng.uniform(20, 80, (outliers, 2)) * rng.choice([-1, 1], (outliers, 2))
    keep = measured[:, 2] > 0.5
    return points_keyframe[keep], measured[keep], T_true, np.arange(len(measured))[keep] >= outliers


def pose_error(T_a, T_b):
    delta = transforms.invert(T_a) @ T_b
    return np.linalg.norm(delta[:3, 3]), transforms.rotation_angle(delta[:3, :3])


def test_converges_from_half_a_metre_and_rejects_outliers():
    rng = np.random.default_rng(0)
    points, measured, T_true, truly_inlier = scene(rng)
    T_start = transforms.from_xyz_rpy(0.4, -0.3, 0.2, 0.01, 0.02, -0.03) @ T_true
    result = refine_stereo_pose(T_start, points, measured, np.ones(len(points)), truly_inlier.copy(), RIG)
    t_err, r_err = pose_error(result.T_cur_keyframe, T_true)
    assert t_err < 0.03 and np.rad2deg(r_err) < 0.1, (t_err, np.rad2deg(r_err))
    assert np.array_equal(result.inliers[~truly_inlier], np.zeros((~truly_inlier).sum(), bool))
    assert result.num_inliers >= 0.95 * truly_inlier.sum() and result.rms_px < 0.5


def test_covariance_matches_the_spread_of_repeated_fits():
    rng = np.random.default_rng(1)
    xis, covariances = [], []
    for _ in range(150):
        points, measured, T_true, inlier = scene(rng, n=60, noise_px=0.5, outliers=0)
        result = refine_stereo_pose(
            T_true, points, measured, np.ones(len(points)), inlier, RIG, RefineConfig(min_sigma_px=0.01)
        )
        xis.append(transforms.se3_log(result.T_cur_keyframe @ transforms.invert(T_true)))
        covariances.append(result.covariance)
    empirical = np.sqrt(np.diag(np.cov(np.array(xis).T)))
    predicted = np.sqrt(np.diag(np.mean(covariances, axis=0)))
    np.testing.assert_allclose(predicted, empirical, rtol=0.3)


def test_too_few_inliers_report_an_infinite_covariance():
    rng = np.random.default_rng(2)
    points, measured, T_true, _ = scene(rng, n=40, outliers=0)
    far_off = transforms.from_xyz_rpy(5.0, 0.0, 0.0, yaw=0.8) @ T_true
    result = refine_stereo_pose(far_off, points, measured, np.ones(len(points)), np.zeros(len(points), bool), RIG)
    assert result.num_inliers < 3 and np.all(np.isinf(result.covariance))


def test_pixel_gates_scale_to_image_pixels():
    from dlvf_ros.localization.refine import scaled_refine_config

    base = RefineConfig()
    scaled = scaled_refine_config(base, 1.6)
    assert scaled.inlier_threshold_px == 1.6 * base.inlier_threshold_px and scaled.huber_px == 1.6 * base.huber_px
    assert (
        scaled.initial_threshold_px == 1.6 * base.initial_threshold_px
        and scaled.min_sigma_px == 1.6 * base.min_sigma_px
    )
    assert scaled.iterations == base.iterations and scaled_refine_config(base, 1.0) == base
