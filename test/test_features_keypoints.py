"""Soft-argmax keypoints: sub-pixel peaks, cell order, input validation."""

import pytest
import torch

from dlvf_ros.features.keypoints import soft_argmax_keypoints

torch.set_num_threads(2)


def gaussian_logits(height, width, peaks_uv, sigma=1.0, amplitude=1.0):
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    logits = torch.full((height, width), -1e3, dtype=torch.float64)
    for pu, pv in peaks_uv:
        logits = torch.maximum(logits, -((u - pu) ** 2 + (v - pv) ** 2) / (2 * sigma**2) * amplitude)
    return logits[None, None]


def test_subpixel_peak_lands_on_peak():
    # one Gaussian log-bump per cell, well inside its cell, at fractional positions
    peaks = [(5.3, 7.6), (16 + 9.75, 4.2), (3.5, 16 + 11.1), (16 + 8.0, 16 + 8.5)]
    logits = gaussian_logits(32, 32, peaks, sigma=1.0)
    keypoints = soft_argmax_keypoints(logits, cell=16)
    assert keypoints.shape == (1, 4, 2)
    # row-major cell order: (row 0, col 0), (row 0, col 1), (row 1, col 0), (row 1, col 1)
    expected = torch.tensor([peaks[0], peaks[1], peaks[2], peaks[3]], dtype=torch.float64)
    assert torch.allclose(keypoints[0], expected, atol=1e-3)


def test_sharp_peak_gives_its_pixel_centre_and_flat_cell_gives_cell_centre():
    logits = torch.zeros(1, 1, 16, 32)
    logits[0, 0, 3, 16 + 12] = 100.0  # pixel centre (u=28, v=3) in the second cell
    keypoints = soft_argmax_keypoints(logits, cell=16)
    assert torch.allclose(keypoints[0, 1], torch.tensor([28.0, 3.0]), atol=1e-4)
    assert torch.allclose(keypoints[0, 0], torch.tensor([7.5, 7.5]), atol=1e-5)  # uniform softmax: cell centre


def test_temperature_sharpens_towards_argmax():
    logits = torch.zeros(1, 1, 16, 16)
    logits[0, 0, 2, 2] = 1.0
    soft = soft_argmax_keypoints(logits, cell=16, temperature=1.0)
    sharp = soft_argmax_keypoints(logits, cell=16, temperature=0.01)
    assert torch.allclose(sharp[0, 0], torch.tensor([2.0, 2.0]), atol=1e-3)
    assert (soft[0, 0] - torch.tensor([2.0, 2.0])).norm() > 4.0


def test_gradient_flows_to_logits():
    logits = torch.randn(2, 1, 32, 48, requires_grad=True)
    soft_argmax_keypoints(logits).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("shape", [(1, 1, 30, 32), (1, 1, 32, 40), (1, 2, 32, 32), (32, 32)])
def test_bad_shapes_are_refused(shape):
    with pytest.raises(ValueError, match="soft_argmax_keypoints"):
        soft_argmax_keypoints(torch.zeros(shape))
