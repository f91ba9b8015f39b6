"""Health state machine hysteresis, and the covariance frames / floor / growth."""

import numpy as np
import pytest

from dlvf_ros.geometry import transforms
from dlvf_ros.localization.covariance import CovarianceConfig, adjoint, grow, skew, to_ros_covariance
from dlvf_ros.localization.health import HealthConfig, HealthMonitor, HealthState

L, D, X = HealthState.LOCALIZED, HealthState.DEGRADED, HealthState.LOST
CONFIG = HealthConfig(
    good_inliers=40, frames_to_degrade=3, frames_to_recover=3, frames_to_lose=5, max_dead_reckoning_m=10.0
)


def run(frames):
    """frames: 'G' good fix, 'W' weak fix, '-' no fix (1 m per frame since the last fix)."""
    monitor, states, since_fix = HealthMonitor(CONFIG), [], 0.0
    for f in frames:
        since_fix = 0.0 if f != "-" else since_fix + 1.0
        states.append(monitor.update(f != "-", {"G": 100, "W": 15, "-": 0}[f], since_fix))
    return states


def test_start_lost_then_recover_through_degraded():
    assert run("GGG") == [D, D, L]
    assert run("-") == [X]


def test_single_bad_frames_do_not_flip_a_localized_state():
    states = run("GGG" + "-G-GW-G" + "WG")
    assert states[3:] == [L] * 9


def test_degrade_after_a_run_of_weak_frames_and_recover_after_a_run_of_good_ones():
    states = run("GGG" + "WWW" + "GG" + "G")
    assert states[3:] == [L, L, D, D, D, L]


def test_lost_after_failed_frames_or_long_dead_reckoning():
    assert run("GGG" + "-----")[-1] == X and run("GGG" + "----")[-1] == D
    big = HealthConfig(frames_to_lose=100, max_dead_reckoning_m=2.5)
    monitor = HealthMonitor(big)
    for _ in range(3):
        monitor.update(True, 100, 0.0)
    assert monitor.update(False, 0, 2.0) == L
    assert monitor.update(False, 0, 3.0) == X and "odometry alone" in monitor.reason
    assert monitor.update(True, 12, 0.0) == D and "re-localized" in monitor.reason
    monitor.reset()
    assert monitor.state == X and monitor.reason == "no fix yet"


@pytest.mark.parametrize("key, value", [("good_inliers", 0), ("frames_to_lose", 0), ("max_dead_reckoning_m", 0.0)])
def test_health_config_validation(key, value):
    with pytest.raises(ValueError, match=key):
        HealthConfig(**{key: value})


def test_ros_covariance_frames_floor_and_growth():
    config = CovarianceConfig()
    T = transforms.from_xyz_rpy(10.0, 5.0, 0.0, yaw=0.3)
    # a pure heading uncertainty about the vehicle position, as a left perturbation about the map origin:
    # rho = [t]x phi. The ROS form puts it all on the rotation; position variance stays at the floor.
    to_rho = np.eye(6)
    to_rho[:3, 3:] = skew(T[:3, 3])
    sigma_xi = to_rho @ np.diag([0.0] * 3 + [1e-4] * 3) @ to_rho.T
    ros = to_ros_covariance(sigma_xi, T, config)
    assert np.allclose(np.diag(ros)[:3], [config.min_sigma_m**2] * 3)
    assert np.allclose(np.diag(ros)[3:], 1e-4)
    # the adjoint moves a perturbation between frames: T exp(xi) = exp(Ad_T xi) T
    xi = np.array([0.01, -0.02, 0.03, 0.001, 0.002, -0.003])
    left = transforms.make_transform(transforms.so3_exp(xi[3:]), xi[:3])
    np.testing.assert_allclose(
        transforms.se3_log(T @ left @ transforms.invert(T)), adjoint(T) @ transforms.se3_log(left), atol=1e-9
    )
    grown = grow(ros, distance_m=4.0, age_s=2.0, config=config)
    assert np.allclose(
        np.diag(grown - ros),
        [4 * config.growth_m2_per_m + 2 * config.growth_m2_per_s] * 3
        + [4 * config.growth_rad2_per_m + 2 * config.growth_rad2_per_s] * 3,
    )
    with pytest.raises(ValueError, match="non-negative"):
        grow(ros, -1.0, 0.0, config)
