"""The U-Net feature network: shapes, sizes, the single sigmoid, gradients, input validation."""

import pytest
import torch

from dlvf_ros.features.sampling import sample_map
from dlvf_ros.features.unet import FeatureNet

torch.set_num_threads(2)


@pytest.mark.parametrize("m, millions", [(16, 2.75), (32, 11.0)])
def test_parameter_count_matches_reference(m, millions):
    net = FeatureNet(m=m)
    assert abs(sum(p.numel() for p in net.parameters()) / 1e6 - millions) < 0.02
    assert net.descriptor_dim == 31 * m


def test_outputs_shapes_and_ranges():
    torch.manual_seed(0)
    net = FeatureNet({"m": 4}).eval()
    image = torch.rand(2, 3, 48, 64)
    with torch.no_grad():
        out = net({"image": image})
    n = (48 // 16) * (64 // 16)
    assert out["keypoints"].shape == (2, n, 2)
    assert out["keypoint_scores"].shape == (2, n)
    assert out["descriptors"].shape == (2, n, 124)
    assert out["score_map"].shape == (2, 1, 48, 64)
    assert out["keypoint_logits"].shape == (2, 1, 48, 64)
    assert [tuple(level.shape[1:]) for level in out["encoder_maps"]] == [
        (4, 48, 64),
        (8, 24, 32),
        (16, 12, 16),
        (32, 6, 8),
        (64, 3, 4),
    ]
    u, v = out["keypoints"][..., 0], out["keypoints"][..., 1]
    assert (u >= 0).all() and (u <= 63).all() and (v >= 0).all() and (v <= 47).all()
    # keypoint k stays in its own 16x16 cell (row-major)
    cell_index = (v // 16) * 4 + (u // 16)
    assert torch.equal(cell_index[0].long(), torch.arange(n))
    # the sigmoid is applied once: score map = sigmoid(decoder logits), scores sampled from it
    with torch.no_grad():
        logits = net.heads.score_decoder(net.encoder(image))
    assert torch.allclose(out["score_map"], torch.sigmoid(logits), atol=1e-6)
    assert torch.allclose(out["keypoint_scores"], sample_map(out["score_map"], out["keypoints"])[..., 0], atol=1e-6)
    assert torch.allclose((out["descriptors"] ** 2).mean(-1), torch.ones(2, n), atol=1e-3)


def test_dense_outputs_agree_with_sparse_outputs():
    torch.manual_seed(3)
    net = FeatureNet(m=4).eval()
    image = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        out = net({"image": image})
        dense = net.dense(image)
    assert dense["descriptor_map"].shape == (1, 124, 32, 48)
    assert torch.allclose(dense["score_map"], out["score_map"], atol=1e-6)
    # normalised per pixel (a fresh network has a few pixels with feature variance ~1e-8, hence the tolerance)
    assert torch.allclose(dense["descriptor_map"].mean(1), torch.zeros(1, 32, 48), atol=1e-4)
    assert torch.allclose((dense["descriptor_map"] ** 2).mean(1), torch.ones(1, 32, 48), atol=1e-2)


def test_gradients_reach_every_parameter_group():
    torch.manual_seed(0)
    net = FeatureNet(m=4).train()
    out = net({"image": torch.rand(2, 3, 32, 32)})
    loss = out["keypoints"].sum() + out["keypoint_scores"].sum() + (out["descriptors"][:, :, :5] ** 2).sum()
    loss.backward()
    for name, part in (("encoder", net.encoder), ("heads", net.heads)):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name


@pytest.mark.parametrize(
    "image, match",
    [
        (torch.rand(1, 3, 40, 64), "multiples of 16"),
        (torch.rand(1, 1, 32, 32), r"\[B, 3, H, W\]"),
        (torch.randint(0, 255, (1, 3, 32, 32), dtype=torch.uint8), "float"),
    ],
)
def test_bad_input_is_refused(image, match):
    with pytest.raises(ValueError, match=match):
        FeatureNet(m=4)({"image": image})


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="unknown option"):
        FeatureNet(width=16)
    with pytest.raises(ValueError, match="m must be"):
        FeatureNet(m=0)


def test_shared_decoder_gives_the_same_outputs_and_cell_8_four_times_the_keypoints():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 48, 64)
    shared = FeatureNet(m=4, shared_decoder=True).eval()
    fine = FeatureNet(m=4, cell=8, shared_decoder=True).eval()
    with torch.no_grad():
        out, out_fine = shared({"image": image}), fine({"image": image})
    assert out["keypoints"].shape == (1, 12, 2) and out_fine["keypoints"].shape == (1, 48, 2)
    assert out["descriptors"].shape == (1, 12, 4 * 31) and out["score_map"].shape == (1, 1, 48, 64)
    assert float(out["score_map"].min()) > 0.0 and float(out["score_map"].max()) < 1.0
    assert sum(p.numel() for p in shared.parameters()) < 0.75 * sum(p.numel() for p in FeatureNet(m=4).parameters())
    with pytest.raises(ValueError, match="multiples of 16"):
        fine({"image": torch.rand(1, 3, 40, 64)})
    with pytest.raises(ValueError, match="cell must be 8"):
        FeatureNet(m=4, cell=12)


def test_checkpoints_from_before_the_heads_module_still_load():
    torch.manual_seed(0)
    net = FeatureNet(m=4)
    legacy = {key.replace("heads.", ""): value for key, value in net.state_dict().items()}
    assert any(key.startswith("keypoint_decoder.") for key in legacy)
    restored = FeatureNet(m=4)
    restored.load_state_dict(legacy)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), restored.state_dict().values()))
