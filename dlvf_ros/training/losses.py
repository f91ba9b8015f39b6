"""Training losses: planar / 6-DOF pose loss, the planar keypoint loss, and the correspondence descriptor loss.

The pose error of an estimate `T_est` (target <- source, vehicle frames) against the truth `T_gt` is
`xi = log(T_est T_gt^-1)` = (rho_x, rho_y, rho_z, phi_x, phi_y, phi_z) in metres and radians, the same ordering as
`dlvf_ros.geometry.transforms.se3_log`. The planar loss uses x, y and heading (phi_z) with weights 1, 50, 10.
"""

from __future__ import annotations

import torch

PLANAR_COMPONENTS = (0, 1, 5)  # rho_x, rho_y, phi_z (heading)
_SMALL_ANGLE_RAD = 1e-4
_SERIES_ANGLE_RAD = 1e-2  # se3_log's V^-1 coefficient: series below this (error < 1e-12)


def _hat(phi: torch.Tensor) -> torch.Tensor:
    """Skew matrices [B, 3, 3] of [B, 3] vectors."""
    zero = torch.zeros_like(phi[:, 0])
    return torch.stack(
        [
            torch.stack([zero, -phi[:, 2], phi[:, 1]], dim=1),
            torch.stack([phi[:, 2], zero, -phi[:, 0]], dim=1),
            torch.stack([-phi[:, 1], phi[:, 0], zero], dim=1),
        ],
        dim=1,
    )


def so3_log(R: torch.Tensor) -> torch.Tensor:
    """Axis-angle vectors [B, 3] (rad) of rotations [B, 3, 3]; differentiable, finite gradient at the identity.

    The axis comes from the skew part of R, so it is ill-determined within ~1e-6 rad of a half turn.
    """
    sin_axis = 0.5 * torch.stack([R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]], dim=1)
    cos_angle = 0.5 * (R[:, 0, 0] + R[:, 1, 1] + R[:, 2, 2] - 1.0)
    sin_angle = torch.sqrt((sin_axis * sin_axis).sum(dim=1) + 1e-20)
    angle = torch.atan2(sin_angle, cos_angle)
    small = angle < _SMALL_ANGLE_RAD
    safe_sin = torch.where(small, torch.ones_like(sin_angle), sin_angle)
    scale = torch.where(small, 1.0 + angle * angle / 6.0, angle / safe_sin)
    return scale.unsqueeze(1) * sin_axis


def se3_log(T: torch.Tensor) -> torch.Tensor:
    """6-vectors [B, 6] (rho, phi) with T = exp(xi^) for transforms [B, 4, 4].

    Computed in float64 (and returned in T's dtype): in float32 the closed form's `1 - cos` cancels for rotations
    up to ~1e-2 rad and gave NaN or wrong translations; the series form is used below 1e-2 rad.
    """
    if T.dim() != 3 or T.shape[1:] != (4, 4):
        raise ValueError(f"se3_log: expected transforms [B, 4, 4], got {tuple(T.shape)}")
    dtype, T = T.dtype, T.double()
    phi = so3_log(T[:, :3, :3])
    angle = torch.linalg.vector_norm(phi, dim=1)
    small = angle < _SERIES_ANGLE_RAD
    safe = torch.where(small, torch.ones_like(angle), angle)
    coefficient = torch.where(
        small,
        1.0 / 12.0 + angle * angle / 720.0,
        (1.0 - safe * torch.sin(safe) / (2.0 * (1.0 - torch.cos(safe)))) / (safe * safe),
    )
    K = _hat(phi)
    eye = torch.eye(3, dtype=T.dtype, device=T.device).expand_as(K)
    V_inv = eye - 0.5 * K + coefficient.view(-1, 1, 1) * (K @ K)
    rho = (V_inv @ T[:, :3, 3:4]).squeeze(2)
    return torch.cat([rho, phi], dim=1).to(dtype)


def pose_error(T_est: torch.Tensor, T_gt: torch.Tensor) -> torch.Tensor:
    """log(T_est T_gt^-1) [B, 6] for [B, 4, 4] estimates and ground truths."""
    if T_est.shape != T_gt.shape:
        raise ValueError(f"pose_error: shapes differ: {tuple(T_est.shape)} vs {tuple(T_gt.shape)}")
    return se3_log(T_est @ torch.linalg.inv(T_gt))


def pose_loss(
    T_est: torch.Tensor, T_gt: torch.Tensor, weights: torch.Tensor | list[float], planar: bool = True
) -> torch.Tensor:
    """Per-element weighted squared pose error [B].

    planar: weights (x, y, heading) on (rho_x, rho_y, phi_z); otherwise 6 weights on (rho, phi).
    """
    xi = pose_error(T_est, T_gt)
    weights = torch.as_tensor(weights, dtype=xi.dtype, device=xi.device)
    expected = 3 if planar else 6
    if weights.shape != (expected,):
        raise ValueError(
            f"pose_loss: expected {expected} weights for a {'planar' if planar else '6-DOF'} loss, "
            f"got {tuple(weights.shape)}"
        )
    components = xi[:, list(PLANAR_COMPONENTS)] if planar else xi
    return (weights * components * components).sum(dim=1)


def planar_point_error(points_a: torch.Tensor, points_b: torch.Tensor) -> torch.Tensor:
    """Planar (x, y) distance [B, N] (m) between [B, N, 3] vehicle-frame points."""
    return torch.linalg.vector_norm(points_a[..., :2] - points_b[..., :2], dim=-1)


def keypoint_loss(points_matched: torch.Tensor, points_expected: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-element mean squared planar error [B] (m^2) of matched target points against GT-transformed source points.

    Both are [B, N, 3] in the target vehicle frame; `mask` [B, N] selects the points that count (valid, inlier).
    Elements with no masked point get 0.
    """
    if points_matched.shape != points_expected.shape or mask.shape != points_matched.shape[:2]:
        raise ValueError(
            f"keypoint_loss: shapes {tuple(points_matched.shape)}, {tuple(points_expected.shape)}, "
            f"mask {tuple(mask.shape)}"
        )
    difference = points_matched[..., :2] - points_expected[..., :2]
    squared = (difference * difference).sum(dim=-1)
    weights = mask.to(squared.dtype)
    return (squared * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def descriptor_loss(
    descriptors_source: torch.Tensor,
    descriptors_expected: torch.Tensor,
    descriptors_target: torch.Tensor,
    keypoints_target: torch.Tensor,
    uv_expected: torch.Tensor,
    mask: torch.Tensor,
    temperature: float,
    exclusion_px: float,
) -> torch.Tensor:
    """Per-element mean InfoNCE [B] of source keypoints against their ground-truth correspondences.

    For each source descriptor [B, N, C] the positive is the target's descriptor at the GT pixel `uv_expected`
    ([B, N, C] / [B, N, 2]); the negatives are the target keypoints' descriptors [B, M, C] at `keypoints_target`
    [B, M, 2] farther than `exclusion_px` from that pixel. Logits are ZNCC / temperature (descriptors normalised to
    zero mean, unit std). `mask` [B, N] selects the counted keypoints (visible correspondences); elements with none
    get 0. Not in the reference method: it gives every keypoint a direct matching signal, which the pose and
    keypoint losses give only through the soft match (see models/README.md).
    """
    if not temperature > 0.0 or exclusion_px < 0.0:
        raise ValueError(
            f"descriptor_loss: temperature must be > 0 and exclusion_px >= 0, got {temperature}, {exclusion_px}"
        )
    channels = descriptors_source.shape[-1]
    mask_3d = mask.unsqueeze(-1)
    positive_descriptors = torch.where(mask_3d, descriptors_expected, torch.zeros_like(descriptors_expected))
    positive = (descriptors_source * positive_descriptors).sum(dim=-1) / channels  # [B, N]
    negative = torch.bmm(descriptors_source, descriptors_target.transpose(1, 2)) / channels  # [B, N, M]
    near = torch.cdist(uv_expected.to(keypoints_target.dtype), keypoints_target) <= exclusion_px
    negative = negative.masked_fill(near, float("-inf"))
    logits = torch.cat([positive.unsqueeze(-1), negative], dim=-1) / temperature
    cross_entropy = -torch.log_softmax(logits, dim=-1)[..., 0]
    weights = mask.to(cross_entropy.dtype)
    cross_entropy = torch.where(mask, cross_entropy, torch.zeros_like(cross_entropy))
    return (cross_entropy * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def repeatability_loss(
    uv_projected: torch.Tensor, keypoints_other: torch.Tensor, mask: torch.Tensor, max_px: float
) -> torch.Tensor:
    """Per-element mean squared distance [B] (px^2) from keypoints projected into another image by the ground truth
    (`uv_projected` [B, N, 2], counted where `mask` [B, N]) to the nearest keypoint of that image (`keypoints_other`
    [B, M, 2]); pairs farther apart than `max_px` are not the same keypoint and are left out. The gradient moves the
    other image's keypoints onto the projections: keypoints that land on the same scene point in both views.
    Not in the reference method (a keypoint-precision term)."""
    if not max_px > 0.0:
        raise ValueError(f"repeatability_loss: max_px must be > 0, got {max_px}")
    difference = uv_projected.unsqueeze(2).to(keypoints_other.dtype) - keypoints_other.unsqueeze(1)
    squared = (difference * difference).sum(dim=-1).min(dim=2).values  # [B, N]; squared: no sqrt at zero distance
    near = mask & (squared.detach() < max_px * max_px)
    squared = torch.where(near, squared, torch.zeros_like(squared))
    return squared.sum(dim=1) / near.sum(dim=1).clamp(min=1).to(squared.dtype)


def nearest_match_correct(
    descriptors_source: torch.Tensor,
    descriptors_target: torch.Tensor,
    keypoints_target: torch.Tensor,
    uv_expected: torch.Tensor,
    radius_px: float,
) -> torch.Tensor:
    """[B, N] bool: the target keypoint of highest ZNCC (the localizer's nearest neighbour) of each source keypoint
    lies within `radius_px` of its true pixel `uv_expected` [B, N, 2]."""
    similarity = torch.bmm(descriptors_source, descriptors_target.transpose(1, 2))
    best = similarity.argmax(dim=2, keepdim=True).expand(-1, -1, 2)
    error = torch.linalg.vector_norm(torch.gather(keypoints_target, 1, best) - uv_expected, dim=-1)
    return error <= radius_px


def score_loss(scores: torch.Tensor, correct: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-element mean binary cross-entropy [B] of keypoint scores [B, N] in (0, 1) against whether the keypoint's
    nearest-neighbour match is correct (`correct` [B, N]), over the keypoints in `mask` (visible in the other view).
    Not in the reference method, which trains the scores through the pose loss only."""
    target = correct.to(scores.dtype)
    entropy = torch.nn.functional.binary_cross_entropy(scores.clamp(1e-6, 1 - 1e-6), target, reduction="none")
    weights = mask.to(scores.dtype)
    return (entropy * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
