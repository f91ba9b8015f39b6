"""Pose and keypoint losses: zero at the truth, growing with the error, se3_log equal to the numpy helper."""

import numpy as np
import pytest
import torch

from dlvf_ros.geometry import transforms as tf
from dlvf_ros.training import losses

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # test/conftest.py


def test_se3_log_matches_numpy_helper():
    rng = np.random.default_rng(0)
    transforms = [tf.make_transform(tf.so3_exp(axis), rng.normal(size=3) * 3) for axis in rng.normal(size=(20, 3))]
    transforms += [tf.from_xyz_rpy(1.0, -2.0, 0.5, yaw=1e-3), np.eye(4), tf.from_xyz_rpy(0, 0, 0, yaw=3.0)]
    xi = losses.se3_log(torch.tensor(np.stack(transforms)))
    expected = np.stack([tf.se3_log(T) for T in transforms])
    np.testing.assert_allclose(xi.numpy(), expected, atol=1e-9)


def test_planar_pose_loss_zero_at_truth_and_grows_with_error():
    T_gt = torch.tensor(tf.from_xyz_rpy(2.0, 0.5, 0.1, yaw=0.3)).unsqueeze(0)
    weights = [1.0, 50.0, 10.0]
    assert losses.pose_loss(T_gt, T_gt, weights).item() == pytest.approx(0.0, abs=1e-12)
    previous = 0.0
    for size in (0.01, 0.1, 0.5, 1.0):
        error = torch.tensor(tf.from_xyz_rpy(size, size, 0.0, yaw=0.2 * size)).unsqueeze(0)
        loss = losses.pose_loss(error @ T_gt, T_gt, weights).item()
        assert loss > previous
        previous = loss
    # the weights act per component: a lateral error costs 50x a forward error of the same size
    forward = losses.pose_loss(torch.tensor(tf.from_xyz_rpy(0.1, 0, 0)).unsqueeze(0) @ T_gt, T_gt, weights)
    lateral = losses.pose_loss(torch.tensor(tf.from_xyz_rpy(0, 0.1, 0)).unsqueeze(0) @ T_gt, T_gt, weights)
    assert lateral.item() == pytest.approx(50.0 * forward.item(), rel=1e-9)
    # planar ignores pure height and roll errors; the 6-DOF loss does not
    for off_plane in (tf.from_xyz_rpy(0, 0, 0.3), tf.from_xyz_rpy(0, 0, 0, roll=0.2)):
        T_est = torch.tensor(off_plane).unsqueeze(0) @ T_gt
        assert losses.pose_loss(T_est, T_gt, weights).item() == pytest.approx(0.0, abs=1e-12)
        assert losses.pose_loss(T_est, T_gt, [1.0] * 6, planar=False).item() > 0.03
    with pytest.raises(ValueError, match="3 weights"):
        losses.pose_loss(T_gt, T_gt, [1.0] * 6)


def test_pose_loss_gradient_is_finite_at_the_truth():
    xi = torch.zeros(1, 6, dtype=torch.float64, requires_grad=True)
    T = torch.eye(4, dtype=torch.float64).unsqueeze(0) + losses._hat(xi[:, 3:]).new_zeros(1, 4, 4)
    T = T.clone()
    T[:, :3, 3] = T[:, :3, 3] + xi[:, :3]
    losses.pose_loss(T, torch.eye(4, dtype=torch.float64).unsqueeze(0), [1.0, 50.0, 10.0]).sum().backward()
    assert torch.isfinite(xi.grad).all()


def test_keypoint_loss_masks_points():
    expected = torch.zeros(2, 3, 3)
    matched = torch.tensor([[[1.0, 0, 5.0], [0, 2.0, 0], [9.0, 9.0, 0]], [[3.0, 4.0, 0], [0, 0, 0], [0, 0, 0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    loss = losses.keypoint_loss(matched, expected, mask)
    torch.testing.assert_close(loss, torch.tensor([2.5, 0.0]))  # z is ignored; empty element -> 0


@pytest.mark.parametrize("angle", [1.5e-4, 3e-4, 2e-3, 9e-3, 1.1e-2, 0.3])
def test_se3_log_is_accurate_in_float32_for_small_rotations(angle):
    """float32 inputs at the angles where `1 - cos` cancels give the float64 answer, with finite gradients."""
    from dlvf_ros.geometry import transforms as np_transforms

    T64 = np_transforms.from_xyz_rpy(0.1, -0.2, 0.05, roll=angle / 2, yaw=angle)
    T = torch.tensor(T64, dtype=torch.float32, requires_grad=True)
    xi = losses.se3_log(T.unsqueeze(0))[0]
    assert xi.dtype == torch.float32
    np.testing.assert_allclose(xi.detach().numpy(), np_transforms.se3_log(T64), atol=2e-6)
    xi.sum().backward()
    assert torch.isfinite(T.grad).all()


def _normalised(x):
    return (x - x.mean(-1, keepdim=True)) / x.std(-1, unbiased=False, keepdim=True)


def test_descriptor_loss_prefers_the_true_correspondence_and_respects_mask_and_exclusion():
    torch.manual_seed(0)
    source = _normalised(torch.randn(1, 4, 32))
    targets = _normalised(torch.randn(1, 10, 32))
    keypoints_target = torch.arange(10, dtype=torch.float32).repeat_interleave(2).view(1, 10, 2) * 50.0
    uv_expected = torch.full((1, 4, 2), 1000.0)
    mask = torch.tensor([[True, True, True, False]])
    args = {"keypoints_target": keypoints_target, "uv_expected": uv_expected, "temperature": 0.05, "exclusion_px": 8.0}
    right = losses.descriptor_loss(source, source, targets, mask=mask, **args)
    wrong = losses.descriptor_loss(source, torch.roll(source, 1, dims=1), targets, mask=mask, **args)
    assert float(right) < 0.01 and float(wrong) > 5.0
    # a masked keypoint does not count, even with a NaN positive
    nan_positive = source.clone()
    nan_positive[0, 3] = float("nan")
    assert torch.equal(losses.descriptor_loss(source, nan_positive, targets, mask=mask, **args), right)
    # a target keypoint equal to the source is a hard negative far away, and not a negative within exclusion_px
    confusing = targets.clone()
    confusing[0, 2] = source[0, 0]
    far = losses.descriptor_loss(source, source, confusing, mask=mask, **args)
    near_uv = uv_expected.clone()
    near_uv[0, 0] = keypoints_target[0, 2] + 3.0
    near = losses.descriptor_loss(source, source, confusing, mask=mask, **{**args, "uv_expected": near_uv})
    assert float(far) > float(right) + 0.2 and float(near) < 0.01
    with pytest.raises(ValueError, match="temperature"):
        losses.descriptor_loss(source, source, targets, mask=mask, **{**args, "temperature": 0.0})


def test_nearest_match_correct_marks_matches_near_the_truth():
    torch.manual_seed(1)
    targets = _normalised(torch.randn(1, 5, 16))
    keypoints_target = torch.tensor([[[0.0, 0.0], [20.0, 0.0], [40.0, 0.0], [60.0, 0.0], [80.0, 0.0]]])
    source = targets[:, [0, 1, 2]]  # each source keypoint looks exactly like target keypoints 0, 1, 2
    uv_expected = torch.tensor([[[3.0, 0.0], [40.0, 0.0], [44.0, 3.0]]])  # right, wrong (that is keypoint 2), right
    correct = losses.nearest_match_correct(source, targets, keypoints_target, uv_expected, 8.0)
    assert correct.tolist() == [[True, False, True]]


def test_repeatability_pulls_the_nearest_keypoint_onto_the_projection_and_ignores_far_ones():
    projected = torch.tensor([[[10.0, 10.0], [50.0, 50.0]]])
    keypoints_other = torch.tensor([[[11.0, 12.0], [80.0, 80.0]]], requires_grad=True)
    mask = torch.tensor([[True, True]])
    loss = losses.repeatability_loss(projected, keypoints_other, mask, max_px=4.0)
    assert torch.allclose(loss, torch.tensor([5.0]))  # only the first pair (1^2 + 2^2); the second is 42 px away
    loss.sum().backward()
    assert torch.allclose(keypoints_other.grad[0, 0], torch.tensor([2.0, 4.0]))  # towards the projection
    assert torch.equal(keypoints_other.grad[0, 1], torch.zeros(2))
    at_zero = losses.repeatability_loss(projected, projected.clone().requires_grad_(), mask, 4.0)
    assert float(at_zero.detach()) == 0.0
    with pytest.raises(ValueError, match="max_px"):
        losses.repeatability_loss(projected, keypoints_other, mask, 0.0)


def test_score_loss_rewards_scores_that_predict_correct_matches():
    correct = torch.tensor([[True, False, True, False]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    good = losses.score_loss(torch.tensor([[0.9, 0.1, 0.9, 0.1]]), correct, mask)
    bad = losses.score_loss(torch.tensor([[0.1, 0.9, 0.1, 0.9]]), correct, mask)
    assert float(good) < 0.2 < 2.0 < float(bad)
    masked = losses.score_loss(
        torch.tensor([[0.9, 0.9, 0.9, 0.9]]), correct, torch.tensor([[True, False, True, False]])
    )
    assert float(masked) < 0.2
