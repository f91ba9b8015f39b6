"""Teach and repeat runs: on the trail, bounded offsets, frames that do not line up, drifting odometry."""

import numpy as np
import pytest
from sim_worlds import BARE_WORLD

from dlvf_ros.geometry import transforms
from dlvf_ros.sim import (
    OdometryConfig,
    TrajectoryConfig,
    generate_world,
    repeat_trajectory,
    teach_trajectory,
)
from dlvf_ros.sim.odometry import simulate_odometry

CFG = TrajectoryConfig()


@pytest.fixture(scope="module")
def world():
    return generate_world(5, BARE_WORLD)


def test_teach_run_follows_the_trail_centreline(world):
    teach = teach_trajectory(world, CFG, hour=12.5)
    assert len(teach) == 121 and teach.run_id == 0
    xy = teach.T_world_vehicle[:, :2, 3]
    assert np.all(world.distance_to_path(xy) < 0.06)
    np.testing.assert_allclose(np.linalg.norm(np.diff(xy, axis=0), axis=1), CFG.spacing_m, rtol=0.02)
    np.testing.assert_allclose(teach.T_world_vehicle[:, 2, 3], world.terrain_height(xy[:, 0], xy[:, 1]))
    assert all(transforms.is_rigid(T) for T in teach.T_world_vehicle)
    assert np.all(np.diff(teach.stamps_ns) == 500_000_000)


def test_repeat_runs_stay_within_the_configured_offsets(world):
    teach = teach_trajectory(world, CFG)
    max_lateral = []
    for run_id in range(1, 7):
        run = repeat_trajectory(world, run_id, CFG, hour=8.0)
        xy = run.T_world_vehicle[:, :2, 3]
        distance = world.distance_to_path(xy)
        assert distance.max() <= CFG.max_lateral_offset_m + 0.03
        np.testing.assert_allclose(distance, np.abs(run.lateral_offset_m), atol=0.05)
        heading_offset = np.rad2deg(np.abs(run.heading_offset_rad))
        assert heading_offset.max() <= CFG.max_heading_offset_deg
        max_lateral.append(distance.max())
        # frames do not line up with the teach frames, and the speed changes smoothly
        steps = np.diff(run.path_s_m)
        assert steps.min() >= CFG.spacing_m * (1 - CFG.speed_variation) - 1e-9
        assert steps.max() <= CFG.spacing_m * (1 + CFG.speed_variation) + 1e-9
        assert steps.std() > 0.01
        offsets_from_teach = np.abs((run.path_s_m + CFG.spacing_m / 2) % CFG.spacing_m - CFG.spacing_m / 2)
        assert np.median(offsets_from_teach) > 0.03
        assert run.path_s_m[-1] <= BARE_WORLD.path_length_m and run.path_s_m[-1] > BARE_WORLD.path_length_m - 1.0
        # the vehicle faces along the path: its heading is the path's plus the offset
        yaw = np.array([transforms.yaw_of(T) for T in run.T_world_vehicle])
        path_heading = world.path_pose(run.path_s_m)[1]
        np.testing.assert_allclose(np.angle(np.exp(1j * (yaw - path_heading - run.heading_offset_rad))), 0, atol=1e-6)
        assert run.stamps_ns[0] > teach.stamps_ns[-1]  # another day
    assert max(max_lateral) > 0.5 * CFG.max_lateral_offset_m  # the offsets are used, not just bounded
    assert not np.allclose(
        repeat_trajectory(world, 1, CFG).T_world_vehicle[5], repeat_trajectory(world, 2, CFG).T_world_vehicle[5]
    )
    with pytest.raises(ValueError, match="run_id"):
        repeat_trajectory(world, 0, CFG)


def test_odometry_drifts_within_bounds(world):
    errors = []
    for run_id in range(1, 6):
        run = repeat_trajectory(world, run_id, CFG)
        np.testing.assert_allclose(run.T_odom_vehicle[0], np.eye(4))
        T_start_end_true = transforms.invert(run.T_world_vehicle[0]) @ run.T_world_vehicle[-1]
        distance = np.linalg.norm(np.diff(run.T_world_vehicle[:, :3, 3], axis=0), axis=1).sum()
        error = np.linalg.norm(run.T_odom_vehicle[-1, :3, 3] - T_start_end_true[:3, 3])
        errors.append(error / distance)
        # each increment is close to the truth (a 1 % scale error and millimetres of noise per step)
        for k in (1, len(run) // 2, len(run) - 1):
            true_step = transforms.invert(run.T_world_vehicle[k - 1]) @ run.T_world_vehicle[k]
            odom_step = transforms.invert(run.T_odom_vehicle[k - 1]) @ run.T_odom_vehicle[k]
            assert np.linalg.norm(odom_step[:3, 3] - true_step[:3, 3]) < 0.05
    assert min(errors) > 1e-4  # it drifts
    assert max(errors) < 0.06  # but stays within a few percent of distance travelled

    exact = simulate_odometry(run.T_world_vehicle, run.stamps_ns, OdometryConfig(0, 0, 0, 0), np.random.default_rng(0))
    np.testing.assert_allclose(exact, transforms.invert(run.T_world_vehicle[0]) @ run.T_world_vehicle, atol=1e-9)
    with pytest.raises(ValueError, match="stamps_ns"):
        simulate_odometry(run.T_world_vehicle, run.stamps_ns[::-1], OdometryConfig(), np.random.default_rng(0))
