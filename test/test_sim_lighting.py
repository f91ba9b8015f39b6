"""Time-of-day lighting: sun and presets, night dark but for the headlights, hard shadows at noon (in the classic
style, whose camera exposes from the lighting alone), sky members, a sun that follows the direction of travel."""

import dataclasses

import numpy as np
import pytest
from sim_worlds import SMALL_WORLD

from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.sim import (
    PRESETS,
    RenderConfig,
    StereoRenderer,
    generate_world,
    lighting_for_hour,
    lighting_preset,
)
from dlvf_ros.sim.trajectory import pose_on_path

RIG = StereoRig().scaled(160, 120)
SMALL = dataclasses.replace(
    SMALL_WORLD, path_length_m=30.0, trees_per_100m=160.0, bushes_per_100m=200.0, style="classic"
)


@pytest.fixture(scope="module")
def world():
    return generate_world(21, SMALL)


def luminance(image):
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def test_sun_follows_the_hour_and_presets_parse():
    noon, night, morning, evening = (lighting_preset(n) for n in ("noon", "night", "morning", "evening"))
    assert noon.sun_elevation_deg > 55 and night.sun_elevation_deg < -10
    assert 10 < morning.sun_elevation_deg < 35 and 10 < evening.sun_elevation_deg < 35
    assert morning.sun_direction_world[0] > 0 > evening.sun_direction_world[0]  # east in the morning, west later
    assert noon.shadow_strength == 1.0 and lighting_preset("overcast").shadow_strength == 0.0
    assert not noon.headlights_on and night.headlights_on and lighting_preset("dusk").headlights_on
    assert set(PRESETS) == {"noon", "morning", "evening", "overcast", "dusk", "night", "glare"}
    assert lighting_preset("14.5").hour == 14.5 and lighting_preset(3).headlights_on
    with pytest.raises(ValueError, match="unknown lighting"):
        lighting_preset("midnightish")
    with pytest.raises(ValueError, match="hour"):
        lighting_for_hour(25.0)
    # the sun reddens towards sunset
    low = lighting_for_hour(20.5)
    assert low.sun_rgb[2] / low.sun_rgb[0] < 0.6 * noon.sun_rgb[2] / noon.sun_rgb[0]


def test_night_is_dark_except_where_the_headlights_reach(world):
    with StereoRenderer(world, RIG, RenderConfig()) as renderer:
        for T in (pose_on_path(world, s) for s in (4.0, 17.0)):
            night = luminance(renderer.render(T, lighting_preset("night"), noise_seed=1).left)
            noon = luminance(renderer.render(T, lighting_preset("noon"), noise_seed=1).left)
            depth = renderer.render(T, lighting_preset("noon")).depth_left_m
            far = depth > 15.0  # beyond the beams, and the sky (inf)
            lit = depth < 6.0  # the ground just ahead of the vehicle
            assert far.sum() > 300 and lit.sum() > 2000
            assert night[far].mean() < 25.0  # dark (out of 255)
            assert night[lit].mean() > 4.0 * night[far].mean()
            assert noon[far].mean() > max(50.0, 3.0 * night[far].mean())  # at noon the same places are bright


def test_noon_has_hard_shadows_and_overcast_none(world):
    shadowed_fractions, shadow_ratios = [], []
    with (
        StereoRenderer(world, RIG, RenderConfig(sensor_noise=False)) as with_shadows,
        StereoRenderer(world, RIG, RenderConfig(sensor_noise=False, shadows=False)) as without,
    ):
        for T in (pose_on_path(world, s) for s in np.arange(0.0, 30.0, 3.0)):
            noon_ratio = (luminance(with_shadows.render(T, lighting_preset("noon")).left) + 1.0) / (
                luminance(without.render(T, lighting_preset("noon")).left) + 1.0
            )
            assert noon_ratio.max() < 1.02  # shadows only darken
            shadowed_fractions.append(float((noon_ratio < 0.6).mean()))
            shadow_ratios.append(noon_ratio[noon_ratio < 0.9])
            overcast_ratio = (luminance(with_shadows.render(T, lighting_preset("overcast")).left) + 1.0) / (
                luminance(without.render(T, lighting_preset("overcast")).left) + 1.0
            )
            np.testing.assert_allclose(overcast_ratio, 1.0, atol=0.02)
    # cast shadows of trees, bushes and rocks are in view, and they are dark (hard), not a faint dimming
    most = int(np.argmax(shadowed_fractions))
    assert shadowed_fractions[most] > 0.03 and np.mean(shadowed_fractions) > 0.01
    assert np.median(shadow_ratios[most]) < 0.6
