"""Seeded spectral (1/f^beta) noise: tileable 2-D fields for terrain heights and textures."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import fft


def spectral_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    beta: float,
    min_wavelength_px: float = 2.0,
    max_wavelength_px: float | None = None,
    stretch: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Periodic noise of `shape` (rows, cols) with power spectrum ~ 1/f^beta, zero mean, unit std (float32).

    Wavelengths outside [min_wavelength_px, max_wavelength_px] are removed; `stretch` (rows, cols) > 1 elongates
    features along that axis (bark grain, grass streaks).
    """
    rows, cols = shape
    fy = (np.fft.fftfreq(rows)[:, None] * stretch[0]).astype(np.float32)
    fx = (np.fft.rfftfreq(cols)[None, :] * stretch[1]).astype(np.float32)
    freq = np.hypot(fy, fx)
    amplitude = np.zeros_like(freq)
    keep = freq > 0
    if max_wavelength_px is not None:
        keep &= freq >= 1.0 / max_wavelength_px
    keep &= freq <= 1.0 / min_wavelength_px
    amplitude[keep] = freq[keep] ** (-beta / 2.0)
    spectrum = amplitude * (
        rng.standard_normal(freq.shape, np.float32) + 1j * rng.standard_normal(freq.shape, np.float32)
    ).astype(np.complex64)
    field = fft.irfft2(spectrum, s=shape, workers=-1)
    std = field.std()
    if std == 0:
        raise ValueError(f"spectral_noise: empty band (min {min_wavelength_px} px, max {max_wavelength_px} px)")
    return (field - field.mean()) / std


def to_unit(field: np.ndarray) -> np.ndarray:
    """Rescale a field to [0, 1]."""
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / (hi - lo) if hi > lo else np.zeros_like(field)


def smoothstep(edge0: float, edge1: float, x: npt.ArrayLike) -> np.ndarray:
    t = np.clip((np.asarray(x) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
