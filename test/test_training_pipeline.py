"""The differentiable pipeline: camera model, per-element inlier check, gradients from the pose loss into the
network."""

import numpy as np
import pytest
import torch
from test_training_dataset import FOUR_RUNS, build_plane_dataset

from dlvf_ros.features.unet import FeatureNet
from dlvf_ros.training.config import PipelineConfig, SoftMatchConfig, SplitConfig
from dlvf_ros.training.dataset import PairDataset
from dlvf_ros.training.losses import keypoint_loss, pose_loss
from dlvf_ros.training.pipeline import PosePipeline, points_at, project_points

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # test/conftest.py


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    manifest = build_plane_dataset(
        root, root / "ds", FOUR_RUNS[:3], 2, 0, SplitConfig(train=[0, 1, 2], validation=[], test=[])
    )
    dataset = PairDataset(manifest, "train")
    return torch.utils.data.default_collate([dataset[0], dataset[1]]), manifest.rig(0)


def test_points_follow_the_stereo_rig_model(batch):
    batch, rig = batch
    rng = np.random.default_rng(0)
    uv = np.stack([rng.integers(40, 127, 30), rng.integers(20, 95, 30)], axis=1).astype(np.float64)
    disparity = batch["disparity_source"][:1]
    points, valid = points_at(
        torch.tensor(uv[None], dtype=torch.float32),
        disparity,
        batch["valid_source"][:1],
        batch["intrinsics"][:1],
        batch["T_vehicle_camera"][:1],
    )
    d = disparity[0, 0].numpy()[uv[:, 1].astype(int), uv[:, 0].astype(int)]
    d_valid = batch["valid_source"][0, 0].numpy()[uv[:, 1].astype(int), uv[:, 0].astype(int)] > 0
    expected, expected_valid = rig.points_from_disparity(uv, np.where(d_valid, d, np.nan))
    expected_vehicle = expected @ rig.T_vehicle_camera[:3, :3].T + rig.T_vehicle_camera[:3, 3]
    assert valid[0].numpy().tolist() == expected_valid.tolist() and expected_valid.sum() > 10
    np.testing.assert_allclose(
        points[0].numpy()[expected_valid], expected_vehicle[expected_valid], rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("mode", ["sparse", "dense"])
def test_pose_loss_gradients_reach_every_part_of_the_network(batch, mode):
    batch, _ = batch
    torch.manual_seed(0)
    network = FeatureNet(m=4)
    pipeline = PosePipeline(network, PipelineConfig(matching=SoftMatchConfig(mode=mode, chunk_size=16)))
    result = pipeline(batch)
    assert result.ok.all(), result.num_inliers
    pose_loss(result.T_est, batch["T_target_source"], [1.0, 50.0, 10.0]).mean().backward()
    for part in (network.encoder, network.heads.keypoint_decoder, network.heads.score_decoder):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0


def test_inlier_requirement_is_checked_per_batch_element(batch):
    batch, _ = batch
    broken = {key: value.clone() if torch.is_tensor(value) else value for key, value in batch.items()}
    broken["valid_target"][1] = 0.0  # element 1: no target point has a depth, so it has no inliers
    torch.manual_seed(0)
    network = FeatureNet(m=4)
    result = PosePipeline(network, PipelineConfig(matching=SoftMatchConfig(mode="sparse")))(broken)
    assert result.ok.tolist() == [True, False] and int(result.num_inliers[1]) == 0
    assert torch.equal(result.T_est[1], torch.eye(4))
    loss = pose_loss(result.T_est[:1], broken["T_target_source"][:1], [1.0, 50.0, 10.0]).sum()
    loss = loss + keypoint_loss(result.points_matched, result.points_expected, result.inliers).sum()
    (loss + result.anchor).backward()
    assert all(torch.isfinite(p.grad).all() for p in network.parameters())


def test_ground_truth_correspondences_land_on_the_same_surface_point(batch):
    batch, _ = batch
    rng = np.random.default_rng(1)
    uv = torch.tensor(
        np.stack([rng.uniform(30, 120, (2, 60)), rng.uniform(40, 94, (2, 60))], axis=-1), dtype=torch.float32
    )
    args = (batch["intrinsics"], batch["T_vehicle_camera"])
    points_source, valid = points_at(uv, batch["disparity_source"], batch["valid_source"], *args)
    # into the source camera itself: back to the same pixels, all visible
    uv_back, visible_back = project_points(
        points_source, valid, batch["disparity_source"], batch["valid_source"], *args
    )
    assert torch.equal(visible_back, valid) and valid.sum() > 60
    torch.testing.assert_close(uv_back[valid], uv[valid], atol=1e-3, rtol=0)
    # into the target camera: the target's own stereo point at the projected pixel is the GT-transformed point
    T_gt = batch["T_target_source"]
    points_expected = points_source @ T_gt[:, :3, :3].transpose(1, 2) + T_gt[:, :3, 3].unsqueeze(1)
    uv_target, visible = project_points(points_expected, valid, batch["disparity_target"], batch["valid_target"], *args)
    points_target, _ = points_at(uv_target, batch["disparity_target"], batch["valid_target"], *args)
    assert visible.sum() > 40
    error = torch.linalg.vector_norm(points_target - points_expected, dim=-1)[visible]
    assert float(error.median()) < 0.05, error
    # a point pushed 50 % farther along its ray is hidden behind the surface: not visible
    T_vc = batch["T_vehicle_camera"]
    camera = (points_source - T_vc[:, :3, 3].unsqueeze(1)) @ T_vc[:, :3, :3]
    behind = (1.5 * camera) @ T_vc[:, :3, :3].transpose(1, 2) + T_vc[:, :3, 3].unsqueeze(1)
    _, visible_behind = project_points(behind, valid, batch["disparity_source"], batch["valid_source"], *args)
    assert not visible_behind.any()
