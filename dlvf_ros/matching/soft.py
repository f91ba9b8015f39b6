"""Differentiable soft matching of source keypoint descriptors against target descriptors (training).

Descriptors are normalised per point to zero mean and unit std over their C channels, so `dot(a, b) / C` is their
ZNCC in [-1, 1]. Each source descriptor gets a softmax over ZNCC + 1 (temperature `T`, 0.01 in the reference)
against every target candidate; its match is the softmax-weighted mean of the candidates' pixel coordinates
(u, v; integer values at pixel centres). Candidates are either every pixel of a dense target map ("dense") or the
target keypoints ("sparse"). Dense matching runs in chunks of source keypoints under activation checkpointing, so
memory stays at `chunk_size x H x W` similarities however many keypoints there are.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


def zncc(desc_a: torch.Tensor, desc_b: torch.Tensor) -> torch.Tensor:
    """ZNCC of normalised descriptors [..., N, C] x [..., N, C] -> [..., N], in [-1, 1]."""
    if desc_a.shape != desc_b.shape:
        raise ValueError(f"zncc: descriptor shapes differ: {tuple(desc_a.shape)} vs {tuple(desc_b.shape)}")
    return (desc_a * desc_b).sum(dim=-1) / desc_a.shape[-1]


def match_weights(zncc_value: torch.Tensor, score_src: torch.Tensor, score_tgt: torch.Tensor) -> torch.Tensor:
    """Match weight 0.5 (ZNCC + 1) s_src s_tgt, in [0, 1] for scores in [0, 1]; all shapes [..., N]."""
    return 0.5 * (zncc_value + 1.0) * score_src * score_tgt


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(u, v) of every pixel centre, row-major: [H * W, 2]."""
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype), torch.arange(width, device=device, dtype=dtype), indexing="ij"
    )
    return torch.stack([u.reshape(-1), v.reshape(-1)], dim=1)


def _check_temperature(temperature: float) -> None:
    if not temperature > 0.0:
        raise ValueError(f"soft matching: temperature must be > 0, got {temperature}")


def soft_match_sparse(
    desc_src: torch.Tensor, desc_tgt: torch.Tensor, uv_tgt: torch.Tensor, temperature: float = 0.01
) -> torch.Tensor:
    """Soft-match [B, N, C] source descriptors against [B, M, C] target keypoint descriptors at [B, M, 2] pixels.

    Returns the matched target pixels [B, N, 2] (softmax-weighted means of `uv_tgt`).
    """
    _check_temperature(temperature)
    if desc_src.dim() != 3 or desc_tgt.dim() != 3 or desc_src.shape[-1] != desc_tgt.shape[-1]:
        raise ValueError(
            f"soft_match_sparse: expected [B, N, C] and [B, M, C] descriptors, got {tuple(desc_src.shape)} and "
            f"{tuple(desc_tgt.shape)}"
        )
    if uv_tgt.shape != (*desc_tgt.shape[:2], 2):
        raise ValueError(
            f"soft_match_sparse: uv_tgt must be [B, M, 2] = {(*desc_tgt.shape[:2], 2)}, got {tuple(uv_tgt.shape)}"
        )
    similarity = torch.bmm(desc_src, desc_tgt.transpose(1, 2)) / desc_src.shape[-1]  # [B, N, M] ZNCC
    probabilities = torch.softmax((similarity + 1.0) / temperature, dim=2)
    return torch.bmm(probabilities, uv_tgt)


def _dense_chunk(
    desc_src: torch.Tensor, desc_tgt_flat: torch.Tensor, grid_uv: torch.Tensor, temperature: float
) -> torch.Tensor:
    similarity = torch.bmm(desc_src, desc_tgt_flat) / desc_src.shape[-1]  # [B, n, H*W]
    probabilities = torch.softmax((similarity + 1.0) / temperature, dim=2)
    return probabilities @ grid_uv


def soft_match_dense(
    desc_src: torch.Tensor, desc_tgt_dense: torch.Tensor, temperature: float = 0.01, chunk_size: int = 128
) -> torch.Tensor:
    """Soft-match [B, N, C] source descriptors against every pixel of a [B, C, H, W] normalised target map.

    Returns the matched target pixels [B, N, 2]. Peak memory is about B x chunk_size x H x W similarities.
    """
    _check_temperature(temperature)
    if chunk_size < 1:
        raise ValueError(f"soft_match_dense: chunk_size must be >= 1, got {chunk_size}")
    if desc_src.dim() != 3 or desc_tgt_dense.dim() != 4 or desc_src.shape[-1] != desc_tgt_dense.shape[1]:
        raise ValueError(
            f"soft_match_dense: expected [B, N, C] and [B, C, H, W] descriptors, got {tuple(desc_src.shape)} and "
            f"{tuple(desc_tgt_dense.shape)}"
        )
    batch, channels, height, width = desc_tgt_dense.shape
    desc_tgt_flat = desc_tgt_dense.reshape(batch, channels, height * width)
    grid_uv = pixel_grid(height, width, device=desc_src.device, dtype=desc_src.dtype)
    needs_grad = torch.is_grad_enabled() and (desc_src.requires_grad or desc_tgt_dense.requires_grad)
    chunks = []
    for start in range(0, desc_src.shape[1], chunk_size):
        chunk = desc_src[:, start : start + chunk_size]
        if needs_grad:
            chunks.append(checkpoint(_dense_chunk, chunk, desc_tgt_flat, grid_uv, temperature, use_reentrant=False))
        else:
            chunks.append(_dense_chunk(chunk, desc_tgt_flat, grid_uv, temperature))
    return torch.cat(chunks, dim=1)
