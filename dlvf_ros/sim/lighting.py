"""Time-of-day lighting: sun position from the hour, sky and sun colours, haze, exposure, sensor noise; and the
sky/weather and headlight members of a world's style.

The world frame is taken as east-north-up at latitude 43.8 deg N in June (the UTIAS site), so the hour fixes the
sun. Radiometric values are linear-RGB in arbitrary but consistent units; the renderer multiplies by `exposure`
and tone-maps. Named presets: noon, morning, evening, overcast, dusk, night and glare (low sun straight ahead in
haze); any hour 0-24 works too. ``NAME@AZ`` puts the sun at azimuth AZ degrees clockwise from the direction of
travel (0 straight ahead, 90 to the right) at the elevation of NAME; the renderer resolves it per frame from the
trail heading nearest the vehicle (`Lighting.facing`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from dlvf_ros.sim.noise import smoothstep

LATITUDE_DEG = 43.8
SOLAR_DECLINATION_DEG = 23.0  # June
SOLAR_NOON_HOUR = 13.25  # local daylight time
HEADLIGHTS_BELOW_ELEVATION_DEG = 2.0  # the robot switches its lights on near sunset
SUN_IRRADIANCE = 3.2
MAX_EXPOSURE = 9.0  # highest camera gain; beyond it the night stays dark
HEADLIGHT_INTENSITY = 3.5  # each classic lamp: irradiance = intensity / distance^2 on the beam axis
HEADLIGHT_METERED_IRRADIANCE = 0.25  # what the headlit ground adds to the auto-exposure's scene average
TARGET_LUMINANCE = 1.5  # auto-exposure: exposure = TARGET_LUMINANCE / scene irradiance (albedo ~0.1 -> mid grey)


class Preset(NamedTuple):
    hour: float
    cloud_cover: float = 0.0
    sun_azimuth_relative_deg: float | None = None  # clockwise from the direction of travel; None: from the hour
    extra_haze_per_m: float = 0.0


PRESETS: dict[str, Preset] = {
    "noon": Preset(12.5),
    "morning": Preset(8.0),
    "evening": Preset(19.0),
    "overcast": Preset(13.0, 1.0),
    "dusk": Preset(21.3),
    "night": Preset(23.5),
    # the sun 2.8 deg above the horizon straight ahead, in haze: veiling glare and flare in every frame
    "glare": Preset(20.55, 0.0, 0.0, 0.012),
}


@dataclass(frozen=True)
class Sky:
    """Sky and weather member: a floor on the cloud cover (1 = overcast) and haze added to the fog density."""

    cloud_cover: float
    haze_per_m: float


SKIES: dict[str, Sky] = {
    "clear": Sky(0.0, 0.0),
    "hazy": Sky(0.15, 0.014),
    "broken": Sky(0.45, 0.002),
    "overcast": Sky(1.0, 0.004),
    "foggy": Sky(0.85, 0.03),
}


@dataclass(frozen=True)
class Headlights:
    """Headlight member: each of the two lamps' on-axis intensity (linear RGB, irradiance x distance^2), the beam's
    outer and inner half-angles and downward pitch, a low-beam cut-off (no light above this angle over the beam
    axis; None: a round beam) and faint concentric rings of the reflector (contrast, rings per degree)."""

    rgb: tuple[float, float, float]
    cone_deg: tuple[float, float]  # outer, inner
    pitch_down_deg: float
    cutoff_deg: float | None = None
    rings: tuple[float, float] = (0.0, 0.0)


def _rgb(values) -> tuple[float, float, float]:
    """Three floats (an RGB triple or a direction) from any 3-sequence."""
    x, y, z = (float(v) for v in values)
    return x, y, z


HEADLIGHTS: dict[str, Headlights] = {
    "halogen": Headlights(_rgb(HEADLIGHT_INTENSITY * np.array([1.0, 0.93, 0.8])), (40.0, 18.0), 7.0),
    "led_flood": Headlights((4.4, 4.8, 5.4), (60.0, 28.0), 9.0, 4.0, (0.06, 0.3)),
    "led_spot": Headlights((9.0, 9.0, 8.6), (20.0, 7.0), 3.0, None, (0.05, 0.5)),
    "dim_amber": Headlights((1.8, 1.25, 0.6), (48.0, 24.0), 6.0, 1.5),
}


@dataclass(frozen=True)
class Lighting:
    """Everything the renderer needs for one time of day (vectors in the world frame, colours linear RGB)."""

    name: str
    hour: float
    cloud_cover: float
    sun_direction_world: tuple[float, float, float]  # unit vector towards the sun
    sun_elevation_deg: float
    sun_rgb: tuple[float, float, float]  # direct irradiance on a surface facing the sun
    sky_zenith_rgb: tuple[float, float, float]  # sky radiance straight up
    sky_horizon_rgb: tuple[float, float, float]  # sky radiance at the horizon (also the fog colour)
    ambient_sky_rgb: tuple[float, float, float]  # hemispherical irradiance from the sky onto an upward surface
    ambient_ground_rgb: tuple[float, float, float]  # bounce light onto a downward surface
    shadow_strength: float  # 1 = hard sun shadows, 0 = none
    fog_density_per_m: float
    exposure: float  # what an auto-exposure metering the scene's irradiance picks (camera profile "lighting")
    headlights_on: bool
    read_noise: float  # sensor noise std in [0, 1] output units (classic camera)
    shot_noise: float  # signal-dependent noise: std = shot_noise * sqrt(value) (classic camera)
    sun_azimuth_relative_deg: float | None = None  # set: the sun's azimuth follows the direction of travel
    extra_haze_per_m: float = 0.0  # part of fog_density_per_m that the preset or the weather added

    def facing(self, heading_rad: float) -> Lighting:
        """This lighting with the sun at `sun_azimuth_relative_deg` from a direction of travel `heading_rad`
        (world frame, counter-clockwise from east); unchanged when the azimuth follows the hour."""
        if self.sun_azimuth_relative_deg is None:
            return self
        azimuth = np.pi / 2 - heading_rad + np.deg2rad(self.sun_azimuth_relative_deg)  # clockwise from north
        el = np.deg2rad(self.sun_elevation_deg)
        sun_dir = (np.sin(azimuth) * np.cos(el), np.cos(azimuth) * np.cos(el), np.sin(el))
        return dataclasses.replace(self, sun_direction_world=_rgb(sun_dir))

    def with_sky(self, sky: Sky) -> Lighting:
        """This lighting under a sky member's weather (more cloud cover and haze)."""
        if sky.cloud_cover <= self.cloud_cover and sky.haze_per_m == 0.0:
            return self
        return lighting_for_hour(
            self.hour,
            max(self.cloud_cover, sky.cloud_cover),
            self.name,
            self.sun_azimuth_relative_deg,
            self.extra_haze_per_m + sky.haze_per_m,
        )


def sun_position(hour: float) -> tuple[float, float]:
    """(elevation, azimuth from north clockwise) in degrees for a local hour."""
    lat, dec = np.deg2rad(LATITUDE_DEG), np.deg2rad(SOLAR_DECLINATION_DEG)
    hour_angle = np.deg2rad(15.0 * (hour - SOLAR_NOON_HOUR))
    sin_el = np.sin(lat) * np.sin(dec) + np.cos(lat) * np.cos(dec) * np.cos(hour_angle)
    el = np.arcsin(np.clip(sin_el, -1, 1))
    cos_az = (np.sin(dec) - np.sin(el) * np.sin(lat)) / max(np.cos(el) * np.cos(lat), 1e-9)
    az = np.arccos(np.clip(cos_az, -1, 1))
    if hour_angle > 0:  # afternoon: the sun is in the west
        az = 2 * np.pi - az
    return float(np.rad2deg(el)), float(np.rad2deg(az))


def lighting_for_hour(
    hour: float,
    cloud_cover: float = 0.0,
    name: str | None = None,
    sun_azimuth_relative_deg: float | None = None,
    extra_haze_per_m: float = 0.0,
) -> Lighting:
    """Lighting at local `hour` (0-24) with `cloud_cover` in [0, 1] (1 = overcast: no direct sun, no shadows).

    `sun_azimuth_relative_deg`: the sun's azimuth clockwise from the direction of travel instead of the hour's
    (resolved per frame by `Lighting.facing`); `extra_haze_per_m`: added fog density (1/m)."""
    if not 0.0 <= hour <= 24.0:
        raise ValueError(f"lighting_for_hour: hour must be in [0, 24], got {hour}")
    if not 0.0 <= cloud_cover <= 1.0:
        raise ValueError(f"lighting_for_hour: cloud_cover must be in [0, 1], got {cloud_cover}")
    if extra_haze_per_m < 0.0:
        raise ValueError(f"lighting_for_hour: extra_haze_per_m must be >= 0, got {extra_haze_per_m}")
    el_deg, az_deg = sun_position(hour)
    el, az = np.deg2rad(el_deg), np.deg2rad(az_deg)
    sun_dir = np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)])

    # direct sun through the atmosphere (Kasten-Young air mass), reddened near the horizon
    airmass = 1.0 / (max(np.sin(el), 0.0) + 0.50572 * max(el_deg + 6.07995, 0.5) ** -1.6364)
    above = smoothstep(-1.0, 3.0, el_deg)
    sun = SUN_IRRADIANCE * np.exp(-np.array([0.07, 0.13, 0.27]) * airmass) * above
    day = smoothstep(-14.0, 8.0, el_deg)  # twilight ramp of the sky
    glow = np.exp(-abs(el_deg - 1.0) / 7.0) * smoothstep(-12.0, -2.0, el_deg)  # sunset colours
    zenith = day * np.array([0.16, 0.30, 0.68]) * (0.4 + 0.6 * smoothstep(0.0, 30.0, el_deg))
    horizon = day * np.array([0.52, 0.62, 0.78]) * (0.35 + 0.65 * smoothstep(0.0, 20.0, el_deg))
    horizon = horizon * (1 - 0.6 * glow) + glow * day * np.array([0.95, 0.52, 0.28])
    night_sky = np.array([0.0025, 0.0035, 0.0065])  # moon and sky glow
    zenith, horizon = zenith + night_sky, horizon + night_sky

    # broken clouds mostly leave the sun out; an overcast sky (cover 1) blocks it
    blocked = cloud_cover**1.5
    if cloud_cover > 0:  # clouds: direct light scattered into a grey, brighter-than-blue sky
        grey = np.full(3, 0.55 * day * (0.3 + 0.7 * smoothstep(0.0, 35.0, el_deg))) + night_sky
        zenith = zenith * (1 - cloud_cover) + grey * 0.85 * cloud_cover
        horizon = horizon * (1 - cloud_cover) + grey * cloud_cover
        sun = sun * (1 - 0.93 * blocked)
    ambient_sky = 0.65 * (zenith + horizon)
    ambient_ground = 0.18 * sun * max(np.sin(el), 0.0) * np.array([0.9, 0.85, 0.65]) + 0.3 * night_sky

    headlights = el_deg < HEADLIGHTS_BELOW_ELEVATION_DEG
    # auto-exposure meters the whole image: the sunlit or sky-lit scene, plus the headlit ground when the lamps are on
    scene_irradiance = float(
        np.mean(ambient_sky) + 0.77 * np.mean(sun) * max(np.sin(el), 0.1) + HEADLIGHT_METERED_IRRADIANCE * headlights
    )
    exposure = float(min(TARGET_LUMINANCE / max(scene_irradiance, 1e-6), MAX_EXPOSURE))
    gain = exposure / 0.8  # relative to a sunny-day gain
    morning_haze = np.exp(-(((hour - 7.0) / 1.8) ** 2))
    return Lighting(
        name=name or f"hour {hour:g}",
        hour=float(hour),
        cloud_cover=float(cloud_cover),
        sun_direction_world=_rgb(sun_dir),
        sun_elevation_deg=el_deg,
        sun_rgb=_rgb(sun),
        sky_zenith_rgb=_rgb(zenith),
        sky_horizon_rgb=_rgb(horizon),
        ambient_sky_rgb=_rgb(ambient_sky),
        ambient_ground_rgb=_rgb(ambient_ground),
        shadow_strength=float((1.0 - blocked) * smoothstep(-1.0, 4.0, el_deg)),
        fog_density_per_m=float(0.004 + 0.014 * morning_haze + 0.006 * cloud_cover + extra_haze_per_m),
        exposure=exposure,
        headlights_on=bool(headlights),
        read_noise=float(0.004 + 0.0025 * np.sqrt(gain)),
        shot_noise=float(0.006 + 0.003 * np.sqrt(gain)),
        sun_azimuth_relative_deg=None if sun_azimuth_relative_deg is None else float(sun_azimuth_relative_deg),
        extra_haze_per_m=float(extra_haze_per_m),
    )


def lighting_preset(name: str | float) -> Lighting:
    """A named preset (see PRESETS) or an hour given as a number or string; ``NAME@AZ`` (e.g. ``evening@0``,
    ``17.5@90``) puts the sun at azimuth AZ degrees clockwise from the direction of travel."""
    text = str(name).strip()
    base, at, azimuth_text = text.partition("@")
    relative = None
    if at:
        try:
            relative = float(azimuth_text)
        except ValueError:
            raise ValueError(
                f"lighting {text!r}: the part after @ must be a sun azimuth in degrees from the direction of travel"
            ) from None
    if base in PRESETS:
        preset = PRESETS[base]
        return lighting_for_hour(
            preset.hour,
            preset.cloud_cover,
            text,
            relative if at else preset.sun_azimuth_relative_deg,
            preset.extra_haze_per_m,
        )
    try:
        hour = float(base)
    except (TypeError, ValueError):
        raise ValueError(
            f"unknown lighting {text!r}: use one of {sorted(PRESETS)} or an hour 0-24 such as 14.5, "
            "optionally with @AZ (sun azimuth from the direction of travel, deg)"
        ) from None
    return lighting_for_hour(hour, 0.0, text if at else None, relative)
