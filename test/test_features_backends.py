"""ORB / SIFT backends on real pixels (scikit-image astronaut): shapes, dtypes, score range, signatures, errors."""

import numpy as np
import pytest
from skimage import data

from dlvf_ros.features.backends import Features, OrbBackend, SiftBackend, make_backend


@pytest.fixture(scope="module")
def image_rgb():
    return np.ascontiguousarray(data.astronaut()[::2, ::2])  # 256 x 256 RGB uint8


@pytest.mark.parametrize(
    "backend, metric, dtype, size",
    [
        (OrbBackend(), "hamming", np.uint8, 32),
        (SiftBackend(), "l2", np.float32, 128),
    ],
)
def test_classical_backend_outputs(backend, metric, dtype, size, image_rgb):
    features = backend.extract(image_rgb)
    assert backend.descriptor_metric == metric and backend.descriptor_size == size
    assert len(features) > 100
    assert features.keypoints.dtype == np.float32 and features.keypoints.shape == (len(features), 2)
    assert features.descriptors.dtype == dtype and features.descriptors.shape == (len(features), size)
    assert features.scores.dtype == np.float32
    assert features.scores.min() >= 0.0 and features.scores.max() == pytest.approx(1.0)
    h, w = image_rgb.shape[:2]
    assert np.all((features.keypoints >= 0) & (features.keypoints <= [w - 1, h - 1]))
    signature = backend.signature()
    assert signature["backend"] == backend.name and signature["params"]


def test_keypoints_follow_a_shift(image_rgb):
    """A keypoint found in an image is found again at the same place + shift in a shifted copy (pixel centres)."""
    backend = OrbBackend()
    shifted = np.zeros_like(image_rgb)
    shifted[:, 7:] = image_rgb[:, :-7]
    a, b = backend.extract(image_rgb), backend.extract(shifted)
    distance = np.linalg.norm(a.keypoints[:, None] + [7.0, 0.0] - b.keypoints[None], axis=2).min(1)
    assert np.mean(distance < 0.5) > 0.5


def test_blank_image_gives_empty_features():
    features = OrbBackend().extract(np.full((64, 64, 3), 128, np.uint8))
    assert len(features) == 0 and features.descriptors.shape == (0, 32)


@pytest.mark.parametrize("bad", [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 3), np.float32), [[0]]])
def test_bad_images_are_refused(bad):
    with pytest.raises(ValueError, match="uint8"):
        OrbBackend().extract(bad)


def test_make_backend_errors(tmp_path):
    assert make_backend("sift").name == "sift"
    with pytest.raises(ValueError, match="unknown backend"):
        make_backend("surf")
    with pytest.raises(ValueError, match="model path"):
        make_backend("learned")
    with pytest.raises(ValueError, match="only used by the learned"):
        make_backend("orb", tmp_path / "m.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_backend("learned", tmp_path / "missing.pt")


def test_features_shape_check():
    with pytest.raises(ValueError, match="inconsistent"):
        Features(np.zeros((3, 2), np.float32), np.zeros((2, 8), np.float32), np.zeros(3, np.float32))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained exported network (m=4, 64x96 input): same contract as the shipped model, small and fast."""
    import torch

    from dlvf_ros.features.export import export_feature_net
    from dlvf_ros.features.unet import FeatureNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    export_feature_net(FeatureNet(m=4), path, (64, 96))
    return path


def test_learned_backend_through_the_exported_model(tiny_model, image_rgb):
    from dlvf_ros import fileio

    backend = make_backend("learned", tiny_model)
    assert backend.descriptor_metric == "zncc" and backend.descriptor_size == 31 * 4
    features = backend.extract(np.ascontiguousarray(image_rgb[:192, :]))  # 256 x 192: resized to the model's 96 x 64
    assert len(features) == (64 // 16) * (96 // 16)
    assert features.descriptors.shape == (24, 124) and features.descriptors.dtype == np.float32
    np.testing.assert_allclose(features.descriptors.mean(1), 0.0, atol=1e-3)
    assert np.all((features.scores >= 0) & (features.scores <= 1))
    assert np.all((features.keypoints >= 0) & (features.keypoints <= [255, 191]))
    signature = backend.signature()
    assert signature["model_sha256"] == fileio.sha256_file(tiny_model)
    assert signature["metadata"]["cell_size"] == 16
    assert backend.keypoint_scale(256) == 256 / 96 and make_backend("orb").keypoint_scale(256) == 1.0
