"""The differentiable pose pipeline: images -> keypoints -> 3-D points -> soft matches -> weighted SVD ->
T_target_source.

Data flow for a batch of (source, target) pairs (`PairDataset` items):
1. both left images go through the one network together;
2. source keypoints get 3-D points from the cached disparity sampled at them (rectified stereo model, valid depth
   0.1 to 400 m, all four bilinear neighbours valid), mapped to the vehicle frame with T_vehicle_camera;
3. each source keypoint is soft-matched against every target pixel ("dense") or the target keypoints ("sparse");
   the matched target point gets its 3-D point the same way;
4. match weight 0.5 (ZNCC + 1) s_source s_target, with descriptor and score sampled at the matched point;
5. ground-truth outlier rejection: planar distance between the matched point and the GT-transformed source point
   under `outlier_threshold_m`;
6. weighted SVD per batch element that has at least `min_inliers` inliers with non-zero weight (checked per
   element); the others are reported in `ok` and get the identity;
7. ground-truth correspondences for the descriptor loss: each GT-transformed source point is projected into the
   target image (`uv_expected`), `visible` where it lands inside the image in front of the camera and the target's
   own stereo depth there agrees (not occluded), with the target descriptor sampled at that pixel; and the same the
   other way (target keypoints into the source image) for the keypoint repeatability loss.
Everything is in metres, vehicle frames; pixels are (u, v) with integer values at pixel centres.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dlvf_ros.features.sampling import (
    dense_descriptors,
    normalize_descriptors,
    sample_descriptors,
    sample_map,
    sample_scores,
)
from dlvf_ros.geometry.camera import MAX_DEPTH_M, MIN_DEPTH_M
from dlvf_ros.geometry.svd import effective_point_count, weighted_svd
from dlvf_ros.matching import soft
from dlvf_ros.training.config import PipelineConfig
from dlvf_ros.training.losses import planar_point_error

_ALL_NEIGHBOURS_VALID = 1.0 - 1e-4  # a bilinear sample of the validity mask this high touched only valid pixels


def transform_points(T_a_b: torch.Tensor, points_b: torch.Tensor) -> torch.Tensor:
    """[B, 4, 4] transforms applied to [B, N, 3] points."""
    return points_b @ T_a_b[:, :3, :3].transpose(1, 2) + T_a_b[:, :3, 3].unsqueeze(1)


def points_at(
    uv: torch.Tensor,
    disparity: torch.Tensor,
    valid: torch.Tensor,
    intrinsics: torch.Tensor,
    T_vehicle_camera: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Vehicle-frame 3-D points [B, N, 3] and validity [B, N] at pixels uv [B, N, 2].

    disparity / valid [B, 1, H, W] (px; 1 where SGBM matched); intrinsics [B, 4] = (f, cu, cv, baseline).
    The camera model is `StereoRig.points_from_disparity`: x = b (u - cu) / d, y = b (v - cv) / d, z = f b / d,
    differentiable in uv and d. Invalid points are zeros.
    """
    d = sample_map(disparity, uv)[..., 0]
    all_valid = sample_map(valid, uv)[..., 0] >= _ALL_NEIGHBOURS_VALID
    f, cu, cv, baseline = (intrinsics[:, i : i + 1] for i in range(4))
    safe_d = torch.where(all_valid & (d > 0), d, torch.ones_like(d))
    z = f * baseline / safe_d
    ok = all_valid & (d > 0) & (z >= MIN_DEPTH_M) & (z <= MAX_DEPTH_M)
    points_camera = torch.stack(
        [baseline * (uv[..., 0] - cu) / safe_d, baseline * (uv[..., 1] - cv) / safe_d, z], dim=-1
    )
    points_camera = torch.where(ok.unsqueeze(-1), points_camera, torch.zeros_like(points_camera))
    return transform_points(T_vehicle_camera, points_camera), ok


def invert_transforms(T_a_b: torch.Tensor) -> torch.Tensor:
    """Inverses [B, 4, 4] of rigid transforms [B, 4, 4]."""
    R_t = T_a_b[:, :3, :3].transpose(1, 2)
    T_b_a = torch.zeros_like(T_a_b)
    T_b_a[:, :3, :3] = R_t
    T_b_a[:, :3, 3] = -(R_t @ T_a_b[:, :3, 3:4]).squeeze(2)
    T_b_a[:, 3, 3] = 1.0
    return T_b_a


def project_points(
    points_vehicle: torch.Tensor,
    valid: torch.Tensor,
    disparity: torch.Tensor,
    disparity_valid: torch.Tensor,
    intrinsics: torch.Tensor,
    T_vehicle_camera: torch.Tensor,
    disparity_tolerance: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels [B, N, 2] of vehicle-frame points [B, N, 3] in the (left) camera of a disparity map, and visibility
    [B, N].

    Visible: `valid`, in front of the camera (depth >= MIN_DEPTH_M), inside the image, and not occluded: the map's
    disparity there (all bilinear neighbours valid) is within 0.5 px + `disparity_tolerance` (relative) of the
    point's own disparity f b / z. Pixels of invisible points are zeros. No gradient flows (geometry only).
    """
    with torch.no_grad():
        height, width = int(disparity.shape[2]), int(disparity.shape[3])
        points_camera = transform_points(invert_transforms(T_vehicle_camera), points_vehicle)
        f, cu, cv, baseline = (intrinsics[:, i : i + 1] for i in range(4))
        z = points_camera[..., 2]
        in_front = valid & (z >= MIN_DEPTH_M)
        safe_z = torch.where(in_front, z, torch.ones_like(z))
        uv = torch.stack([f * points_camera[..., 0] / safe_z + cu, f * points_camera[..., 1] / safe_z + cv], dim=-1)
        inside = (
            in_front & (uv[..., 0] >= 0) & (uv[..., 0] <= width - 1) & (uv[..., 1] >= 0) & (uv[..., 1] <= height - 1)
        )
        uv = torch.where(inside.unsqueeze(-1), uv, torch.zeros_like(uv))
        expected_disparity = f * baseline / safe_z
        measured = sample_map(disparity, uv)[..., 0]
        measured_ok = sample_map(disparity_valid, uv)[..., 0] >= _ALL_NEIGHBOURS_VALID
        agrees = (measured - expected_disparity).abs() <= 0.5 + disparity_tolerance * expected_disparity
        visible = inside & measured_ok & agrees
        return torch.where(visible.unsqueeze(-1), uv, torch.zeros_like(uv)), visible


@dataclass
class PipelineOutput:
    """What one pass of `PosePipeline` gives the losses and metrics (B pairs, N source / M target keypoints).

    Pose: T_est [B, 4, 4] (target <- source; identity where not ok), ok [B] (enough inliers), num_inliers [B].
    Soft matches per source keypoint: points_source / points_matched / points_expected (GT-transformed source point)
    [B, N, 3] in the target vehicle frame, inliers [B, N], weights [B, N], uv_matched [B, N, 2].
    Features: keypoints_source [B, N, 2], scores_source [B, N], descriptors_source [B, N, C]; keypoints_target
    [B, M, 2], descriptors_target [B, M, C].
    Ground-truth correspondences: uv_expected [B, N, 2] (source keypoints projected into the target image), visible
    [B, N] (not occluded there), descriptors_expected [B, N, C] (the target's descriptors at uv_expected); and the
    reverse, uv_reverse [B, M, 2] / visible_reverse [B, M] (target keypoints projected into the source image).
    anchor: a zero that depends on every network output (keeps DDP's gradient sync complete when no element is
    usable). Pixels are network-input pixels (integer values at pixel centres).
    """

    T_est: torch.Tensor
    ok: torch.Tensor
    num_inliers: torch.Tensor
    points_source: torch.Tensor
    points_matched: torch.Tensor
    points_expected: torch.Tensor
    inliers: torch.Tensor
    weights: torch.Tensor
    uv_matched: torch.Tensor
    keypoints_source: torch.Tensor
    scores_source: torch.Tensor
    descriptors_source: torch.Tensor
    keypoints_target: torch.Tensor
    descriptors_target: torch.Tensor
    uv_expected: torch.Tensor
    visible: torch.Tensor
    descriptors_expected: torch.Tensor
    uv_reverse: torch.Tensor
    visible_reverse: torch.Tensor
    anchor: torch.Tensor


class PosePipeline(nn.Module):
    """Wraps the feature network (a FeatureNet, or DDP around one) with the differentiable pose estimator."""

    def __init__(self, network: nn.Module, config: PipelineConfig) -> None:
        super().__init__()
        self.network = network
        self.config = config

    def forward(self, batch: dict) -> PipelineOutput:
        """One pass over a batch of `PairDataset` items (see the module docstring for the data flow)."""
        image_source, image_target = batch["image_source"], batch["image_target"]
        batch_size = image_source.shape[0]
        height, width = int(image_source.shape[2]), int(image_source.shape[3])
        out = self.network({"image": torch.cat([image_source, image_target], dim=0)})
        src = {key: out[key][:batch_size] for key in ("keypoints", "keypoint_scores", "descriptors")}
        keypoints_target, descriptors_target = out["keypoints"][batch_size:], out["descriptors"][batch_size:]
        encoder_target = [level[batch_size:] for level in out["encoder_maps"]]
        score_map_target = out["score_map"][batch_size:]
        matching = self.config.matching
        if matching.mode == "dense":
            descriptor_map = normalize_descriptors(dense_descriptors(encoder_target, (height, width)), dim=1)
            uv_matched = soft.soft_match_dense(
                src["descriptors"], descriptor_map, matching.temperature, matching.chunk_size
            )
        else:
            uv_matched = soft.soft_match_sparse(
                src["descriptors"], descriptors_target, keypoints_target, matching.temperature
            )
        descriptors_matched = sample_descriptors(encoder_target, uv_matched, (height, width))
        weights = soft.match_weights(
            soft.zncc(src["descriptors"], descriptors_matched),
            src["keypoint_scores"],
            sample_scores(score_map_target, uv_matched),
        )
        intrinsics, T_vehicle_camera = batch["intrinsics"], batch["T_vehicle_camera"]
        points_source, valid_source = points_at(
            src["keypoints"], batch["disparity_source"], batch["valid_source"], intrinsics, T_vehicle_camera
        )
        points_matched, valid_matched = points_at(
            uv_matched, batch["disparity_target"], batch["valid_target"], intrinsics, T_vehicle_camera
        )
        T_gt = batch["T_target_source"]
        points_expected = transform_points(T_gt, points_source)
        with torch.no_grad():
            inliers = (
                valid_source
                & valid_matched
                & (planar_point_error(points_matched, points_expected) < self.config.outlier_threshold_m)
            )
        num_inliers = inliers.sum(dim=1)
        svd_weights = weights * inliers.to(weights.dtype)
        ok = (num_inliers >= self.config.min_inliers) & (
            effective_point_count(svd_weights.detach()) >= self.config.min_inliers
        )
        T_est = torch.eye(4, dtype=T_gt.dtype, device=T_gt.device).repeat(batch_size, 1, 1)
        if bool(ok.any()):
            index = torch.nonzero(ok).flatten()
            T_ok = weighted_svd(
                points_source[index],
                points_matched[index],
                svd_weights[index],
                min_points=3,
                raise_on_degenerate=False,
            )
            T_est = T_est.index_copy(0, index, T_ok)
        uv_expected, visible = project_points(
            points_expected,
            valid_source,
            batch["disparity_target"],
            batch["valid_target"],
            intrinsics,
            T_vehicle_camera,
        )
        with torch.no_grad():
            points_target, valid_target = points_at(
                keypoints_target, batch["disparity_target"], batch["valid_target"], intrinsics, T_vehicle_camera
            )
            uv_reverse, visible_reverse = project_points(
                transform_points(invert_transforms(T_gt), points_target),
                valid_target,
                batch["disparity_source"],
                batch["valid_source"],
                intrinsics,
                T_vehicle_camera,
            )
        descriptors_expected = sample_descriptors(encoder_target, uv_expected, (height, width))
        anchor = sum(value.sum() for value in (out["keypoint_logits"], out["score_map"], *out["encoder_maps"])) * 0.0
        return PipelineOutput(
            T_est=T_est,
            ok=ok,
            num_inliers=num_inliers,
            points_source=points_source,
            points_matched=points_matched,
            points_expected=points_expected,
            inliers=inliers,
            weights=weights,
            uv_matched=uv_matched,
            keypoints_source=src["keypoints"],
            scores_source=src["keypoint_scores"],
            descriptors_source=src["descriptors"],
            keypoints_target=keypoints_target,
            descriptors_target=descriptors_target,
            uv_expected=uv_expected,
            visible=visible,
            descriptors_expected=descriptors_expected,
            uv_reverse=uv_reverse,
            visible_reverse=visible_reverse,
            anchor=anchor,
        )
