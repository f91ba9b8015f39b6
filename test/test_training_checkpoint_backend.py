"""`dlvf test` backends: a training checkpoint and its exported model load as backends giving the same features."""

import numpy as np
import pytest
import torch

from dlvf_ros.features.export import export_feature_net
from dlvf_ros.features.unet import FeatureNet
from dlvf_ros.training.checkpoint_backend import load_backend

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # test/conftest.py


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
