"""The training objective: the loss terms of one batch from a `PipelineOutput`, combined as `LossConfig` says.

total = keypoint_weight * keypoint + pose_scale * pose (from `pose_from_epoch` on) + descriptor_weight * descriptor
        + repeatability_weight * repeatability + score_weight * score

Pose and keypoint terms average over the batch elements with enough inliers (`ok`); with `score_failures` (validation)
the pose term averages over every element and a failed element counts with the identity's pose error, so failing
cannot look good. The descriptor, repeatability and score terms average over the elements with visible ground-truth
correspondences. One function serves the trainer and `dlvf bench features`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlvf_ros.training.config import LossConfig
from dlvf_ros.training.losses import (
    descriptor_loss,
    keypoint_loss,
    nearest_match_correct,
    pose_loss,
    repeatability_loss,
    score_loss,
)
from dlvf_ros.training.pipeline import PipelineOutput

TERMS = ("pose", "keypoint", "descriptor", "repeatability", "score")


@dataclass
class LossTerms:
    """Scalar loss terms of one batch (tensors, differentiable) and the per-element pose loss [B]."""

    total: torch.Tensor
    pose: torch.Tensor
    keypoint: torch.Tensor
    descriptor: torch.Tensor
    repeatability: torch.Tensor
    score: torch.Tensor
    n_ok: torch.Tensor  # batch elements with enough inliers
    pose_per_element: torch.Tensor

    def values(self) -> dict[str, float]:
        """The named scalar terms as floats (total first)."""
        return {"total": float(self.total.detach()), **{name: float(getattr(self, name).detach()) for name in TERMS}}


def _mean_over(values: torch.Tensor, elements: torch.Tensor) -> torch.Tensor:
    weights = elements.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def compute_losses(
    output: PipelineOutput, T_gt: torch.Tensor, config: LossConfig, with_pose: bool, score_failures: bool
) -> LossTerms:
    """The loss terms of one batch (see the module docstring); `T_gt` [B, 4, 4] is T_target_source."""
    planar = config.pose == "planar"
    pose = pose_loss(output.T_est, T_gt, config.planar_weights if planar else config.full_weights, planar=planar)
    keypoint = keypoint_loss(output.points_matched, output.points_expected, output.inliers)
    ok = output.ok
    n_ok = ok.to(pose.dtype).sum()
    keypoint_mean = _mean_over(keypoint, ok)
    pose_mean = pose.mean() if score_failures else _mean_over(pose, ok)
    total = config.keypoint_weight * keypoint_mean + (config.pose_scale * pose_mean if with_pose else 0.0)
    has_visible = output.visible.any(dim=1)
    zero = torch.zeros_like(keypoint_mean)
    descriptor_mean = repeatability_mean = score_mean = zero
    if config.descriptor_weight > 0:
        descriptor = descriptor_loss(
            output.descriptors_source,
            output.descriptors_expected,
            output.descriptors_target,
            output.keypoints_target,
            output.uv_expected,
            output.visible,
            config.descriptor_temperature,
            config.descriptor_exclusion_px,
        )
        descriptor_mean = _mean_over(descriptor, has_visible)
        total = total + config.descriptor_weight * descriptor_mean
    if config.repeatability_weight > 0:
        forward = repeatability_loss(
            output.uv_expected, output.keypoints_target, output.visible, config.repeatability_max_px
        )
        backward = repeatability_loss(
            output.uv_reverse, output.keypoints_source, output.visible_reverse, config.repeatability_max_px
        )
        repeatability_mean = 0.5 * (
            _mean_over(forward, has_visible) + _mean_over(backward, output.visible_reverse.any(dim=1))
        )
        total = total + config.repeatability_weight * repeatability_mean
    if config.score_weight > 0:
        with torch.no_grad():
            correct = nearest_match_correct(
                output.descriptors_source,
                output.descriptors_target,
                output.keypoints_target,
                output.uv_expected,
                config.descriptor_exclusion_px,
            )
        score_mean = _mean_over(score_loss(output.scores_source, correct, output.visible), has_visible)
        total = total + config.score_weight * score_mean
    return LossTerms(
        total=total,
        pose=pose_mean,
        keypoint=keypoint_mean,
        descriptor=descriptor_mean,
        repeatability=repeatability_mean,
        score=score_mean,
        n_ok=n_ok,
        pose_per_element=pose,
    )
