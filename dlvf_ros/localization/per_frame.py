"""Per-frame mode: one stereo frame against one given keyframe; no odometry, no submap, no gate, no state.

The protocol that isolates feature quality (`dlvf test`, and `dlvf evaluate --per-frame` beside the
through-the-nodes result): the evaluation picks each repeat frame's ground-truth-nearest teach keyframe, and the frame
is localized against it by the Localizer's own steps and settings (`keyframe_pose`: matching, RANSAC, stereo
reprojection refinement; `LocalizerConfig.matching`, `ransac`, `refine`, `min_matches`, `covariance`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from dlvf_ros.localization.covariance import fix_covariance
from dlvf_ros.localization.frontend import StereoFeatures, StereoFrontend
from dlvf_ros.localization.keyframe_pose import PoseEstimator, match_keyframe
from dlvf_ros.localization.localizer import LocalizerConfig


@dataclass
class PerFrameResult:
    """A frame localized against one keyframe. Without a pose (fewer than `min_matches` matches or
    `ransac.min_inliers` inliers) `T_keyframe_vehicle` and `covariance` are None and `num_inliers` is 0."""

    num_matches: int
    num_inliers: int
    T_keyframe_vehicle: np.ndarray | None  # the current vehicle frame in the keyframe's vehicle frame
    covariance: np.ndarray | None  # 6x6, ROS order (x, y, z, rx, ry, rz), keyframe vehicle frame, m^2 / rad^2
    localize_ms: float  # matching + RANSAC + refinement


class PerFrameLocalizer:
    """Localizes frames against keyframes, both `StereoFeatures` from `frontend` (the same backend and rig)."""

    def __init__(self, frontend: StereoFrontend, config: LocalizerConfig | None = None) -> None:
        self.frontend = frontend
        self.config = config or LocalizerConfig()
        rig = frontend.rig
        self.estimator = PoseEstimator(
            rig, self.config.ransac, self.config.refine, frontend.backend.keypoint_scale(rig.width)
        )

    @property
    def refines_matches(self) -> bool:
        """Whether a frame to localize needs its `FrameResampler` (match refinement is on)."""
        return self.config.matching.refines

    def frame_features(self, left_rgb: np.ndarray, right_rgb: np.ndarray) -> StereoFeatures:
        """Stereo features of a frame to localize, with what refining its matches needs when that is on."""
        return self.frontend.process(left_rgb, right_rgb, resampler=self.refines_matches)

    def localize(self, current: StereoFeatures, keyframe: StereoFeatures) -> PerFrameResult:
        """Pose of the frame with features `current` relative to `keyframe` (features with their stereo points)."""
        start = time.perf_counter()
        matches = match_keyframe(
            current.subset_valid(), keyframe, self.frontend.backend.descriptor_metric, self.config.matching
        )
        refined = self.estimator.estimate(matches) if len(matches) >= self.config.min_matches else None
        if refined is None:
            return PerFrameResult(len(matches), 0, None, None, 1000 * (time.perf_counter() - start))
        T_keyframe_vehicle = self.estimator.vehicle_pose(refined)
        covariance = fix_covariance(
            refined.covariance,
            T_keyframe_vehicle,
            self.frontend.rig.T_vehicle_camera,
            self.config.covariance,
        )
        return PerFrameResult(
            len(matches), refined.num_inliers, T_keyframe_vehicle, covariance, 1000 * (time.perf_counter() - start)
        )
