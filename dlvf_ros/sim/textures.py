"""Material textures (sRGB tiles) from scikit-image sample photographs and seeded spectral noise.

The photographs (grass, gravel) ship inside scikit-image, so nothing is downloaded. Tiles are made seamless by
mirroring; the shader breaks the repetition further with world-space variation.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data as skdata

from dlvf_ros.sim.noise import smoothstep, spectral_noise, to_unit

# layer index of each material in the texture array (the shaders use the same numbers)
GRASS, DIRT, ROCK, BARK, LEAVES = range(5)


def _mirror_tile(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a grey photo to size/2 and mirror it into a seamless size x size tile in [0, 1]."""
    half = cv2.resize(image.astype(np.float32) / 255.0, (size // 2, size // 2), interpolation=cv2.INTER_AREA)
    top = np.hstack([half, half[:, ::-1]])
    return np.vstack([top, top[::-1]])


def _palette(value: np.ndarray, dark: tuple, light: tuple) -> np.ndarray:
    """Map a [0, 1] field to colours between two sRGB endpoints (0..1 floats) -> (H, W, 3)."""
    dark_arr, light_arr = np.asarray(dark, np.float32), np.asarray(light, np.float32)
    return dark_arr + (light_arr - dark_arr) * np.clip(value, 0.0, 1.0)[..., None]


def material_textures(rng: np.random.Generator, size: int) -> np.ndarray:
    """(5, size, size, 4) uint8 RGBA tiles in layer order GRASS, DIRT, ROCK, BARK, LEAVES (sRGB, alpha 255)."""
    shape = (size, size)

    def noise(beta: float, lo: float = 2.0, hi: float | None = None, stretch=(1.0, 1.0)) -> np.ndarray:
        return to_unit(spectral_noise(rng, shape, beta, lo, hi, stretch))

    grass_photo = _mirror_tile(skdata.grass(), size)
    gravel_photo = _mirror_tile(skdata.gravel(), size)

    clumps = noise(2.0, 4.0, size / 4)
    grass = _palette(0.75 * grass_photo + 0.35 * clumps - 0.1, (0.06, 0.11, 0.03), (0.46, 0.58, 0.22))
    grass *= (0.85 + 0.3 * noise(1.0, 2.0, 16.0))[..., None]

    pebbles = gravel_photo
    dirt = _palette(0.8 * pebbles + 0.3 * noise(2.2, 3.0, size / 2) - 0.05, (0.20, 0.14, 0.09), (0.72, 0.62, 0.48))

    grain = noise(2.4, 2.0, size / 2)
    cracks = smoothstep(0.78, 0.92, 1.0 - np.abs(spectral_noise(rng, shape, 2.0, 6.0, size / 3)) / 3.0)
    rock = _palette(0.45 * grain + 0.45 * gravel_photo[::-1] + 0.1, (0.16, 0.15, 0.14), (0.70, 0.68, 0.64))
    rock *= (1.0 - 0.55 * cracks)[..., None]
    lichen = smoothstep(0.72, 0.8, noise(2.6, 3.0, size / 4))
    rock = rock * (1 - lichen[..., None]) + lichen[..., None] * np.array([0.62, 0.64, 0.42], np.float32)

    fibres = noise(1.6, 2.0, size / 2, stretch=(0.08, 1.0))
    bark = _palette(0.8 * fibres + 0.2 * noise(2.0), (0.09, 0.06, 0.04), (0.45, 0.36, 0.27))

    leaf_mask = smoothstep(0.35, 0.65, noise(1.2, 2.0, 24.0))
    leaves = _palette(0.6 * noise(1.8, 2.0, 64.0) + 0.4 * leaf_mask, (0.02, 0.05, 0.015), (0.35, 0.52, 0.16))
    leaves *= (0.35 + 0.65 * leaf_mask)[..., None]

    layers = np.stack([grass, dirt, rock, bark, leaves])
    rgba = np.empty((5, size, size, 4), np.uint8)
    rgba[..., :3] = np.clip(layers * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgba[..., 3] = 255
    return rgba
