"""What a fix must pass: the innovation gate's arithmetic, the taught path's reach, the covariance helpers."""

import numpy as np
import pytest

from dlvf_ros.geometry import transforms
from dlvf_ros.localization.covariance import CovarianceConfig, fix_covariance, with_disagreement
from dlvf_ros.localization.fix_gate import (
    FixGateConfig,
    TaughtPath,
    mahalanobis2,
    planar_innovation,
    precision_refusal,
    submap_refusal,
)


def covariance(sigma_m, sigma_rad):
    return np.diag([sigma_m**2] * 3 + [sigma_rad**2] * 3)


def test_planar_innovation_is_in_the_map_frame_and_wraps_the_heading():
    predicted = transforms.from_xyz_rpy(1.0, 2.0, 0.0, yaw=np.radians(179.0))
    fix = transforms.from_xyz_rpy(1.3, 1.6, 0.5, yaw=np.radians(-179.0))
    np.testing.assert_allclose(planar_innovation(predicted, fix), [0.3, -0.4, np.radians(2.0)], atol=1e-12)


def test_mahalanobis2_adds_the_two_covariances():
    nu = np.array([0.3, -0.4, 0.0])
    # S = 2 x 0.1^2 on x and y: (0.09 + 0.16) / 0.02
    assert mahalanobis2(nu, covariance(0.1, 0.01), covariance(0.1, 0.01)) == pytest.approx(12.5)
    heading_only = np.array([0.0, 0.0, 0.03])
    assert mahalanobis2(heading_only, covariance(1.0, 0.01), covariance(1.0, 0.02)) == pytest.approx(0.03**2 / 0.0005)


def straight_path(n=11, spacing=1.0):
    return np.stack([transforms.from_xyz_rpy(spacing * i, 0.0, 0.0) for i in range(n)])


@pytest.mark.parametrize(
    "x, y, yaw_deg, members, refused",
    [
        (10.8, 0.5, 0.0, [9, 10], ""),  # within one spacing past the last keyframe
        (11.2, 0.0, 0.0, [9, 10], "beyond the last keyframe"),
        (-0.8, 0.3, 5.0, [0, 1], ""),
        (-1.3, 0.0, 0.0, [0, 1], "before the first keyframe"),
        (5.4, 0.7, -10.0, [4, 5, 6], ""),
        (5.0, 0.0, 0.0, [0, 1, 2], "do not overlap"),  # 3 m from the keyframes it was matched against
        (5.0, 0.0, 60.0, [4, 5], "faces 60 deg away"),
    ],
)
def test_taught_path_refuses_fixes_off_its_ends_or_away_from_their_keyframes(x, y, yaw_deg, members, refused):
    path = TaughtPath(straight_path(), FixGateConfig())
    assert path.spacing_m == pytest.approx(1.0)
    reason = path.refusal(transforms.from_xyz_rpy(x, y, 0.0, yaw=np.radians(yaw_deg)), members)
    assert (refused in reason) if refused else reason == "", reason


def test_taught_path_reach_scales_with_the_keyframe_spacing():
    path = TaughtPath(straight_path(n=5, spacing=2.0), FixGateConfig(end_reach_spacings=0.5))
    assert path.refusal(transforms.from_xyz_rpy(8.9, 0.0, 0.0), [4]) == ""
    assert "beyond" in path.refusal(transforms.from_xyz_rpy(9.1, 0.0, 0.0), [4])


def test_fix_gate_config_is_validated():
    with pytest.raises(ValueError, match="max_mahalanobis2"):
        FixGateConfig(max_mahalanobis2=0.0)
    with pytest.raises(ValueError, match="end_reach_spacings"):
        FixGateConfig(end_reach_spacings=float("nan"))


def test_fix_covariance_is_floored_and_disagreement_widens_it():
    config = CovarianceConfig()
    T_map_vehicle = transforms.from_xyz_rpy(3.0, 1.0, 0.0, yaw=0.3)
    tight = fix_covariance(np.eye(6) * 1e-10, T_map_vehicle, np.eye(4), config)
    np.testing.assert_allclose(np.diag(tight), [config.min_sigma_m**2] * 3 + [config.min_sigma_rad**2] * 3)
    widened = with_disagreement(tight, np.array([0.1, -0.2, 0.01]))
    floor_m2, floor_rad2 = config.min_sigma_m**2, config.min_sigma_rad**2
    assert widened[0, 0] == pytest.approx(floor_m2 + 0.01) and widened[1, 1] == pytest.approx(floor_m2 + 0.04)
    assert widened[0, 1] == pytest.approx(-0.02) and widened[5, 5] == pytest.approx(floor_rad2 + 1e-4)
    assert widened[2, 2] == tight[2, 2] and np.allclose(widened, widened.T)


def test_a_pose_supported_by_one_keyframe_of_its_submap_is_refused():
    config = FixGateConfig(min_inliers_second_keyframe=3)
    assert submap_refusal({4: 30, 5: 12, 3: 0}, config) == ""
    assert submap_refusal({7: 40}, config) == ""  # a one-keyframe submap has no second keyframe to ask
    reason = submap_refusal({31: 73, 30: 2, 32: 0}, config)
    assert "73 inliers from keyframe 31 alone" in reason and "at most 2" in reason


def test_a_fix_known_no_better_than_the_limits_is_refused():
    config = FixGateConfig(max_position_sigma_m=0.25, max_heading_sigma_deg=2.0)
    covariance = np.diag([0.05**2, 0.1**2, 1.0, 1.0, 1.0, np.radians(1.5) ** 2])  # z, roll, pitch do not count
    assert precision_refusal(covariance, config) == ""
    heading = covariance.copy()
    heading[5, 5] = np.radians(2.5) ** 2
    assert "2.5 deg" in precision_refusal(heading, config)
    correlated = covariance.copy()
    correlated[:2, :2] = [[0.04, 0.035], [0.035, 0.04]]  # 0.2 m each axis, 0.27 m along the diagonal
    assert "0.27 m" in precision_refusal(correlated, config)
