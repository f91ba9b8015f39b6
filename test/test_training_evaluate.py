"""`dlvf test` core: sparse soft / mutual matching recover known correspondences, errors and success are right, and
checkpoints and exported models both load as backends giving the same features."""

import numpy as np
import pytest
import torch

from dlvf_ros.features.backends import Features
from dlvf_ros.features.export import export_feature_net
from dlvf_ros.features.unet import FeatureNet
from dlvf_ros.geometry import transforms as tf
from dlvf_ros.geometry.ransac import RansacConfig, ransac_rigid
from dlvf_ros.localization.frontend import StereoFeatures
from dlvf_ros.training.evaluate import error_components, load_backend, mutual_matches, soft_sparse_matches

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # test/conftest.py


def stereo_features(points, descriptors, scores, valid):
    keypoints = np.zeros((len(points), 2), np.float32)
    return StereoFeatures(Features(keypoints, descriptors.astype(np.float32), scores.astype(np.float32)), points, valid)


def normalised(x):
    return (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)


@pytest.mark.parametrize("matcher", ["soft", "mutual"])
def test_matching_and_ransac_recover_a_known_motion(matcher):
    rng = np.random.default_rng(0)
    n = 60
    points_src = np.column_stack([rng.uniform(-3, 3, n), rng.uniform(-1, 1, n), rng.uniform(2, 15, n)])
    T_tgt_src = tf.from_xyz_rpy(0.3, -0.1, 0.5, yaw=0.05)
    points_tgt = tf.transform_points(T_tgt_src, points_src)
    descriptors = normalised(rng.normal(size=(n, 64)))
    order = rng.permutation(n)  # the target lists the same points in another order
    valid_src = np.ones(n, bool)
    valid_src[:5] = False  # no depth: never matched
    source = stereo_features(points_src, descriptors, np.full(n, 0.9), valid_src)
    target = stereo_features(points_tgt[order], descriptors[order], np.full(n, 0.8), np.ones(n, bool))
    if matcher == "soft":
        src, tgt, weights = soft_sparse_matches(source, target, temperature=0.01)
    else:
        src, tgt, weights = mutual_matches(source, target, zncc_min=0.5)
    assert len(src) == n - 5
    np.testing.assert_allclose(tgt, tf.transform_points(T_tgt_src, src), atol=1e-6)
    np.testing.assert_allclose(weights, 0.72, atol=1e-3)  # ZNCC 1: 0.5 (1 + 1) 0.9 0.8
    result = ransac_rigid(src, tgt, weights, RansacConfig(inlier_threshold_m=0.1))
    assert result.success and result.num_inliers == n - 5
    errors = error_components(result.T_tgt_src, T_tgt_src)
    assert max(abs(errors[k]) for k in ("x_m", "y_m", "z_m", "yaw_deg")) < 1e-6


def test_error_components_of_a_known_error():
    T_gt = tf.from_xyz_rpy(2.0, 1.0, 0.0, yaw=0.4)
    error = tf.from_xyz_rpy(0.1, -0.2, 0.05, roll=0.01, pitch=-0.02, yaw=np.deg2rad(3.0))
    e = error_components(T_gt @ error, T_gt)
    assert (e["x_m"], e["y_m"], e["z_m"]) == pytest.approx((0.1, -0.2, 0.05))
    assert (e["roll_deg"], e["pitch_deg"], e["yaw_deg"]) == pytest.approx((np.degrees(0.01), np.degrees(-0.02), 3.0))


def test_checkpoint_and_exported_model_give_the_same_features(tmp_path):
    torch.manual_seed(0)
    network = FeatureNet(m=4)
    torch.save(
        {"model": network.state_dict(), "model_config": dict(network.conf), "image_size": [64, 48]},
        tmp_path / "checkpoint.pt",
    )
    export_feature_net(network, tmp_path / "model.pt", (48, 64))
    image = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    from_checkpoint, size = load_backend(tmp_path / "checkpoint.pt")
    exported, exported_size = load_backend(tmp_path / "model.pt")
    assert size == exported_size == (64, 48)
    a, b = from_checkpoint.extract(image), exported.extract(image)
    np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-4)
    np.testing.assert_allclose(a.descriptors, b.descriptors, atol=1e-3)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_backend(tmp_path / "missing.pt")
