"""Camera members of a world's style: exposure behaviour, gain noise, tone curve, white balance, lens effects.

The renderer draws linear radiance first; the camera pass (shaders/camera.frag.glsl) then applies, per pixel:
motion blur along the flow of the vehicle's motion during the exposure and defocus (colour only, never depth),
exposure and white balance, veiling glare and lens flare from the sun, vignetting, shot + read noise, the tone
curve and gamma; JPEG-like compression follows on the CPU.

Exposure: `exposure` (radiance multiplier) is metered from the lighting (`"lighting"`, the classic analytic
auto-exposure) or from the rendered left image (`"average"`, `"center"` weighted, or `"highlights"`: keeps the
bright end in range), shifted by `exposure_bias_ev`. It is split into an exposure time, up to
`max_exposure_time_s`, and a gain: time = exposure / EXPOSURE_PER_S, gain = what is still missing (>= 1). Long
times (dusk, night) blur; high gain amplifies the noise: std^2 = shot^2 * gain * x + (read * gain)^2 in linear
units x. The classic camera adds the lighting's noise after its tone curve instead (as before styles existed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlvf_ros.sim.lighting import MAX_EXPOSURE, Lighting

EXPOSURE_PER_S = 250.0  # radiance multiplier per second of exposure at unit gain (noon ~2 ms, night ~25 ms)
METERING_TARGET = 0.16  # metered mean linear luminance after exposure (~mid grey after the tone curve)
TONE_CURVES = ("filmic", "clip", "s_curve", "log")  # shader ids 0..3


@dataclass(frozen=True)
class CameraProfile:
    metering: str = "average"  # "lighting", "average", "center" or "highlights"
    exposure_bias_ev: float = 0.0
    max_exposure_time_s: float = 1 / 30  # 0: no motion blur (the classic camera)
    max_gain: float = 4.0  # the highest exposure is EXPOSURE_PER_S * max_exposure_time_s * max_gain
    tone: str = "clip"  # one of TONE_CURVES
    gamma: float = 2.2  # display gamma applied after the tone curve
    contrast: float = 0.0  # s_curve strength / log compression
    black_level: float = 0.0  # lifted blacks in output units (flat profiles)
    saturation: float = 1.0  # 1 = as rendered
    white_balance_rgb: tuple[float, float, float] = (1.0, 1.0, 1.0)  # per-channel gains (linear)
    read_noise: float = 0.002  # std at unit gain, linear units
    shot_noise: float = 0.01  # std = shot_noise * sqrt(gain * x)
    noise_after_tone: bool = False  # classic: the lighting's noise, added to the output values
    vignetting: float = 0.0  # relative darkening in the image corners
    defocus_px: float = 0.0  # blur circle radius at 512 px width far from the focus distance (0: a sharp lens)
    focus_m: float = 5.0
    veil: float = 0.0  # veiling glare from the sun (scattered light, contrast loss)
    flare: float = 0.0  # lens flare ghosts
    jpeg_quality: int = 0  # 0: no compression

    def __post_init__(self) -> None:
        if self.metering not in ("lighting", "average", "center", "highlights"):
            raise ValueError(f"CameraProfile: unknown metering {self.metering!r}")
        if self.tone not in TONE_CURVES:
            raise ValueError(f"CameraProfile: tone must be one of {TONE_CURVES}, got {self.tone!r}")
        if not 0 <= self.jpeg_quality <= 100:
            raise ValueError(f"CameraProfile: jpeg_quality must be in [0, 100], got {self.jpeg_quality}")

    @property
    def max_exposure(self) -> float:
        return (
            MAX_EXPOSURE if self.metering == "lighting" else EXPOSURE_PER_S * self.max_exposure_time_s * self.max_gain
        )

    def exposure(self, lighting: Lighting, metered_luminance: float | None) -> float:
        """Radiance multiplier for a frame: the lighting's, or METERING_TARGET over the metered mean luminance."""
        if self.metering == "lighting":
            base = lighting.exposure
        elif metered_luminance is None:
            raise ValueError(f"CameraProfile.exposure: metering {self.metering!r} needs the metered luminance")
        else:
            base = METERING_TARGET / max(float(metered_luminance), 1e-6)
        return float(min(base * 2.0**self.exposure_bias_ev, self.max_exposure))

    def time_and_gain(self, exposure: float) -> tuple[float, float]:
        """(exposure time s, analog gain >= 1) that give `exposure`."""
        if self.max_exposure_time_s <= 0.0:
            return 0.0, 1.0
        time_s = min(exposure / EXPOSURE_PER_S, self.max_exposure_time_s)
        return time_s, max(exposure / (EXPOSURE_PER_S * time_s), 1.0)


CAMERAS: dict[str, CameraProfile] = {
    # the camera before styles: analytic exposure, filmic curve, gamma 2, the lighting's noise after the curve,
    # a perfect lens and no motion blur
    "classic": CameraProfile(
        metering="lighting", max_exposure_time_s=0.0, tone="filmic", gamma=2.0, noise_after_tone=True
    ),
    # global-shutter machine-vision camera: linear response with hard clipping, honest colours, low noise
    "machine_vision": CameraProfile(
        white_balance_rgb=(0.97, 1.0, 1.04),
        read_noise=0.0025,
        shot_noise=0.012,
        vignetting=0.18,
        veil=0.5,
        flare=0.25,
    ),
    # consumer action camera: punchy S-curve, warm, saturated, centre-weighted, JPEG, long night exposures
    "consumer": CameraProfile(
        metering="center",
        exposure_bias_ev=0.3,
        max_exposure_time_s=1 / 15,
        max_gain=2.0,
        tone="s_curve",
        contrast=0.6,
        saturation=1.25,
        white_balance_rgb=(1.1, 1.0, 0.86),
        read_noise=0.003,
        shot_noise=0.015,
        vignetting=0.3,
        veil=0.8,
        flare=0.6,
        jpeg_quality=82,
    ),
    # cheap CMOS module: noisy, green-tinted, soft, dark corners, heavy compression, very long night exposures
    "cheap_cmos": CameraProfile(
        exposure_bias_ev=-0.3,
        max_exposure_time_s=1 / 10,
        max_gain=1.5,
        gamma=2.4,
        black_level=0.02,
        saturation=0.85,
        white_balance_rgb=(0.92, 1.1, 0.9),
        read_noise=0.008,
        shot_noise=0.03,
        vignetting=0.45,
        defocus_px=0.8,
        focus_m=6.0,
        veil=1.2,
        flare=1.0,
        jpeg_quality=55,
    ),
    # held out: industrial camera with a flat log-like curve, cool white balance, strong vignetting, high read
    # noise and a slightly defocused lens
    "rolling_industrial": CameraProfile(
        metering="highlights",
        max_exposure_time_s=1 / 20,
        max_gain=3.0,
        tone="log",
        gamma=1.0,
        contrast=30.0,
        black_level=0.07,
        saturation=0.8,
        white_balance_rgb=(0.84, 0.97, 1.18),
        read_noise=0.012,
        shot_noise=0.012,
        vignetting=0.6,
        defocus_px=0.8,
        focus_m=3.0,
        veil=0.9,
        flare=0.5,
    ),
    # validation only, never drawn (style.NAMED_ONLY): a dash camera metered on the highlights, so at night the
    # headlight pool keeps its range and the rest goes dark; short exposures, high gain noise, S-curve, warm, JPEG
    "dashcam": CameraProfile(
        metering="highlights",
        exposure_bias_ev=-0.2,
        max_exposure_time_s=1 / 30,
        max_gain=4.0,
        tone="s_curve",
        contrast=0.4,
        saturation=1.1,
        white_balance_rgb=(1.08, 1.0, 0.9),
        read_noise=0.01,
        shot_noise=0.02,
        vignetting=0.35,
        veil=0.7,
        flare=0.4,
        jpeg_quality=70,
    ),
}


def meter(luminance_grid: np.ndarray, metering: str) -> float:
    """Metered luminance of a coarse (rows, cols) grid of mean linear luminance over the image."""
    rows, cols = luminance_grid.shape
    if metering == "average":
        return float(luminance_grid.mean())
    if metering == "center":
        y, x = np.mgrid[0:rows, 0:cols]
        weight = np.exp(-(((x - (cols - 1) / 2) / (0.3 * cols)) ** 2 + ((y - (rows - 1) / 2) / (0.3 * rows)) ** 2))
        return float((luminance_grid * weight).sum() / weight.sum())
    if metering == "highlights":  # the bright end counts too: the sky keeps its detail, the ground darkens
        return float(max(luminance_grid.mean(), 0.4 * np.percentile(luminance_grid, 95)))
    raise ValueError(f"meter: metering {metering!r} reads the lighting, not the image")
