"""The stereo front end shared by teach, localization, re-extraction and the benchmark.

Left image -> features (any `FeatureBackend`); the rectified pair -> disparity at the keypoints (`StereoConfig.method`)
-> 3-D points in the left optical frame (metres) with a validity mask (`StereoRig.points_from_disparity`).

Stereo methods (disparity at keypoints, px, NaN where none):
- "sgbm": dense SGBM at full resolution, sampled at the keypoints (`sample_disparity`): the reference.
- "sgbm_half_refined": dense SGBM on the 2x2-averaged pair (half the range: 1/8 of the work), sampled at the
  keypoints, then refined at full resolution by a ZNCC search of +-`refine_search_px` around twice the half-resolution
  disparity (sub-pixel, `zncc_disparity`); where the ZNCC has no peak inside that window (flat or edge patches) the
  half-resolution value stays. SGBM (its uniqueness test and speckle filter) decides which keypoints get a
  disparity; the full-resolution refit restores the precision the coarse grid lost.
- "keypoints": no dense stereo: the ZNCC search over the whole range at each keypoint, uniqueness- and
  left-right-checked (the right patch found must find the keypoint back).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_type_hints

import numpy as np

from dlvf_ros.config import check_settings, setting
from dlvf_ros.features.backends import DescriptorField, FeatureBackend, Features, check_image_rgb
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.geometry.stereo_matching import (
    SgbmConfig,
    ZnccConfig,
    disparity_sgbm,
    grey_image,
    half_resolution,
    sample_disparity,
    zncc_disparity,
)

# the refinement only places the ZNCC peak near SGBM's disparity, which SGBM already judged (uniqueness, speckles):
# its own checks would reject keypoints in weak texture that SGBM's smoothing measures well (on the simulator they
# cost a quarter of the correctly matched points)
_PEAK_ONLY: dict[str, Any] = {"min_zncc": -1.0, "uniqueness_ratio": 0.0, "min_patch_std": 0.0}


def full_resolution_sgbm() -> SgbmConfig:
    """SGBM for teach and localization on full-size (512x384) images: 96 disparities instead of the reference's 48.

    With the default rig (1 m up, pitched 19 deg down) the bottom rows see the ground at ~1.3 m, a disparity of
    ~74 px; 48 px stops at 1.9 m depth, leaving the near ground (the only part lit at night) without 3-D points.
    Training (320x240 images) keeps the reference's 48, which covers the same ground there (~46 px).
    """
    return SgbmConfig(num_disparities=96)


@dataclass
class StereoConfig:
    """How the front end finds disparities at keypoints (see the module docstring); teach and repeat must agree."""

    method: Literal["sgbm", "sgbm_half_refined", "keypoints"] = setting(
        "sgbm_half_refined",
        "disparity at the keypoints: sgbm (dense, full resolution), sgbm_half_refined (dense at half resolution, "
        "refined by ZNCC at full resolution) or keypoints (ZNCC search at the keypoints only); teach and repeat must "
        "use the same",
    )
    sgbm: SgbmConfig = field(default_factory=full_resolution_sgbm)  # at full resolution; half resolution halves it
    zncc: ZnccConfig = field(default_factory=ZnccConfig)  # keypoints: all of it; sgbm_half_refined: the patch only
    refine_search_px: int = setting(
        2, "sgbm_half_refined: ZNCC search +- this (px) around twice the half-resolution disparity", (1, 64)
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.method not in STEREO_METHODS:
            raise ValueError(f"StereoConfig: method must be one of {', '.join(STEREO_METHODS)}, got {self.method!r}")

    def half_resolution_sgbm(self) -> SgbmConfig:
        """`sgbm` for the half-resolution pair: half the disparity range (a multiple of 16, rounded up)."""
        return dataclasses.replace(
            self.sgbm,
            min_disparity=self.sgbm.min_disparity // 2,
            num_disparities=-(-self.sgbm.num_disparities // 32) * 16,
        )


STEREO_METHODS: tuple[str, ...] = get_args(get_type_hints(StereoConfig)["method"])


class KeypointDisparity:
    """Disparities (px) of one rectified RGB pair at any left pixels, by `StereoConfig.method`; the dense part (SGBM)
    and the float images of the ZNCC searches are computed once, at the first call that needs them."""

    def __init__(self, left_rgb: np.ndarray, right_rgb: np.ndarray, config: StereoConfig) -> None:
        self.left, self.right = grey_image(left_rgb, "left_rgb"), grey_image(right_rgb, "right_rgb")
        if self.left.shape != self.right.shape:
            raise ValueError(f"stereo: left {self.left.shape} and right {self.right.shape} images differ in size")
        self.config = config
        self._dense: np.ndarray | None = None
        self._float_pair: tuple[np.ndarray, np.ndarray] | None = None

    def _dense_disparity(self) -> np.ndarray:
        """Full-resolution SGBM ("sgbm") or half-resolution SGBM ("sgbm_half_refined"), NaN where none."""
        if self._dense is None:
            if self.config.method == "sgbm":
                self._dense = disparity_sgbm(self.left, self.right, self.config.sgbm)
            else:
                self._dense = disparity_sgbm(
                    half_resolution(self.left), half_resolution(self.right), self.config.half_resolution_sgbm()
                )
        return self._dense

    def _float_images(self) -> tuple[np.ndarray, np.ndarray]:
        """The grey pair as float32, for the ZNCC searches."""
        if self._float_pair is None:
            self._float_pair = (self.left.astype(np.float32), self.right.astype(np.float32))
        return self._float_pair

    def __call__(self, keypoints: np.ndarray) -> np.ndarray:
        """Disparity (N,) float32 px at (N, 2) left pixels (u, v), NaN where none was found."""
        config = self.config
        if config.method == "sgbm":
            return sample_disparity(self._dense_disparity(), keypoints)
        left_f32, right_f32 = self._float_images()
        if config.method == "keypoints":
            low = max(config.sgbm.min_disparity, 0)
            high = low + config.sgbm.num_disparities - 1
            return zncc_disparity(left_f32, right_f32, keypoints, low, high, config.zncc, left_right_check=True)
        disparity = 2.0 * sample_disparity(self._dense_disparity(), (np.asarray(keypoints, np.float64) - 0.5) / 2.0)
        found = np.flatnonzero(np.isfinite(disparity))
        if len(found):
            centre = np.rint(disparity[found]).astype(np.int64)
            refined = zncc_disparity(
                left_f32,
                right_f32,
                np.asarray(keypoints)[found],
                np.maximum(centre - config.refine_search_px, 0),
                centre + config.refine_search_px,
                dataclasses.replace(config.zncc, **_PEAK_ONLY),
            )
            disparity[found] = np.where(np.isfinite(refined), refined, disparity[found])
        return disparity.astype(np.float32)


@dataclass
class FrameResampler:
    """A frame's descriptors and stereo points at pixels other than its keypoints (match refinement,
    `dlvf_ros.matching.refinement`)."""

    descriptors: DescriptorField
    disparity: KeypointDisparity
    rig: StereoRig

    def points(self, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) left pixels -> ((N, 3) points in the left optical frame (m), (N,) valid); pixels outside the image
        are invalid."""
        uv = np.asarray(uv, np.float64).reshape(-1, 2)
        inside = (
            (uv[:, 0] >= 0) & (uv[:, 0] <= self.rig.width - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= self.rig.height - 1)
        )
        disparity = np.full(len(uv), np.nan, np.float32)
        if inside.any():
            disparity[inside] = self.disparity(uv[inside])
        return self.rig.points_from_disparity(uv, disparity)


@dataclass
class StereoFeatures:
    """Features of a left image with their stereo points (N, 3) m (left optical frame) and valid mask (N,)."""

    features: Features
    points_camera: np.ndarray
    valid: np.ndarray
    timings_ms: dict = field(default_factory=dict)
    resampler: FrameResampler | None = None  # a current frame's, when its matches are refined

    def subset_valid(self) -> StereoFeatures:
        """Only the features with a valid 3-D point."""
        return StereoFeatures(
            self.features.subset(self.valid),
            self.points_camera[self.valid],
            self.valid[self.valid],
            dict(self.timings_ms),
            self.resampler,
        )


class StereoFrontend:
    """Turns a rectified RGB stereo pair of the rig's size into `StereoFeatures`."""

    def __init__(self, backend: FeatureBackend, rig: StereoRig, stereo: StereoConfig | None = None) -> None:
        self.backend = backend
        self.rig = rig
        self.stereo = stereo or StereoConfig()

    def check_images(self, left_rgb: np.ndarray, right_rgb: np.ndarray) -> None:
        """ValueError naming the problem unless both images are uint8 RGB of the rig's size."""
        expected = (self.rig.height, self.rig.width, 3)
        for name, image in (("left_rgb", left_rgb), ("right_rgb", right_rgb)):
            check_image_rgb(image, name)
            if image.shape != expected:
                raise ValueError(
                    f"{name}: image size {image.shape[1]}x{image.shape[0]} does not match the calibration "
                    f"{self.rig.width}x{self.rig.height}; rectify/resize the images to the calibrated size or use "
                    "a map taught with this camera"
                )

    def process(self, left_rgb: np.ndarray, right_rgb: np.ndarray, resampler: bool = False) -> StereoFeatures:
        """Features of the left image with their stereo points; with `resampler`, also the `FrameResampler` that
        refining this frame's matches needs (None when the backend has no `DescriptorField`)."""
        self.check_images(left_rgb, right_rgb)
        t0 = time.perf_counter()
        if resampler:
            features, descriptor_field = self.backend.extract_with_field(left_rgb)
        else:
            features, descriptor_field = self.backend.extract(left_rgb), None
        t1 = time.perf_counter()
        disparity = KeypointDisparity(left_rgb, right_rgb, self.stereo)
        points_camera, valid = self.rig.points_from_disparity(features.keypoints, disparity(features.keypoints))
        t2 = time.perf_counter()
        return StereoFeatures(
            features,
            points_camera,
            valid,
            {"features": 1000 * (t1 - t0), "stereo": 1000 * (t2 - t1)},
            None if descriptor_field is None else FrameResampler(descriptor_field, disparity, self.rig),
        )
