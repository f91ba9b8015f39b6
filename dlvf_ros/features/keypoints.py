"""Keypoints by spatial soft-argmax: one sub-pixel keypoint per cell of the keypoint-logit map.

The logit map [B, 1, H, W] is cut into `cell` x `cell` cells (row-major cell order: cell row, then cell column). In
each cell a softmax (temperature `temperature`) over its cell*cell logits weights the pixel-centre coordinates of
the cell; the weighted mean is the keypoint (u, v) in pixels, integer values at pixel centres. N = (H/cell)(W/cell).
"""

from __future__ import annotations

import torch


def check_image_size(height: int, width: int, cell: int, what: str = "image") -> None:
    """Raise ValueError unless `height` and `width` are positive multiples of `cell`."""
    if height <= 0 or width <= 0 or height % cell != 0 or width % cell != 0:
        raise ValueError(
            f"{what}: height and width must be positive multiples of {cell}, got {height}x{width}; "
            f"resize or crop to e.g. {max(cell, height // cell * cell)}x{max(cell, width // cell * cell)}"
        )


def cell_pixel_offsets(cell: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[cell*cell, 2] (u, v) offsets of the pixels of one cell from its top-left pixel centre, row-major."""
    v, u = torch.meshgrid(
        torch.arange(cell, dtype=dtype, device=device), torch.arange(cell, dtype=dtype, device=device), indexing="ij"
    )
    return torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1)


def cell_origins(height: int, width: int, cell: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[N, 2] (u, v) of the top-left pixel centre of each cell, row-major cell order."""
    v, u = torch.meshgrid(
        torch.arange(0, height, cell, dtype=dtype, device=device),
        torch.arange(0, width, cell, dtype=dtype, device=device),
        indexing="ij",
    )
    return torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1)


def soft_argmax_keypoints(logits: torch.Tensor, cell: int = 16, temperature: float = 1.0) -> torch.Tensor:
    """Keypoint logits [B, 1, H, W] -> keypoints [B, N, 2] (u, v px), one per cell; differentiable."""
    if logits.dim() != 4 or logits.shape[1] != 1:
        raise ValueError(f"soft_argmax_keypoints: expected logits [B,1,H,W], got {list(logits.shape)}")
    batch, height, width = int(logits.shape[0]), int(logits.shape[2]), int(logits.shape[3])
    check_image_size(height, width, cell, "soft_argmax_keypoints logits")
    rows, cols = height // cell, width // cell
    cells = (
        logits.reshape(batch, rows, cell, cols, cell).permute(0, 1, 3, 2, 4).reshape(batch, rows * cols, cell * cell)
    )
    weights = torch.softmax(cells / temperature, dim=-1)  # [B, N, cell*cell]
    offsets = weights @ cell_pixel_offsets(cell, logits.dtype, logits.device)  # [B, N, 2]
    return offsets + cell_origins(height, width, cell, logits.dtype, logits.device).unsqueeze(0)
