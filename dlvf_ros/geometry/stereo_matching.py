"""Dense stereo disparity with OpenCV SGBM (reference parameters) and disparity lookup at sub-pixel keypoints.

Images are rectified uint8 RGB (H, W, 3) (or grey (H, W)); SGBM runs on grey. Disparity d = u_left - u_right (px),
float32, NaN where SGBM found no valid match. d = 0 (point at infinity) is kept; triangulation
(`StereoRig.points_from_disparity`) rejects it with the 0.1 to 400 m depth gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from dlvf_ros.config import setting


@dataclass
class SgbmConfig:
    """OpenCV StereoSGBM parameters; the defaults are those of the reference implementation (Gridseth and Barfoot)."""

    min_disparity: int = setting(0, "SGBM minimum disparity (px)", (-1024, 1024))
    num_disparities: int = setting(48, "SGBM disparity search range (px, a multiple of 16)", (16, 1024))
    block_size: int = setting(5, "SGBM block size (odd, px)", (1, 51))
    p1: int = setting(200, "SGBM smoothness penalty P1", (0, 100_000))
    p2: int = setting(800, "SGBM smoothness penalty P2 (> P1)", (0, 100_000))
    # left-right check off by default, as in the reference (OpenCV default)
    disp12_max_diff: int = setting(-1, "SGBM left-right check tolerance (px; -1: off)", (-1, 1024))
    uniqueness_ratio: int = setting(20, "SGBM uniqueness ratio (%)", (0, 100))
    speckle_window_size: int = setting(200, "SGBM speckle filter window (px; 0: off)", (0, 10_000))
    speckle_range: int = setting(1, "SGBM speckle filter disparity range", (0, 1024))
    pre_filter_cap: int = setting(30, "SGBM pre-filter cap", (1, 63))
    mode: Literal["sgbm", "hh", "sgbm_3way"] = setting("sgbm", "SGBM mode: sgbm, hh or sgbm_3way")

    def __post_init__(self) -> None:
        if self.num_disparities <= 0 or self.num_disparities % 16 != 0:
            raise ValueError(
                f"SgbmConfig: num_disparities must be a positive multiple of 16, got {self.num_disparities}"
            )
        if self.block_size < 1 or self.block_size % 2 == 0:
            raise ValueError(f"SgbmConfig: block_size must be odd and >= 1, got {self.block_size}")
        if not 0 <= self.p1 < self.p2:
            raise ValueError(f"SgbmConfig: need 0 <= p1 < p2, got p1={self.p1}, p2={self.p2}")


_MODES = {"sgbm": cv2.STEREO_SGBM_MODE_SGBM, "hh": cv2.STEREO_SGBM_MODE_HH, "sgbm_3way": cv2.STEREO_SGBM_MODE_SGBM_3WAY}


def _grey(image: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"disparity_sgbm: {name} must be a uint8 (H, W, 3) RGB or (H, W) grey array")
    if image.ndim == 3:
        if image.shape[2] != 3:
            raise ValueError(f"disparity_sgbm: {name} must have 3 RGB channels, got shape {image.shape}")
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return image


def disparity_sgbm(left_rgb: np.ndarray, right_rgb: np.ndarray, config: SgbmConfig | None = None) -> np.ndarray:
    """Rectified left/right uint8 images -> float32 (H, W) left disparity in pixels, NaN where invalid."""
    config = config or SgbmConfig()
    left, right = _grey(left_rgb, "left_rgb"), _grey(right_rgb, "right_rgb")
    if left.shape != right.shape:
        raise ValueError(f"disparity_sgbm: left {left.shape} and right {right.shape} images differ in size")
    matcher = cv2.StereoSGBM_create(
        minDisparity=config.min_disparity,
        numDisparities=config.num_disparities,
        blockSize=config.block_size,
        P1=config.p1,
        P2=config.p2,
        disp12MaxDiff=config.disp12_max_diff,
        preFilterCap=config.pre_filter_cap,
        uniquenessRatio=config.uniqueness_ratio,
        speckleWindowSize=config.speckle_window_size,
        speckleRange=config.speckle_range,
        mode=_MODES[config.mode],
    )
    fixed_point = matcher.compute(left, right)  # int16, 4 fractional bits; invalid = (min_disparity - 1) * 16
    disparity = fixed_point.astype(np.float32) / 16.0
    disparity[fixed_point < config.min_disparity * 16] = np.nan
    return disparity


def sample_disparity(
    disparity: np.ndarray, uv: np.ndarray, mode: Literal["bilinear", "nearest"] = "bilinear"
) -> np.ndarray:
    """Disparity (H, W) (NaN invalid) at (N, 2) sub-pixel points (u, v), pixel centres at integers -> (N,) float32.

    "nearest" reads the pixel whose centre is closest. "bilinear" interpolates the four surrounding pixels and gives
    NaN if any of them is invalid (never blends across a hole or a depth edge into a non-match); points on an exact
    integer column or row use only the pixels they touch. Points outside [0, W-1] x [0, H-1] give NaN.
    """
    if disparity.ndim != 2:
        raise ValueError(f"sample_disparity: disparity must be (H, W), got shape {disparity.shape}")
    uv = np.asarray(uv, dtype=np.float64)
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise ValueError(f"sample_disparity: uv must be (N, 2) pixel coordinates, got shape {uv.shape}")
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"sample_disparity: mode must be 'bilinear' or 'nearest', got {mode!r}")
    height, width = disparity.shape
    u, v = uv[:, 0], uv[:, 1]
    inside = np.isfinite(u) & np.isfinite(v) & (u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1)
    u, v = np.where(inside, u, 0.0), np.where(inside, v, 0.0)
    if mode == "nearest":
        values = disparity[np.rint(v).astype(int), np.rint(u).astype(int)].astype(np.float64)
    else:
        u0 = np.minimum(np.floor(u).astype(int), width - 2) if width > 1 else np.zeros(len(u), int)
        v0 = np.minimum(np.floor(v).astype(int), height - 2) if height > 1 else np.zeros(len(v), int)
        du, dv = u - u0, v - v0
        u1, v1 = np.minimum(u0 + 1, width - 1), np.minimum(v0 + 1, height - 1)
        corners = [(v0, u0, (1 - du) * (1 - dv)), (v0, u1, du * (1 - dv)), (v1, u0, (1 - du) * dv), (v1, u1, du * dv)]
        values = np.zeros(len(u))
        for rows, cols, weight in corners:
            sample = disparity[rows, cols].astype(np.float64)
            touched = weight > 0
            values = values + np.where(touched, sample * weight, 0.0)  # NaN in a touched corner propagates
            values = np.where(touched & ~np.isfinite(sample), np.nan, values)
    values[~inside] = np.nan
    return values.astype(np.float32)
