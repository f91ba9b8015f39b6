"""TorchScript export: eager equivalence, metadata round trip, contract checks (a training checkpoint and a hung
forward refused), extract(), the training checkpoint record, `dlvf export`."""

import json
import threading
import time

import numpy as np
import pytest
import torch

from dlvf_ros.cli import main as dlvf_main
from dlvf_ros.features.backends import Features
from dlvf_ros.features.checkpoint import CheckpointError, TrainingCheckpoint
from dlvf_ros.features.export import export_feature_net
from dlvf_ros.features.model_file import ModelContractError, check_contract, load_feature_model, read_metadata
from dlvf_ros.features.unet import FeatureNet

torch.set_num_threads(2)
SIZE = (32, 48)  # (H, W)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    network = FeatureNet(m=4)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval mode differs from a fresh layer
        network.train()({"image": torch.rand(2, 3, *SIZE)})
    return network.eval()


@pytest.fixture(scope="module")
def model_path(net, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "model.pt"
    export_feature_net(net, path, SIZE, training_config={"model": {"m": 4}, "learning_rate": 1e-4}, data_hash="abc123")
    return path


def test_exported_outputs_equal_eager_outputs(net, model_path):
    model = load_feature_model(model_path, expected_input_size=SIZE)
    image = torch.rand(1, 3, *SIZE)
    with torch.no_grad():
        eager = net({"image": image})
        keypoints, descriptors, scores = model.module(image)
        descriptor_map, score_map = model.module.dense(image)
        eager_dense = net.dense(image)
    assert keypoints.shape == (1, 2, 6) and descriptors.shape == (1, 124, 6) and scores.shape == (1, 1, 6)
    assert torch.allclose(keypoints, eager["keypoints"].transpose(1, 2), atol=1e-4)
    assert torch.allclose(descriptors, eager["descriptors"].transpose(1, 2), atol=1e-4)
    assert torch.allclose(scores[:, 0], eager["keypoint_scores"], atol=1e-5)
    assert torch.allclose(descriptor_map, eager_dense["descriptor_map"], atol=1e-4)
    assert torch.allclose(score_map, eager_dense["score_map"], atol=1e-5)


def test_metadata_round_trip(model_path):
    metadata = read_metadata(model_path)
    assert metadata["architecture"] == "unet" and metadata["m"] == 4 and metadata["descriptor_size"] == 124
    assert (metadata["input_height"], metadata["input_width"], metadata["num_keypoints"]) == (32, 48, 6)
    assert metadata["cell_size"] == 16 and metadata["colour_order"] == "RGB"
    assert metadata["training_config"] == {"model": {"m": 4}, "learning_rate": 1e-4}
    assert metadata["data_hash"] == "abc123" and metadata["torch_version"] == torch.__version__
    assert "pixel centres" in metadata["pixel_convention"] and metadata["created_utc"]


def test_extract_maps_keypoints_back_to_original_pixels(model_path):
    model = load_feature_model(model_path)
    rng = np.random.default_rng(0)
    image = (rng.random((*SIZE, 3)) * 255).astype(np.uint8)
    native = model.extract(image)
    assert native.keypoints.shape == (6, 2) and native.descriptors.shape == (6, 124) and native.scores.shape == (6,)
    assert native.keypoints.dtype == native.descriptors.dtype == native.scores.dtype == np.float32
    # a 2x nearest-upsampled copy: INTER_AREA gives back the same pixels, keypoints map by (u + 0.5) * 2 - 0.5
    doubled = model.extract(np.repeat(np.repeat(image, 2, axis=0), 2, axis=1))
    assert np.allclose(doubled.keypoints, (native.keypoints + 0.5) * 2 - 0.5, atol=1e-4)
    assert np.allclose(doubled.descriptors, native.descriptors, atol=1e-5)
    assert isinstance(native, Features)  # the one features type, which the learned backend returns as it is
    with pytest.raises(ValueError, match="uint8"):
        model.extract(image.astype(np.float32))


def test_mismatched_size_and_missing_file_are_refused(model_path, tmp_path):
    with pytest.raises(ModelContractError, match=r"expected \(384, 512\).*found \(32, 48\)"):
        load_feature_model(model_path, expected_input_size=(384, 512))
    with pytest.raises(ModelContractError, match="does not exist"):
        load_feature_model(tmp_path / "missing.pt")


def test_corrupt_and_foreign_files_are_refused(model_path, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model" * 100)
    with pytest.raises(ModelContractError, match="garbage.pt.*not a readable TorchScript"):
        load_feature_model(garbage)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(model_path.read_bytes()[: model_path.stat().st_size // 2])
    with pytest.raises(ModelContractError, match="truncated.pt"):
        load_feature_model(truncated)
    no_metadata = tmp_path / "no_metadata.pt"
    torch.jit.save(torch.jit.load(str(model_path)), str(no_metadata))
    with pytest.raises(ModelContractError, match="metadata.json"):
        load_feature_model(no_metadata)


def test_a_training_checkpoint_is_refused_naming_dlvf_export(net, tmp_path):
    checkpoint = tmp_path / "last.pt"
    TrainingCheckpoint(model=net.state_dict(), model_config=dict(net.conf), config={}).save(checkpoint)
    with pytest.raises(ModelContractError, match=r"last.pt is a training checkpoint.*`dlvf export --checkpoint"):
        load_feature_model(checkpoint)


def test_a_forward_that_does_not_return_fails_the_check_within_its_time_limit(model_path):
    release = threading.Event()

    class Hanging:  # stands for a scripted module whose forward never returns (a Python one can be released)
        dense = None

        def __call__(self, image):
            release.wait(30.0)

    started = time.monotonic()
    try:
        with pytest.raises(ModelContractError, match=r"did not return within 0.5 s"):
            check_contract(Hanging(), read_metadata(model_path), model_path, timeout_s=0.5)
    finally:
        release.set()
    assert time.monotonic() - started < 10.0


def test_training_checkpoint_round_trip_and_refusals(net, tmp_path):
    path = tmp_path / "checkpoint.pt"
    written = TrainingCheckpoint(
        model=net.state_dict(), model_config=dict(net.conf), config={"model": {"m": 4}}, epoch=3, image_size=[48, 32]
    )
    written.save(path)
    read = TrainingCheckpoint.load(path)
    assert read.epoch == 3 and read.input_size == (32, 48) and read.model_config == dict(net.conf)
    image = torch.rand(1, 3, *SIZE)
    with torch.no_grad():
        assert torch.equal(read.network()({"image": image})["descriptors"], net({"image": image})["descriptors"])
    torch.save({"model": net.state_dict(), "epochs": 3}, path)
    with pytest.raises(CheckpointError, match=r"unknown key\(s\) \['epochs'\]"):
        TrainingCheckpoint.load(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        TrainingCheckpoint.load(tmp_path / "missing.pt")


class WrongShapes(torch.nn.Module):
    def forward(self, image: torch.Tensor):
        return torch.zeros(1, 2, 5), torch.zeros(1, 124, 5), torch.zeros(1, 1, 5)

    @torch.jit.export
    def dense(self, image: torch.Tensor):
        return image, image


class Unnormalised(WrongShapes):
    def forward(self, image: torch.Tensor):
        return torch.zeros(1, 2, 6), torch.ones(1, 124, 6), torch.zeros(1, 1, 6)


@pytest.mark.parametrize(
    "module, match",
    [
        (WrongShapes(), r"keypoints expected float32 \[1, 2, 6\], found torch.float32 \[1, 2, 5\]"),
        (Unnormalised(), "descriptors not normalised"),
    ],
)
def test_contract_violations_are_refused(model_path, tmp_path, module, match):
    path = tmp_path / "bad.pt"
    metadata = read_metadata(model_path)
    torch.jit.save(torch.jit.script(module), str(path), _extra_files={"metadata.json": json.dumps(metadata)})
    with pytest.raises(ModelContractError, match=match):
        load_feature_model(path)


def test_onnx_export_matches_eager(net):
    import onnxruntime

    from dlvf_ros.features.export import onnx_model_bytes

    session = onnxruntime.InferenceSession(onnx_model_bytes(net, SIZE), providers=["CPUExecutionProvider"])
    image = torch.rand(1, 3, *SIZE)
    keypoints, descriptors, scores = session.run(None, {"image": image.numpy()})
    with torch.no_grad():
        eager = net({"image": image})
    assert np.allclose(keypoints, eager["keypoints"].transpose(1, 2).numpy(), atol=1e-4)
    assert np.allclose(descriptors, eager["descriptors"].transpose(1, 2).numpy(), atol=1e-3)
    assert np.allclose(scores[:, 0], eager["keypoint_scores"].numpy(), atol=1e-5)


def test_dlvf_export_command(net, tmp_path, capsys):
    checkpoint = tmp_path / "checkpoint.pt"
    # the layout `dlvf train` writes: image_size is [width, height]; model_config is FeatureNet.conf
    torch.save(
        {
            "model": net.state_dict(),
            "config": {"model": {}},
            "model_config": dict(net.conf),
            "data_hash": "feed",
            "epoch": 7,
            "image_size": [48, 32],
        },
        checkpoint,
    )
    out = tmp_path / "models" / "model.pt"
    assert dlvf_main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    metadata = load_feature_model(out).metadata
    assert (metadata["input_height"], metadata["input_width"], metadata["data_hash"]) == (32, 48, "feed")
    assert metadata["source"]["epoch"] == 7 and len(metadata["source"]["checkpoint_sha256"]) == 64
    assert metadata["training_config"] == {"model": {}}
    assert (
        dlvf_main(["export", "--checkpoint", str(checkpoint), "--out", str(out), "--height", "48", "--width", "64"])
        == 0
    )
    assert load_feature_model(out, expected_input_size=(48, 64)).metadata["num_keypoints"] == 12
    # weights that do not fit the configured network, and a bad input size, fail with a message (config "model" is
    # used when there is no model_config)
    torch.save({"model": net.state_dict(), "config": {"model": {"m": 8}}}, checkpoint)
    assert dlvf_main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "x.pt")]) == 1
    assert "do not fit FeatureNet" in capsys.readouterr().err
    torch.save({"model": net.state_dict(), "config": {"model": {"m": 4}}}, checkpoint)
    assert (
        dlvf_main(
            [
                "export",
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(tmp_path / "x.pt"),
                "--height",
                "40",
                "--width",
                "64",
            ]
        )
        == 1
    )
    assert "multiples of 16" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_export_names_its_training_data_and_refuses_another_dataset(tmp_path):
    """`dlvf export --dataset` puts the dataset's roots, lightings, split and pair counts into the metadata."""
    import json

    from dlvf_ros.features.export_cli import training_data_summary

    manifest = {
        "data_hash": "abc",
        "image_width": 320,
        "image_height": 240,
        "roots": [{"path": "/data/world_1", "runs": [0, 1], "lighting": {"0": "noon", "1": "night"}}],
        "config": {"split": {"by": "world", "train": [0]}},
        "pairs": {"train": {"count": 10}, "validation": {"count": 2}},
    }
    (tmp_path / "dataset.json").write_text(json.dumps(manifest))
    summary = training_data_summary(tmp_path, "abc")
    assert summary["roots"][0]["lighting"]["1"] == "night" and summary["pairs"] == {"train": 10, "validation": 2}
    with pytest.raises(ValueError, match="not the checkpoint's"):
        training_data_summary(tmp_path, "other")
    with pytest.raises(ValueError, match="no dataset.json"):
        training_data_summary(tmp_path / "missing", "abc")


def test_describe_gives_forwards_descriptors_at_the_keypoints_and_the_eager_ones_between(net, model_path):
    from dlvf_ros.features.sampling import sample_descriptors

    model = load_feature_model(model_path)
    base = (np.random.default_rng(1).random((*SIZE, 3)) * 255).astype(np.uint8)
    image = np.repeat(np.repeat(base, 2, axis=0), 2, axis=1)  # INTER_AREA gives `base` back to the model
    features, field = model.extract_with_field(image)
    assert model.can_describe and field is not None and field.pixel_scale == 2.0
    assert np.allclose(field(features.keypoints), features.descriptors, atol=1e-4)
    assert np.array_equal(features.keypoints, model.extract(image).keypoints)
    points = np.array([[3.0, 5.0], [40.5, 20.25], [90.0, 60.0]])  # image pixels
    tensor = torch.from_numpy(base).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        maps = net({"image": tensor})["encoder_maps"]
        eager = sample_descriptors(maps, torch.from_numpy((points + 0.5) / 2 - 0.5).float()[None], SIZE)[0]
    assert np.allclose(field(points), eager.numpy(), atol=1e-4)


def test_a_model_exported_before_describe_loads_and_has_no_field(net, model_path, tmp_path):
    from dlvf_ros.features.export import ExportedFeatureNet

    old = torch.jit.freeze(torch.jit.script(ExportedFeatureNet(net).eval()), preserved_attrs=["dense"])
    path = tmp_path / "old.pt"
    torch.jit.save(old, str(path), _extra_files={"metadata.json": json.dumps(read_metadata(model_path))})
    model = load_feature_model(path)
    image = (np.random.default_rng(2).random((*SIZE, 3)) * 255).astype(np.uint8)
    features, field = model.extract_with_field(image)
    assert not model.can_describe and field is None
    assert np.allclose(features.descriptors, load_feature_model(model_path).extract(image).descriptors, atol=1e-4)
