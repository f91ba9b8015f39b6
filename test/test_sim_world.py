"""World generation: seeded and deterministic, distinct per seed, sane geometry, clear errors."""

import dataclasses

import numpy as np
import pytest
from sim_worlds import SMALL_WORLD

from dlvf_ros.config import ConfigError, from_dict, load_config
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.sim import RenderConfig, SimConfig, StereoRenderer, WorldConfig, generate_world, lighting_preset
from dlvf_ros.sim.trajectory import pose_on_path

RIG = StereoRig().scaled(128, 96)


def render_start(world, lighting="noon"):
    T_world_vehicle = pose_on_path(world, 1.0)
    with StereoRenderer(world, RIG, RenderConfig()) as renderer:
        return renderer.render(T_world_vehicle, lighting_preset(lighting), noise_seed=5)


def test_same_seed_gives_identical_worlds_and_images():
    a, b = generate_world(4, SMALL_WORLD), generate_world(4, SMALL_WORLD)
    np.testing.assert_array_equal(a.terrain_heights_m, b.terrain_heights_m)
    np.testing.assert_array_equal(a.path_xy_m, b.path_xy_m)
    assert a.object_counts == b.object_counts
    image_a, image_b = render_start(a), render_start(b)
    np.testing.assert_array_equal(image_a.left, image_b.left)
    np.testing.assert_array_equal(image_a.right, image_b.right)
    np.testing.assert_array_equal(image_a.depth_left_m, image_b.depth_left_m)


def test_different_seeds_give_different_worlds():
    worlds = [generate_world(seed, SMALL_WORLD) for seed in (1, 2)]
    headings = [w.path_pose(10.0)[1][0] - w.path_pose(0.0)[1][0] for w in worlds]
    assert not np.isclose(headings[0], headings[1], atol=1e-3)  # differently curved trails
    images = [render_start(w).left.astype(float) for w in worlds]
    assert np.abs(images[0] - images[1]).mean() > 10.0


def test_trail_is_flat_dirt_and_clutter_keeps_clear_of_it():
    world = generate_world(3, SMALL_WORLD)
    s = np.linspace(0.0, 20.0, 41)
    xy, _ = world.path_pose(s)
    assert np.all(world.distance_to_path(xy) < 0.06)
    # the trail is dirt (splat red channel) at the wheel tracks, grass far away
    track_xy = xy + 0.6 * np.stack([-np.sin(world.path_pose(s)[1]), np.cos(world.path_pose(s)[1])], 1)
    texel = world.config.splat_texel_m
    ij = np.round((track_xy - world.splat_origin_xy_m) / texel).astype(int)
    assert world.splat[ij[:, 1], ij[:, 0], 0].mean() > 200
    # no object vertex stands in the driving corridor (lateral offsets up to 0.75 m plus the vehicle)
    corridor = []
    for chunk in world.chunks:
        objects = chunk.lod_meshes[0].material != 0.0
        corridor.append(world.distance_to_path(chunk.lod_meshes[0].positions[objects, :2]).min(initial=np.inf))
    assert min(corridor) > 1.2
    counts = world.object_counts
    assert counts["rocks_near"] > 10 and counts["bushes"] > 10 and counts["trees"] > 10


def test_bad_inputs_raise_clear_errors():
    world = generate_world(3, SMALL_WORLD)
    lo, hi = world.terrain_extent_m
    with pytest.raises(ValueError, match="outside the terrain"):
        world.terrain_height(hi[0] + 1.0, lo[1])
    with pytest.raises(ValueError, match="arc length outside"):
        world.path_pose(1e4)
    with pytest.raises(ValueError, match="seed"):
        generate_world(-1, SMALL_WORLD)
    with pytest.raises(ConfigError, match="trail_width_m"):
        from_dict(WorldConfig, {"trail_width_m": 5.0})
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(SimConfig, {"world": {"rockz": 3}})


def test_shipped_yaml_is_the_defaults():
    from pathlib import Path

    shipped = load_config(SimConfig, Path(__file__).parents[1] / "config" / "sim.yaml")
    assert shipped == SimConfig()


def test_aperiodic_textures_change_the_ground_colour_only():
    aperiodic = dataclasses.replace(SMALL_WORLD, aperiodic_textures=True)
    tiled, mixed = render_start(generate_world(4, SMALL_WORLD)), render_start(generate_world(4, aperiodic))
    np.testing.assert_array_equal(tiled.depth_left_m, mixed.depth_left_m)  # the same geometry
    ground = slice(-RIG.height // 3, None)  # the trail and ground just ahead
    assert np.abs(tiled.left[ground].astype(float) - mixed.left[ground]).mean() > 2.0
    np.testing.assert_array_equal(mixed.left, render_start(generate_world(4, aperiodic)).left)  # deterministic
