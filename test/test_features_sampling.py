"""The one sampling convention: pixel centres at integers, grid_sample(align_corners=True)."""

import torch

from dlvf_ros.features.sampling import (
    dense_descriptors,
    normalize_descriptors,
    normalize_points,
    sample_descriptors,
    sample_map,
    sample_scores,
)
from dlvf_ros.features.unet import FeatureNet

torch.set_num_threads(2)


def test_corners_map_to_grid_extremes():
    grid = normalize_points(torch.tensor([[[0.0, 0.0], [511.0, 383.0], [255.5, 191.5]]]), 384, 512)
    assert torch.allclose(grid, torch.tensor([[[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]]))


def test_integer_points_hit_pixels_and_half_points_average():
    torch.manual_seed(0)
    feature_map = torch.randn(2, 3, 5, 7)
    points = torch.tensor([[[0.0, 0.0], [6.0, 4.0], [3.0, 2.0]], [[2.0, 1.0], [1.5, 1.0], [4.0, 2.5]]])
    values = sample_map(feature_map, points)
    assert values.shape == (2, 3, 3)
    assert torch.allclose(values[0, 0], feature_map[0, :, 0, 0], atol=1e-6)
    assert torch.allclose(values[0, 1], feature_map[0, :, 4, 6], atol=1e-6)
    assert torch.allclose(values[0, 2], feature_map[0, :, 2, 3], atol=1e-6)
    assert torch.allclose(values[1, 0], feature_map[1, :, 1, 2], atol=1e-6)
    assert torch.allclose(values[1, 1], 0.5 * (feature_map[1, :, 1, 1] + feature_map[1, :, 1, 2]), atol=1e-6)
    assert torch.allclose(values[1, 2], 0.5 * (feature_map[1, :, 2, 4] + feature_map[1, :, 3, 4]), atol=1e-6)
    scores = sample_scores(feature_map[:, :1], points)
    assert torch.allclose(scores, values[..., 0])


def test_coarse_level_sampled_with_image_size_matches_its_corners():
    level = torch.randn(1, 4, 4, 6)  # covers a 16 x 24 image
    values = sample_map(level, torch.tensor([[[0.0, 0.0], [23.0, 15.0]]]), image_size=(16, 24))
    assert torch.allclose(values[0, 0], level[0, :, 0, 0], atol=1e-6)
    assert torch.allclose(values[0, 1], level[0, :, -1, -1], atol=1e-6)


def test_normalised_descriptors_are_zncc_ready():
    descriptors = normalize_descriptors(torch.randn(3, 10, 31) * 5 + 2)
    assert torch.allclose(descriptors.mean(-1), torch.zeros(3, 10), atol=1e-5)
    assert torch.allclose((descriptors * descriptors).sum(-1) / 31, torch.ones(3, 10), atol=1e-4)


def test_per_level_sampling_agrees_with_dense_map():
    torch.manual_seed(1)
    net = FeatureNet(m=4).eval()
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        out = net({"image": image})
        maps = out["encoder_maps"]
        dense = dense_descriptors(maps, (64, 96))
        assert dense.shape == (1, 31 * 4, 64, 96)
        # integer pixels: exactly equal
        integer_points = torch.tensor([[[0.0, 0.0], [95.0, 63.0], [17.0, 33.0], [50.0, 9.0]]])
        exact = sample_descriptors(maps, integer_points, (64, 96))
        assert torch.allclose(exact, normalize_descriptors(sample_map(dense, integer_points)), atol=1e-4)
        # the network's sub-pixel keypoints: equal within the documented tolerance
        keypoints = out["keypoints"]
        from_dense = normalize_descriptors(sample_map(dense, keypoints))
        difference = (out["descriptors"] - from_dense).abs()
        assert difference.max() < 1e-3, difference.max()
        zncc = (out["descriptors"] * from_dense).sum(-1) / from_dense.shape[-1]
        assert zncc.min() > 0.9999


def test_non_finite_points_give_nan_rows_and_finite_gradients_elsewhere():
    feature_map = torch.randn(1, 4, 6, 8, requires_grad=True)
    points = torch.tensor([[[1.0, 2.0], [float("nan"), 3.0], [2.5, float("inf")], [7.0, 5.0]]], requires_grad=True)
    values = sample_map(feature_map, points)
    assert torch.isnan(values[0, 1:3]).all() and torch.isfinite(values[0, [0, 3]]).all()
    assert torch.allclose(values[0, 3], feature_map[0, :, 5, 7])
    values[0, [0, 3]].sum().backward()
    assert torch.isfinite(feature_map.grad).all() and torch.isfinite(points.grad[0, [0, 3]]).all()
