"""The stereo front end shared by teach, localization, re-extraction and the benchmark.

Left image -> features (any `FeatureBackend`); the rectified pair -> SGBM disparity, sampled at the keypoints ->
3-D points in the left optical frame (metres) with a validity mask (`StereoRig.points_from_disparity`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from dlvf_ros.features.backends import FeatureBackend, Features, check_image_rgb
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.geometry.stereo_matching import SgbmConfig, disparity_sgbm, sample_disparity


def full_resolution_sgbm() -> SgbmConfig:
    """SGBM for teach and localization on full-size (512x384) images: 96 disparities instead of the reference's 48.

    With the default rig (1 m up, pitched 19 deg down) the bottom rows see the ground at ~1.3 m, a disparity of
    ~74 px; 48 px stops at 1.9 m depth, leaving the near ground (the only part lit at night) without 3-D points.
    Training (320x240 images) keeps the reference's 48, which covers the same ground there (~46 px).
    """
    return SgbmConfig(num_disparities=96)


@dataclass
class StereoFeatures:
    """Features of a left image with their stereo points (N, 3) m (left optical frame) and valid mask (N,)."""

    features: Features
    points_camera: np.ndarray
    valid: np.ndarray
    timings_ms: dict = field(default_factory=dict)

    def subset_valid(self) -> StereoFeatures:
        """Only the features with a valid 3-D point."""
        return StereoFeatures(
            self.features.subset(self.valid),
            self.points_camera[self.valid],
            self.valid[self.valid],
            dict(self.timings_ms),
        )


class StereoFrontend:
    """Turns a rectified RGB stereo pair of the rig's size into `StereoFeatures`."""

    def __init__(self, backend: FeatureBackend, rig: StereoRig, sgbm: SgbmConfig | None = None) -> None:
        self.backend = backend
        self.rig = rig
        self.sgbm = sgbm or full_resolution_sgbm()

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

    def process(self, left_rgb: np.ndarray, right_rgb: np.ndarray) -> StereoFeatures:
        self.check_images(left_rgb, right_rgb)
        t0 = time.perf_counter()
        features = self.backend.extract(left_rgb)
        t1 = time.perf_counter()
        disparity = disparity_sgbm(left_rgb, right_rgb, self.sgbm)
        points_camera, valid = self.rig.points_from_disparity(
            features.keypoints, sample_disparity(disparity, features.keypoints)
        )
        t2 = time.perf_counter()
        return StereoFeatures(
            features, points_camera, valid, {"features": 1000 * (t1 - t0), "stereo": 1000 * (t2 - t1)}
        )
