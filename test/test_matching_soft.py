"""Soft matching: recovers a known shift, dense == sparse on the same candidates, chunking changes nothing."""

import pytest
import torch

from dlvf_ros.matching import soft

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # test/conftest.py


def normalised(x: torch.Tensor, dim: int) -> torch.Tensor:
    return (x - x.mean(dim=dim, keepdim=True)) / x.std(dim=dim, unbiased=False, keepdim=True)


def shifted_problem(shift_uv=(5, -3), channels=32, height=24, width=32, count=40, seed=0):
    generator = torch.Generator().manual_seed(seed)
    dense_tgt = normalised(torch.randn(1, channels, height, width, generator=generator), dim=1)
    # source keypoints whose true match lies inside the target image
    u = torch.randint(0, width - abs(shift_uv[0]), (count,), generator=generator) + max(0, -shift_uv[0])
    v = torch.randint(0, height - abs(shift_uv[1]), (count,), generator=generator) + max(0, -shift_uv[1])
    uv_tgt_true = torch.stack([u + shift_uv[0], v + shift_uv[1]], dim=1).float()
    desc_src = dense_tgt[0, :, uv_tgt_true[:, 1].long(), uv_tgt_true[:, 0].long()].T.unsqueeze(0)
    return desc_src, dense_tgt, uv_tgt_true


def test_dense_soft_match_finds_known_shift():
    desc_src, dense_tgt, uv_tgt_true = shifted_problem()
    uv = soft.soft_match_dense(desc_src, dense_tgt, temperature=0.01, chunk_size=7)
    assert uv.shape == (1, 40, 2)
    torch.testing.assert_close(uv[0], uv_tgt_true, atol=1e-3, rtol=0)
    # a far higher temperature blurs the match towards the image centre: the test can fail
    blurred = soft.soft_match_dense(desc_src, dense_tgt, temperature=10.0)
    assert (blurred[0] - uv_tgt_true).abs().max() > 3.0


def test_sparse_soft_match_and_chunking_agree_with_dense():
    desc_src, dense_tgt, uv_tgt_true = shifted_problem(shift_uv=(-4, 2), seed=1)
    grid = soft.pixel_grid(24, 32)
    desc_tgt = dense_tgt.flatten(2).transpose(1, 2)  # every pixel as a "keypoint"
    sparse = soft.soft_match_sparse(desc_src, desc_tgt, grid.unsqueeze(0), temperature=0.05)
    dense = soft.soft_match_dense(desc_src, dense_tgt, temperature=0.05, chunk_size=1000)
    dense_chunked = soft.soft_match_dense(desc_src, dense_tgt, temperature=0.05, chunk_size=3)
    torch.testing.assert_close(sparse, dense, atol=1e-4, rtol=0)
    torch.testing.assert_close(dense_chunked, dense, atol=1e-5, rtol=0)


def test_dense_gradients_flow_through_checkpointed_chunks():
    desc_src, dense_tgt, _ = shifted_problem(seed=2)
    desc_src = (desc_src + 0.3 * torch.randn_like(desc_src)).requires_grad_(True)
    dense_tgt = dense_tgt.clone().requires_grad_(True)
    soft.soft_match_dense(desc_src, dense_tgt, temperature=0.1, chunk_size=8).sum().backward()
    reference_src = desc_src.detach().clone().requires_grad_(True)
    reference_tgt = dense_tgt.detach().clone().requires_grad_(True)
    soft.soft_match_dense(reference_src, reference_tgt, temperature=0.1, chunk_size=1000).sum().backward()
    for grad, reference in ((desc_src.grad, reference_src.grad), (dense_tgt.grad, reference_tgt.grad)):
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
        torch.testing.assert_close(grad, reference, atol=1e-5, rtol=1e-4)


def test_weights_and_bad_input():
    a = normalised(torch.randn(2, 5, 16), dim=2)
    torch.testing.assert_close(soft.zncc(a, a), torch.ones(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(soft.zncc(a, -a), -torch.ones(2, 5), atol=1e-5, rtol=0)
    weights = soft.match_weights(soft.zncc(a, a), torch.full((2, 5), 0.5), torch.full((2, 5), 0.8))
    torch.testing.assert_close(weights, torch.full((2, 5), 0.4), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="temperature"):
        soft.soft_match_sparse(a, a, torch.zeros(2, 5, 2), temperature=0.0)
    with pytest.raises(ValueError, match="uv_tgt"):
        soft.soft_match_sparse(a, a, torch.zeros(2, 4, 2))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        soft.soft_match_dense(a, a)
