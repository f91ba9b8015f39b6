"""Weighted SVD: exact recovery, noise, down-weighted outliers, reflections, degenerate inputs, gradients."""

import numpy as np
import pytest
import torch

from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.svd import DegenerateAlignmentError, effective_point_count, weighted_svd

torch.set_num_threads(2)


def random_transforms(batch, rng):
    return np.stack(
        [
            transforms.make_transform(transforms.so3_exp(rng.normal(size=3)), rng.normal(scale=3.0, size=3))
            for _ in range(batch)
        ]
    )


def apply(T, points):
    return points @ T[:, :3, :3].transpose(0, 2, 1) + T[:, None, :3, 3]


def test_recovers_known_transforms_exactly_and_with_noise():
    rng = np.random.default_rng(0)
    T_tgt_src = random_transforms(4, rng)
    src = rng.uniform(-10, 10, size=(4, 50, 3))
    tgt = apply(T_tgt_src, src)
    T = weighted_svd(torch.tensor(src), torch.tensor(tgt), torch.ones(4, 50, dtype=torch.float64)).numpy()
    assert np.allclose(T, T_tgt_src, atol=1e-9)
    noisy = tgt + rng.normal(scale=0.02, size=tgt.shape)
    T = weighted_svd(torch.tensor(src), torch.tensor(noisy), torch.ones(4, 50, dtype=torch.float64)).numpy()
    for k in range(4):
        error = transforms.invert(T_tgt_src[k]) @ T[k]
        assert transforms.rotation_angle(error[:3, :3]) < np.deg2rad(0.2)
        assert np.linalg.norm(error[:3, 3]) < 0.05
        assert transforms.is_rigid(T[k])


def test_down_weighted_outliers_do_not_bias_the_estimate():
    rng = np.random.default_rng(1)
    T_tgt_src = random_transforms(1, rng)
    src = rng.uniform(-10, 10, size=(1, 60, 3))
    tgt = apply(T_tgt_src, src)
    tgt[0, :20] += rng.uniform(-20, 20, size=(20, 3))  # a third of the matches are gross outliers
    weights = torch.ones(1, 60, dtype=torch.float64)
    biased = weighted_svd(torch.tensor(src), torch.tensor(tgt), weights).numpy()
    assert np.linalg.norm(biased[0, :3, 3] - T_tgt_src[0, :3, 3]) > 0.5
    weights[0, :20] = 0.0
    T = weighted_svd(torch.tensor(src), torch.tensor(tgt), weights).numpy()
    assert np.allclose(T, T_tgt_src, atol=1e-9)


def test_determinant_fix_gives_a_rotation_for_mirrored_points():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(1, 30, 3))
    tgt = src * np.array([1.0, 1.0, -1.0])  # a reflection: best proper rotation, never det -1
    T = weighted_svd(torch.tensor(src), torch.tensor(tgt), torch.ones(1, 30, dtype=torch.float64)).numpy()
    assert np.isclose(np.linalg.det(T[0, :3, :3]), 1.0)


def test_too_few_effective_points_raise_or_are_flagged():
    src = torch.randn(2, 10, 3)
    weights = torch.ones(2, 10)
    weights[1, 2:] = 0.0  # element 1 has two usable points
    with pytest.raises(DegenerateAlignmentError, match=r"\[1\]"):
        weighted_svd(src, src + 1.0, weights)
    T = weighted_svd(src, src + 1.0, weights, raise_on_degenerate=False)
    assert torch.equal(effective_point_count(weights) >= 3, torch.tensor([True, False]))
    assert torch.allclose(T[1], torch.eye(4))
    assert torch.allclose(T[0, :3, 3], torch.ones(3), atol=1e-5)


def test_bad_shapes_and_negative_weights_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        weighted_svd(torch.zeros(1, 5, 3), torch.zeros(1, 6, 3), torch.ones(1, 5))
    with pytest.raises(ValueError, match="weights must be"):
        weighted_svd(torch.zeros(1, 5, 3), torch.zeros(1, 5, 3), torch.ones(5))
    with pytest.raises(ValueError, match="non-negative"):
        weighted_svd(torch.zeros(1, 5, 3), torch.zeros(1, 5, 3), -torch.ones(1, 5))


def test_gradients_flow_to_points_and_weights():
    torch.manual_seed(0)
    src = torch.randn(2, 20, 3, dtype=torch.float64, requires_grad=True)
    tgt = (src.detach() + torch.randn(2, 20, 3, dtype=torch.float64) * 0.1).requires_grad_(True)
    weights = torch.rand(2, 20, dtype=torch.float64, requires_grad=True)
    T = weighted_svd(src, tgt, weights)
    (T[:, :3, 3].sum() + T[:, 0, 1].sum()).backward()
    for tensor in (src, tgt, weights):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(
        lambda s, t, w: weighted_svd(s, t, w),
        (
            src[:1, :8].detach().requires_grad_(),
            tgt[:1, :8].detach().requires_grad_(),
            weights[:1, :8].detach().requires_grad_(),
        ),
    )
