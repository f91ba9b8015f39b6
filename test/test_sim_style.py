"""World styles: seeded draws that never return held-out members, named styles and overrides, every member of every
family renders, the same seed and style give the same images, the glare preset puts the sun straight ahead."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml
from sim_worlds import TINY_WORLD

from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.sim import RenderConfig, StereoRenderer, generate_world, lighting_preset
from dlvf_ros.sim.contact_sheet import style_views
from dlvf_ros.sim.lighting import SKIES, lighting_for_hour
from dlvf_ros.sim.style import (
    FAMILIES,
    HELD_OUT,
    HELD_OUT_VALIDATION,
    NAMED_ONLY,
    PRESETS,
    Style,
    covering_styles,
    draw_style,
    parse_style,
    style_spec_from_yaml,
)
from dlvf_ros.sim.trajectory import pose_on_path

RIG = StereoRig().scaled(160, 120)
FEWER = {"rocks_per_100m": 80.0, "bushes_per_100m": 50.0, "trees_per_100m": 40.0, "far_trees_per_100m": 30.0}
TINY = dataclasses.replace(TINY_WORLD, path_length_m=6.0, path_lead_out_m=30.0, **FEWER)
# the kind of object each member adds to a world (world.object_counts keys)
MEMBER_KINDS = {
    ("undergrowth", "tufts"): "tufts",
    ("undergrowth", "stumps"): "stumps",
    ("undergrowth", "logs"): "logs",
    ("man_made", "posts"): "posts",
    ("man_made", "fence"): "fences",
    ("man_made", "barrels"): "barrels",
    ("man_made", "wall"): "walls",
}


def luminance(image):
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def test_draws_are_seeded_and_never_return_held_out_members():
    draws = [draw_style(seed) for seed in range(600)]
    assert draws[:50] == [draw_style(seed) for seed in range(50)]
    for family, members in FAMILIES.items():
        drawn = {getattr(style, family) for style in draws}
        # every training member is drawn, no held-out or named-only one ever is
        assert drawn == set(members) - set(HELD_OUT.get(family, ())) - set(NAMED_ONLY.get(family, ())), family
    assert all(not style.held_out_members for style in draws)
    assert len({style.spec for style in draws}) > 500  # the families are drawn independently
    # held-out worlds: every family that has held-out members takes one of them
    for seed in range(40):
        style = draw_style(seed, held_out=HELD_OUT)
        assert set(style.held_out_members) == set(HELD_OUT)
    # the validation set: disjoint from the test set; training worlds draw neither, validation worlds are made of it
    assert all(not set(members) & set(HELD_OUT.get(f, ())) for f, members in HELD_OUT_VALIDATION.items())
    for seed in range(200):
        training, validation = parse_style("training", seed), parse_style("held_out_validation", seed)
        assert training == draw_style(seed, exclude=HELD_OUT_VALIDATION) and not training.held_out_members
        assert all(getattr(training, f) not in members for f, members in HELD_OUT_VALIDATION.items())
        assert all(getattr(validation, f) in members for f, members in HELD_OUT_VALIDATION.items())
        assert not validation.held_out_members
    # extra exclusions; and a family with nothing left is an error
    assert all(draw_style(seed, exclude={"sky": ("foggy", "hazy")}).sky not in ("foggy", "hazy") for seed in range(50))
    with pytest.raises(ValueError, match="every camera member is excluded"):
        draw_style(0, exclude={"camera": FAMILIES["camera"]})
    with pytest.raises(ValueError, match="unknown families"):
        draw_style(0, exclude={"weather": ("rain",)})
    with pytest.raises(ValueError, match="seed"):
        draw_style(-3)


def test_named_styles_and_overrides(tmp_path):
    assert parse_style("classic", 5) == Style() == PRESETS["classic"]
    assert parse_style("drawn", 5) == parse_style("", 5) == draw_style(5)
    assert parse_style("held_out_test", 5) == draw_style(5, held_out=HELD_OUT)
    demo = parse_style("demo", 5)
    assert set(demo.held_out_members) == set(HELD_OUT)  # the demo world is made of held-out members
    overridden = parse_style("ground=snow,camera=cheap_cmos", 5)
    assert (overridden.ground, overridden.camera) == ("snow", "cheap_cmos")
    assert overridden.trail == draw_style(5).trail
    assert parse_style("classic,sky=foggy", 1) == Style(sky="foggy")
    assert parse_style(overridden.spec, 99) == overridden  # the explicit spec round-trips
    with pytest.raises(ValueError, match="unknown ground 'lava'"):
        parse_style("ground=lava", 0)
    with pytest.raises(ValueError, match="not family=member"):
        parse_style("drawn,surface=snow", 0)
    with pytest.raises(ValueError, match="unknown base 'retro'"):
        parse_style("retro", 0)
    path = tmp_path / "style.yaml"
    path.write_text("base: classic\ncamera: consumer\nheadlights: led_spot\n")
    assert parse_style(style_spec_from_yaml(path), 3) == Style(camera="consumer", headlights="led_spot")
    path.write_text("- ground\n")
    with pytest.raises(ValueError, match="mapping of family: member"):
        style_spec_from_yaml(path)


def test_styles_yaml_mirrors_the_module():
    shipped = yaml.safe_load((Path(__file__).parents[1] / "config" / "styles.yaml").read_text())
    assert {f: tuple(m) for f, m in shipped["families"].items()} == FAMILIES
    assert {f: tuple(m) for f, m in shipped["held_out"].items()} == HELD_OUT
    assert {f: tuple(m) for f, m in shipped["held_out_validation"].items()} == HELD_OUT_VALIDATION
    assert {f: tuple(m) for f, m in shipped["named_only"].items()} == NAMED_ONLY
    assert {name: Style(**members) for name, members in shipped["presets"].items()} == PRESETS


def test_sky_members_change_the_weather():
    noon = lighting_preset("noon")
    overcast = noon.with_sky(SKIES["overcast"])
    assert overcast.cloud_cover == 1.0 and overcast.shadow_strength == 0.0 and max(overcast.sun_rgb) < 0.25
    foggy = noon.with_sky(SKIES["foggy"])
    assert foggy.fog_density_per_m > 5 * noon.fog_density_per_m
    broken = noon.with_sky(SKIES["broken"])
    assert 0.0 < broken.cloud_cover < 1.0 and broken.shadow_strength > 0.5  # the sun still shines between clouds
    assert noon.with_sky(SKIES["clear"]) is noon


def test_every_member_of_every_family_renders():
    lightings = ("noon", "night", "glare")
    specs = [style.spec for style in covering_styles()]  # together they use every member
    views, worlds = style_views(specs, 17, list(lightings), RIG, TINY, RenderConfig(shadow_map_size=1024), 3.0)
    used = {(family, getattr(world.style, family)) for world in worlds for family in FAMILIES}
    assert used == {(family, member) for family, members in FAMILIES.items() for member in members}
    for world, row in zip(worlds, views):
        for (family, member), kind in MEMBER_KINDS.items():
            if getattr(world.style, family) == member:
                assert world.object_counts[kind] > 0, (world.style.spec, kind)
        # nothing stands in the driving corridor (repeat runs drive up to 0.75 m aside)
        for chunk in world.chunks:
            objects = chunk.lod_meshes[0].material != 0.0
            assert world.distance_to_path(chunk.lod_meshes[0].positions[objects, :2]).min(initial=np.inf) > 1.2
        for name, image in zip(lightings, row):
            seen = luminance(image)
            context = f"{world.style.spec} at {name}"
            assert image.shape == (RIG.height, RIG.width, 3) and image.dtype == np.uint8, context
            if name == "night":  # dark, but the headlights light the ground ahead
                assert np.percentile(seen[60:], 95) > max(60, 2.0 * np.median(seen[:20])), context
            else:  # textured: no flat, saturated or empty image
                assert 40 < seen.mean() < 235 and seen.std() > 12, context
                assert np.abs(np.diff(seen[60:], axis=1)).mean() > 1.5, context  # detail on the ground
    # every style looks different from every other
    noons = [luminance(row[0]) for row in views]
    for i in range(len(noons)):
        for j in range(i):
            assert np.abs(noons[i] - noons[j]).mean() > 8.0


def test_same_seed_and_style_give_the_same_images_blur_only_touches_colour():
    config = dataclasses.replace(TINY, style="camera=cheap_cmos,sky=hazy")
    T_world_vehicle = pose_on_path(generate_world(23, config), 3.0)
    motion = ([1.0, 0.0, 0.0], [0.0, 0.02, 0.1])  # 1 m/s, pitching and turning
    renders = []
    for _ in range(2):
        with StereoRenderer(generate_world(23, config), RIG) as renderer:
            renders.append(
                renderer.render(T_world_vehicle, lighting_preset("night"), noise_seed=4, motion_vehicle=motion)
            )
            still = renderer.render(T_world_vehicle, lighting_preset("night"), noise_seed=4)
    a, b = renders
    np.testing.assert_array_equal(a.left, b.left)
    np.testing.assert_array_equal(a.right, b.right)
    np.testing.assert_array_equal(a.depth_left_m, b.depth_left_m)
    assert a.exposure_time_s > 0.01  # a long night exposure ...
    assert np.abs(luminance(a.left) - luminance(still.left)).mean() > 1.0  # ... blurs the colour image
    np.testing.assert_array_equal(a.depth_left_m, still.depth_left_m)  # and never the depth


def test_glare_puts_a_low_sun_straight_ahead():
    world = generate_world(29, dataclasses.replace(TINY, style="classic,camera=consumer"))
    glare = lighting_preset("glare")
    assert 1.0 < glare.sun_elevation_deg < 5.0 and not glare.headlights_on
    assert lighting_for_hour(glare.hour).sun_azimuth_relative_deg is None  # the plain hour keeps its azimuth
    with StereoRenderer(world, RIG) as renderer:
        for s_m in (0.0, 2.0, 4.0, 6.0):
            T_world_vehicle = pose_on_path(world, s_m)
            lighting = renderer.effective_lighting(glare, T_world_vehicle)
            T_world_camera = T_world_vehicle @ RIG.T_vehicle_camera
            sun = T_world_camera[:3, :3].T @ np.asarray(lighting.sun_direction_world)  # optical frame
            assert np.rad2deg(abs(np.arctan2(sun[0], sun[2]))) < 3.0  # on the image's centre column, ahead
            u = RIG.f * sun[0] / sun[2] + RIG.cu
            v = RIG.f * sun[1] / sun[2] + RIG.cv
            assert 0 <= u < RIG.width and 0 <= v < RIG.cv  # in view, above the centre row
            image = luminance(renderer.render(T_world_vehicle, glare).left)
            near_sun = image[int(v) : int(v) + 8, max(int(u) - 8, 0) : int(u) + 8]
            assert near_sun.mean() > image[-40:].mean() + 20  # veiling glare around the sun
