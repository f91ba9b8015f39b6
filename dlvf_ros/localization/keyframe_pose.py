"""Pose of a stereo frame relative to teach keyframes: descriptor matching, RANSAC, stereo reprojection refinement.

The steps that the tracking `Localizer` (against a local submap of keyframes) and the per-frame mode (`per_frame.py`,
against one keyframe) share, so that both measure the same thing:
1. `match_keyframe`: mutual nearest neighbours between the frame's and a keyframe's descriptors (features with a
   stereo point only); each match is weighted by descriptor quality x both keypoint scores. When the frame has a
   `FrameResampler`, each match's current point is refined (`dlvf_ros.matching.refinement`) and re-triangulated.
2. `PoseEstimator.estimate`: RANSAC on the matched 3-D points (minimal samples, weighted-SVD refits) for a
   start, then Gauss-Newton on the stereo reprojection error (`refine.py`), its pixel gates scaled to the backend's
   keypoint pixels -> T_cur_keyframe (left optical frames) with the covariance of the fit.
3. `PoseEstimator.vehicle_pose`: T_keyframe_vehicle (vehicle frames) of that result.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.geometry.ransac import RansacConfig, ransac_rigid
from dlvf_ros.localization.frontend import StereoFeatures
from dlvf_ros.localization.refine import (
    RefineConfig,
    RefineResult,
    refine_stereo_pose,
    scaled_refine_config,
    stereo_measurements,
)
from dlvf_ros.matching.descriptor_matching import MatchingConfig, match_descriptors
from dlvf_ros.matching.refinement import refine_points


@dataclass
class Correspondences:
    """Matched 3-D points: `src` (N, 3) in the current left optical frame, `tgt` (N, 3) in the reference keyframe's
    left optical frame (m), `weights` (N,) > 0 (descriptor quality x keypoint scores)."""

    src: np.ndarray
    tgt: np.ndarray
    weights: np.ndarray

    def __len__(self) -> int:
        return len(self.weights)

    @classmethod
    def concatenate(cls, parts: list[Correspondences]) -> Correspondences:
        return cls(*(np.concatenate([getattr(p, key) for p in parts]) for key in ("src", "tgt", "weights")))


@dataclass(frozen=True)
class Guidance:
    """Where a predicted pose puts a keyframe's points: T_current_keyframe (left optical frames) on `rig`; a keyframe
    point may only match a current keypoint within `radius_px` (px at the rig's resolution) of its projection."""

    T_current_keyframe: np.ndarray
    rig: StereoRig
    radius_px: float

    def allowed(self, keypoints_px: np.ndarray, keyframe_points: np.ndarray) -> np.ndarray:
        """(N, M) bool: current keypoint i (N, 2) px may match keyframe point j (M, 3) m (keyframe left optical)."""
        points = transforms.transform_points(self.T_current_keyframe, keyframe_points)
        in_front = points[:, 2] > 0.1
        projected, _ = self.rig.project(np.where(in_front[:, None], points, 1.0))
        distance2 = np.sum((keypoints_px[:, None, :] - projected[None, :, :]) ** 2, axis=2)
        return (distance2 <= self.radius_px**2) & in_front[None, :]


def match_keyframe(
    current: StereoFeatures,
    keyframe: StereoFeatures,
    metric: str,
    config: MatchingConfig,
    guidance: Guidance | None = None,
) -> Correspondences:
    """Mutual nearest-neighbour matches of `current` (only features with a stereo point, see
    `StereoFeatures.subset_valid`) against the keyframe's features that have a stereo point; with `guidance`, only
    between keypoints near where a predicted pose projects the keyframe's points."""
    keyframe = keyframe.subset_valid()
    allowed = None if guidance is None else guidance.allowed(current.features.keypoints, keyframe.points_camera)
    matches = match_descriptors(
        current.features.descriptors, keyframe.features.descriptors, metric, config, allowed=allowed
    )
    weights = (
        matches.quality * current.features.scores[matches.index_a] * keyframe.features.scores[matches.index_b]
    ).astype(np.float64)
    current_points = current.points_camera[matches.index_a]
    if current.resampler is not None and config.refines and len(matches):
        refined_uv = refine_points(
            current.resampler.descriptors,
            current.features.keypoints[matches.index_a],
            keyframe.features.descriptors[matches.index_b],
            config.refine_radius,
            config.refine_temperature,
        )
        refined_points, valid = current.resampler.points(refined_uv)
        current_points = np.where(valid[:, None], refined_points, current_points)  # no stereo there: unrefined
    return Correspondences(current_points, keyframe.points_camera[matches.index_b], np.maximum(weights, 1e-6))


class PoseEstimator:
    """RANSAC + stereo reprojection refinement of matched points for one rig (see the module docstring)."""

    def __init__(self, rig: StereoRig, ransac: RansacConfig, refine: RefineConfig, keypoint_scale: float) -> None:
        self.rig = rig
        self.ransac = ransac
        self.refine = scaled_refine_config(refine, keypoint_scale)

    def estimate(self, matches: Correspondences) -> RefineResult | None:
        """Refined T_cur_keyframe (left optical frames) of `matches`; None if RANSAC or the refinement keeps fewer
        than `ransac.min_inliers` inliers."""
        if len(matches) < self.ransac.min_inliers:
            return None
        with _torch_threads(1):  # tiny batched problems: a thread pool costs more than it gives
            ransac = ransac_rigid(matches.src, matches.tgt, matches.weights, self.ransac)
        if not ransac.success:
            return None
        refined = refine_stereo_pose(
            transforms.invert(ransac.T_tgt_src),
            matches.tgt,
            stereo_measurements(self.rig, matches.src),
            matches.weights if self.refine.weight_by_scores else np.ones(len(matches)),
            ransac.inliers,
            self.rig,
            self.refine,
        )
        return refined if refined.num_inliers >= self.ransac.min_inliers else None

    def vehicle_pose(self, refined: RefineResult) -> np.ndarray:
        """T_keyframe_vehicle: the current vehicle frame in the keyframe's vehicle frame."""
        T_vehicle_camera = self.rig.T_vehicle_camera
        return T_vehicle_camera @ transforms.invert(refined.T_cur_keyframe) @ transforms.invert(T_vehicle_camera)


@contextlib.contextmanager
def _torch_threads(count: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
