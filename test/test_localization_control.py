"""Run-time control of the localizer core: relocalize (whole-map search), seed (search around an initial pose, never
a fix by itself), a new configuration between frames, and the fix's inlier points (for the match image)."""

import dataclasses

import numpy as np
from test_localization_localizer import (  # noqa: F401
    confirmed,
    make_localizer,
    map_path,
    observe,
    odom,
    pose_error,
    world,
)

from dlvf_ros.geometry import transforms
from dlvf_ros.localization.health import HealthState


def test_relocalize_searches_the_whole_map_even_with_an_initial_keyframe(map_path, world):  # noqa: F811
    localizer = make_localizer(map_path, initial_keyframe_id=7)
    rng = np.random.default_rng(10)
    T_true = transforms.from_xyz_rpy(14.2, -0.4, 0.0)
    assert localizer.localize(0, observe(world, T_true, rng), odom(T_true)).search == "window"
    localizer.relocalize()
    T_true = transforms.from_xyz_rpy(4.1, 0.3, 0.0)  # far from keyframe 7 (x = 14)
    result = confirmed(localizer, 1, observe(world, T_true, rng), odom(T_true))
    assert result.search == "global" and result.fixed and result.state == HealthState.DEGRADED
    assert pose_error(result.T_map_vehicle, T_true)[0] < 0.05
    assert result.inlier_points_camera.shape == (result.num_inliers, 3)


def test_seed_searches_around_the_initial_pose_and_never_fixes_by_itself(map_path, world):  # noqa: F811
    rng = np.random.default_rng(11)
    T_true = transforms.from_xyz_rpy(16.3, 0.2, 0.0)
    localizer = make_localizer(map_path, window={"radius_m": 2.0, "max_candidates": 3})
    localizer.seed(transforms.from_xyz_rpy(16.0, 0.0, 0.0), np.diag([0.25, 0.25, 0, 0, 0, 0.01]))
    result = confirmed(localizer, 0, observe(world, T_true, rng), odom(T_true))
    assert result.search == "window" and result.search_radius_m == 2.0 and set(result.candidates) <= {7, 8, 9}
    assert result.fixed and pose_error(result.T_map_vehicle, T_true)[0] < 0.05

    # a seed at the wrong place: the search stays there and finds nothing (no fix, no pose), then falls back to the
    # whole map after health.frames_to_lose frames
    localizer = make_localizer(map_path, window={"radius_m": 2.0}, health={"frames_to_lose": 2})
    localizer.seed(transforms.from_xyz_rpy(2.0, 0.0, 0.0), np.diag([0.01, 0.01, 0, 0, 0, 0.01]))
    searches = []
    for k in range(4):
        result = localizer.localize(k, observe(world, T_true, rng), odom(T_true))
        searches.append((result.search, result.fixed))
        if not result.fixed:
            assert result.T_map_vehicle is None  # a seed is a search hint, not a pose
    # (the whole map's first pose is held back until the next frame confirms it)
    assert searches == [("window", False), ("window", False), ("global", False), ("global", True)]


def test_a_new_configuration_applies_from_the_next_frame(map_path, world):  # noqa: F811
    localizer = make_localizer(map_path)
    rng = np.random.default_rng(12)
    T_true = transforms.from_xyz_rpy(8.0, 0.1, 0.0)
    assert confirmed(localizer, 0, observe(world, T_true, rng), odom(T_true)).fixed
    strict = dataclasses.replace(
        localizer.config, ransac=dataclasses.replace(localizer.config.ransac, min_inliers=100_000), min_matches=100_000
    )
    localizer.update_config(strict)
    assert not localizer.localize(1, observe(world, T_true, rng), odom(T_true)).fixed
    assert localizer.health.config is strict.health
