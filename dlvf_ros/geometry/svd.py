"""Weighted SVD (Kabsch / Procrustes) rigid alignment, batched and differentiable (torch).

Finds T_tgt_src minimising sum_i w_i |R p_src_i + t - p_tgt_i|^2: weighted centroids, weighted cross-covariance
W = sum_i w_i (p_tgt_i - c_tgt)(p_src_i - c_src)^T = U S V^T, R = U diag(1, 1, det(U V^T)) V^T (the determinant fix
keeps R a rotation, never a reflection), t = c_tgt - R c_src. Points in metres, any common frame per side.
"""

from __future__ import annotations

import torch


class DegenerateAlignmentError(ValueError):
    """Too few points with positive weight to define a rigid transform."""


def effective_point_count(weights: torch.Tensor, weight_eps: float = 1e-8) -> torch.Tensor:
    """[B] number of points with weight above `weight_eps` in weights [B, N]."""
    return (weights > weight_eps).sum(dim=-1)


def weighted_svd(
    points_src: torch.Tensor,
    points_tgt: torch.Tensor,
    weights: torch.Tensor,
    min_points: int = 3,
    weight_eps: float = 1e-8,
    raise_on_degenerate: bool = True,
) -> torch.Tensor:
    """points_src [B, N, 3], points_tgt [B, N, 3], weights [B, N] >= 0 -> T_tgt_src [B, 4, 4] (p_tgt = T p_src).

    A batch element with fewer than `min_points` weights above `weight_eps` raises DegenerateAlignmentError (naming
    the elements); with `raise_on_degenerate=False` those elements get the identity instead and the caller masks
    them with `effective_point_count(weights) >= min_points`. Zero weights simply drop points.
    """
    if points_src.dim() != 3 or points_src.shape[-1] != 3 or points_src.shape != points_tgt.shape:
        raise ValueError(
            f"weighted_svd: expected points_src and points_tgt [B, N, 3] of the same shape, got "
            f"{tuple(points_src.shape)} and {tuple(points_tgt.shape)}"
        )
    if weights.shape != points_src.shape[:2]:
        raise ValueError(
            f"weighted_svd: weights must be [B, N] = {tuple(points_src.shape[:2])}, got {tuple(weights.shape)}"
        )
    if bool((weights < 0).any()) or not bool(torch.isfinite(weights).all()):
        raise ValueError("weighted_svd: weights must be finite and non-negative")
    enough = effective_point_count(weights, weight_eps) >= min_points
    if raise_on_degenerate and not bool(enough.all()):
        bad = torch.nonzero(~enough).flatten().tolist()
        raise DegenerateAlignmentError(
            f"weighted_svd: batch element(s) {bad} have fewer than {min_points} points with weight > {weight_eps}; "
            "mask them out (effective_point_count) or pass raise_on_degenerate=False"
        )
    # keep degenerate elements numerically harmless: uniform weights on their points, identity substituted below
    safe_weights = torch.where(enough.unsqueeze(-1), weights, torch.ones_like(weights))
    w = safe_weights / safe_weights.sum(dim=-1, keepdim=True).clamp_min(1e-30)
    centroid_src = (w.unsqueeze(-1) * points_src).sum(dim=1, keepdim=True)  # [B, 1, 3]
    centroid_tgt = (w.unsqueeze(-1) * points_tgt).sum(dim=1, keepdim=True)
    centred_src = points_src - centroid_src
    centred_tgt = points_tgt - centroid_tgt
    covariance = (w.unsqueeze(-1) * centred_tgt).transpose(1, 2) @ centred_src  # [B, 3, 3] = sum w p_tgt p_src^T
    U, _, Vh = torch.linalg.svd(covariance)
    det = torch.det(U @ Vh)
    ones = torch.ones_like(det)
    D = torch.diag_embed(torch.stack([ones, ones, torch.sign(det) + (det == 0).to(det.dtype)], dim=-1))
    R = U @ D @ Vh
    t = centroid_tgt.transpose(1, 2) - R @ centroid_src.transpose(1, 2)  # [B, 3, 1]
    batch = points_src.shape[0]
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=R.dtype, device=R.device).expand(batch, 1, 4)
    T = torch.cat([torch.cat([R, t], dim=2), bottom], dim=1)
    identity = torch.eye(4, dtype=T.dtype, device=T.device).expand_as(T)
    return torch.where(enough.view(-1, 1, 1), T, identity)
