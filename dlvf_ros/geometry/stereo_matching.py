"""Stereo disparity: dense OpenCV SGBM (reference parameters), its lookup at sub-pixel keypoints, and a sparse
sub-pixel ZNCC search along the epipolar line at keypoints.

Images are rectified uint8 RGB (H, W, 3) (or grey (H, W)); SGBM runs on grey. Disparity d = u_left - u_right (px),
float32, NaN where no valid match was found. d = 0 (point at infinity) is kept; triangulation
(`StereoRig.points_from_disparity`) rejects it with the 0.1 to 400 m depth gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from dlvf_ros.config import check_settings, setting


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
        check_settings(self)
        if self.num_disparities % 16 != 0:
            raise ValueError(f"SgbmConfig: num_disparities must be a multiple of 16, got {self.num_disparities}")
        if self.block_size % 2 == 0:
            raise ValueError(f"SgbmConfig: block_size must be odd, got {self.block_size}")
        if self.p1 >= self.p2:
            raise ValueError(f"SgbmConfig: need p1 < p2, got p1={self.p1}, p2={self.p2}")


_MODES = {"sgbm": cv2.STEREO_SGBM_MODE_SGBM, "hh": cv2.STEREO_SGBM_MODE_HH, "sgbm_3way": cv2.STEREO_SGBM_MODE_SGBM_3WAY}


def grey_image(image: np.ndarray, name: str) -> np.ndarray:
    """uint8 (H, W, 3) RGB or (H, W) grey -> (H, W) uint8 grey; anything else raises ValueError naming `name`."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"stereo: {name} must be a uint8 (H, W, 3) RGB or (H, W) grey array")
    if image.ndim == 3:
        if image.shape[2] != 3:
            raise ValueError(f"stereo: {name} must have 3 RGB channels, got shape {image.shape}")
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return image


def disparity_sgbm(left_rgb: np.ndarray, right_rgb: np.ndarray, config: SgbmConfig | None = None) -> np.ndarray:
    """Rectified left/right uint8 images -> float32 (H, W) left disparity in pixels, NaN where invalid."""
    config = config or SgbmConfig()
    left, right = grey_image(left_rgb, "left_rgb"), grey_image(right_rgb, "right_rgb")
    if left.shape != right.shape:
        raise ValueError(f"disparity_sgbm: left {left.shape} and right {right.shape} images differ in size")
    matcher = cv2.StereoSGBM.create(
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


def half_resolution(grey: np.ndarray) -> np.ndarray:
    """(H, W) grey -> (H // 2, W // 2): the mean of each 2x2 block (an odd last row/column is dropped).

    A full-resolution pixel u maps to (u - 0.5) / 2 at half resolution (pixel centres at integers), and a
    half-resolution disparity d to 2 d at full resolution.
    """
    height, width = grey.shape[0] // 2 * 2, grey.shape[1] // 2 * 2
    return cv2.resize(grey[:height, :width], (width // 2, height // 2), interpolation=cv2.INTER_AREA)


# matching costs 1 - ZNCC below this count as this in the uniqueness test: float noise, not a better match (without
# it two near-perfect peaks of a repeated texture pass as unique)
_MIN_ZNCC_COST = 0.01


@dataclass
class ZnccConfig:
    """Sub-pixel stereo at keypoints: ZNCC of a square patch along the rectified row, parabola fit at the peak."""

    patch_radius: int = setting(4, "ZNCC patch radius (px; the patch is 2 r + 1 wide)", (1, 32))
    min_zncc: float = setting(
        0.6, "a best ZNCC below this is no match (not applied by sgbm_half_refined's refinement)", (-1.0, 0.999)
    )
    uniqueness_ratio: float = setting(
        0.2,
        "unique match: 1 - second best ZNCC > (1 + ratio) (1 - best), the second > 1 px from the best (not applied "
        "by sgbm_half_refined's refinement)",
        (0.0, 10.0),
    )
    min_patch_std: float = setting(
        2.0,
        "left patches flatter than this (grey levels; sky, unlit night) are not matched (not applied by "
        "sgbm_half_refined's refinement)",
        (0.0, 255.0),
    )

    def __post_init__(self) -> None:
        check_settings(self)


def _zncc_along_rows(
    template_image: np.ndarray,
    search_image: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    d_min: np.ndarray,
    count: int,
    sign: int,
    config: ZnccConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """ZNCC (N, count) of the template patch at (u, v) with the search patches at (u + sign d, v), d = d_min + i in
    column i (-inf where the search patch leaves the image or is flatter than `min_patch_std`), and the template's
    norm (N,) (its std x patch size; NaN where it leaves the image). Patches are sampled bilinearly."""
    n, radius = len(u), config.patch_radius
    size = 2 * radius + 1
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    rows = v[:, None] + offsets  # (N, size)

    def sample(image, columns):  # columns (N, k) -> (N, size, k), NaN outside the image
        map_x = np.empty((n, size, columns.shape[1]), np.float32)
        map_x[...] = columns[:, None, :]
        map_y = np.empty_like(map_x)
        map_y[...] = rows[:, :, None]
        flat = (map_x.reshape(n * size, -1), map_y.reshape(n * size, -1))
        patches = cv2.remap(image, *flat, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)
        return patches.reshape(map_x.shape)

    template = sample(template_image, u[:, None] + offsets)  # (N, size, size)
    # the strip covers every candidate patch in increasing column order; window k (columns k .. k + size - 1) is
    # candidate k (sign +1) or count - 1 - k (sign -1)
    first = u + sign * d_min - (count - 1 if sign < 0 else 0) - radius
    strip = sample(search_image, first[:, None] + np.arange(count + size - 1, dtype=np.float32))
    centred = template - template.mean(axis=(1, 2), keepdims=True)
    template_norm = np.sqrt(np.einsum("nij,nij->n", centred, centred))
    unit = centred / np.maximum(template_norm, 1e-6)[:, None, None]
    # the template has zero mean: the ZNCC numerator is its dot product with the raw search window
    dot = np.zeros((n, count), np.float32)
    column_sum, column_square_sum = strip.sum(axis=1), np.einsum("nik,nik->nk", strip, strip)
    window_sum, window_square_sum = np.zeros((n, count), np.float32), np.zeros((n, count), np.float32)
    for j in range(size):
        dot += np.einsum("nik,ni->nk", strip[:, :, j : j + count], unit[:, :, j])
        window_sum += column_sum[:, j : j + count]
        window_square_sum += column_square_sum[:, j : j + count]
    variance = window_square_sum - window_sum * window_sum / size**2  # x size^2; NaN where the window leaves
    with np.errstate(invalid="ignore", divide="ignore"):
        zncc = np.where(variance > (config.min_patch_std * size) ** 2, dot / np.sqrt(variance), -np.inf)
    return (zncc[:, ::-1] if sign < 0 else zncc), template_norm


def _peak(zncc: np.ndarray, template_norm: np.ndarray, span: np.ndarray, config: ZnccConfig) -> np.ndarray:
    """Sub-pixel position (N,) of the ZNCC peak in candidates 0 .. span (parabola through the best and its
    neighbours), NaN where there is no match (see `zncc_disparity`)."""
    n, count = zncc.shape
    candidate = np.arange(count)
    zncc = np.where(candidate <= span[:, None], zncc, -np.inf)
    index = np.arange(n)
    best = np.argmax(zncc, axis=1)
    peak = zncc[index, best]
    before, after = zncc[index, np.maximum(best - 1, 0)], zncc[index, np.minimum(best + 1, count - 1)]
    second = np.max(np.where(np.abs(candidate - best[:, None]) > 1, zncc, -np.inf), axis=1)
    size = 2 * config.patch_radius + 1
    with np.errstate(invalid="ignore"):
        curvature = before - 2.0 * peak + after  # < 0 at a true peak; -inf/NaN when a neighbour is unusable
        offset = np.clip(0.5 * (before - after) / np.where(curvature < 0, curvature, -1.0), -0.5, 0.5)
        ok = (
            (best > 0)
            & (best < span)
            & (curvature < 0)
            & np.isfinite(curvature)
            & (peak >= config.min_zncc)
            & (template_norm > config.min_patch_std * size)  # NaN (outside the image) compares False
            & (1.0 - second > (1.0 + config.uniqueness_ratio) * np.maximum(1.0 - peak, _MIN_ZNCC_COST))
        )
    return np.where(ok, best + offset, np.nan)


def zncc_disparity(
    left_grey: np.ndarray,
    right_grey: np.ndarray,
    uv: np.ndarray,
    d_min: np.ndarray | int,
    d_max: np.ndarray | int,
    config: ZnccConfig | None = None,
    left_right_check: bool = False,
) -> np.ndarray:
    """Sub-pixel disparity at (N, 2) left points (u, v) by a 1-D ZNCC search over integer d in [d_min, d_max] (N,).

    Images are rectified float32 (H, W) grey. The left patch is sampled bilinearly at the sub-pixel point, the right
    ones at (u - d, v), so the disparity belongs to the point itself. A parabola through the ZNCC at the best d and
    its two neighbours gives the sub-pixel offset. NaN (no match) where: the left patch leaves the image or is flatter
    than `min_patch_std`; the best ZNCC is below `min_zncc`; the peak lies on an end of the search range (the true one
    may be outside it); the match is not unique (`uniqueness_ratio`); with `left_right_check`, the right patch at
    (u - d, v), searched for in the left image over the same range, finds a disparity more than 1 px from d (occluded
    points, whose true match is hidden, fail it). Right patches outside the image are skipped. Returns (N,) float32 px.
    """
    config = config or ZnccConfig()
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    n = len(uv)
    d_min = np.broadcast_to(np.asarray(d_min, np.int64), (n,))
    d_max = np.broadcast_to(np.asarray(d_max, np.int64), (n,))
    if left_grey.dtype != np.float32 or right_grey.dtype != np.float32 or left_grey.shape != right_grey.shape:
        raise ValueError("zncc_disparity: left_grey and right_grey must be float32 (H, W) images of the same size")
    if np.any(d_max < d_min):
        raise ValueError("zncc_disparity: d_max must be >= d_min for every point")
    if n == 0:
        return np.zeros(0, np.float32)
    span = d_max - d_min
    count = int(span.max()) + 1  # disparity candidates per point
    finite = np.isfinite(uv).all(axis=1)
    u = np.where(finite, uv[:, 0], -1e4).astype(np.float32)  # far outside: sampled as NaN
    v = np.where(finite, uv[:, 1], -1e4).astype(np.float32)
    disparity = d_min + _peak(*_zncc_along_rows(left_grey, right_grey, u, v, d_min, count, -1, config), span, config)
    found = np.flatnonzero(np.isfinite(disparity))
    if left_right_check and len(found):
        u_right = (u[found] - disparity[found]).astype(np.float32)
        back = _zncc_along_rows(right_grey, left_grey, u_right, v[found], d_min[found], count, +1, config)
        disparity_back = d_min[found] + _peak(*back, span[found], config)
        consistent = np.abs(disparity_back - disparity[found]) <= 1.0  # NaN (no match back) compares False
        disparity[found[~consistent]] = np.nan
    return disparity.astype(np.float32)
