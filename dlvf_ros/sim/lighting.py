"""Time-of-day lighting: sun position from the hour, sky and sun colours, haze, exposure, sensor noise, headlights.

The world frame is taken as east-north-up at latitude 43.8 deg N in June (the UTIAS site), so the hour fixes the
sun. Radiometric values are linear-RGB in arbitrary but consistent units; the renderer multiplies by `exposure`
and tone-maps. Named presets: noon, morning, evening, overcast, dusk, night; any hour 0-24 works too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlvf_ros.sim.noise import smoothstep

LATITUDE_DEG = 43.8
SOLAR_DECLINATION_DEG = 23.0  # June
SOLAR_NOON_HOUR = 13.25  # local daylight time
HEADLIGHTS_BELOW_ELEVATION_DEG = 2.0  # the robot switches its lights on near sunset
SUN_IRRADIANCE = 3.2
MAX_EXPOSURE = 9.0  # highest camera gain; beyond it the night stays dark
HEADLIGHT_INTENSITY = 3.5  # each lamp: irradiance = intensity / distance^2 on the beam axis
HEADLIGHT_METERED_IRRADIANCE = 0.25  # what the headlit ground adds to the auto-exposure's scene average
TARGET_LUMINANCE = 1.5  # auto-exposure: exposure = TARGET_LUMINANCE / scene irradiance (albedo ~0.1 -> mid grey)

# name -> (hour, cloud cover 0..1)
PRESETS: dict[str, tuple[float, float]] = {
    "noon": (12.5, 0.0),
    "morning": (8.0, 0.0),
    "evening": (19.0, 0.0),
    "overcast": (13.0, 1.0),
    "dusk": (21.3, 0.0),
    "night": (23.5, 0.0),
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
    exposure: float
    headlights_rgb: tuple[float, float, float]  # intensity of each headlight (0 = off)
    read_noise: float  # sensor noise std in [0, 1] output units
    shot_noise: float  # signal-dependent noise: std = shot_noise * sqrt(value)

    @property
    def headlights_on(self) -> bool:
        return max(self.headlights_rgb) > 0.0


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


def lighting_for_hour(hour: float, cloud_cover: float = 0.0, name: str | None = None) -> Lighting:
    """Lighting at local `hour` (0-24) with `cloud_cover` in [0, 1] (1 = overcast: no direct sun, no shadows)."""
    if not 0.0 <= hour <= 24.0:
        raise ValueError(f"lighting_for_hour: hour must be in [0, 24], got {hour}")
    if not 0.0 <= cloud_cover <= 1.0:
        raise ValueError(f"lighting_for_hour: cloud_cover must be in [0, 1], got {cloud_cover}")
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

    if cloud_cover > 0:  # clouds: direct light scattered into a grey, brighter-than-blue sky
        grey = np.full(3, 0.55 * day * (0.3 + 0.7 * smoothstep(0.0, 35.0, el_deg))) + night_sky
        zenith = zenith * (1 - cloud_cover) + grey * 0.85 * cloud_cover
        horizon = horizon * (1 - cloud_cover) + grey * cloud_cover
        sun = sun * (1 - 0.93 * cloud_cover)
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
        sun_direction_world=tuple(float(v) for v in sun_dir),
        sun_elevation_deg=el_deg,
        sun_rgb=tuple(float(v) for v in sun),
        sky_zenith_rgb=tuple(float(v) for v in zenith),
        sky_horizon_rgb=tuple(float(v) for v in horizon),
        ambient_sky_rgb=tuple(float(v) for v in ambient_sky),
        ambient_ground_rgb=tuple(float(v) for v in ambient_ground),
        shadow_strength=float((1.0 - cloud_cover) * smoothstep(-1.0, 4.0, el_deg)),
        fog_density_per_m=float(0.004 + 0.014 * morning_haze + 0.006 * cloud_cover),
        exposure=exposure,
        headlights_rgb=tuple(float(v) for v in HEADLIGHT_INTENSITY * np.array([1.0, 0.93, 0.8]) * float(headlights)),
        read_noise=float(0.004 + 0.0025 * np.sqrt(gain)),
        shot_noise=float(0.006 + 0.003 * np.sqrt(gain)),
    )


def lighting_preset(name: str | float) -> Lighting:
    """A named preset (noon, morning, evening, overcast, dusk, night) or an hour given as a number or string."""
    if isinstance(name, str) and name in PRESETS:
        hour, clouds = PRESETS[name]
        return lighting_for_hour(hour, clouds, name)
    try:
        hour = float(name)
    except (TypeError, ValueError):
        raise ValueError(
            f"unknown lighting {name!r}: use one of {sorted(PRESETS)} or an hour 0-24 such as 14.5"
        ) from None
    return lighting_for_hour(hour)
