"""The trainer: outputs, checkpoints, exact resume, skipped batches reported with their reason, resume guards."""

import csv
import json

import pytest
import torch
from test_training_dataset import FOUR_RUNS, build_plane_dataset

from dlvf_ros.config import ConfigError, from_dict
from dlvf_ros.features.checkpoint import TrainingCheckpoint
from dlvf_ros.training.config import SplitConfig, TrainConfig
from dlvf_ros.training.distributed import DistributedContext
from dlvf_ros.training.trainer import REASON_FEW_INLIERS, REASON_NO_ELEMENT, Trainer, weights_sha256

SINGLE = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))

pytestmark = pytest.mark.usefixtures("restore_torch_threads")  # test/conftest.py


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    build_plane_dataset(root, root / "ds", FOUR_RUNS, 8, 2, SplitConfig(train=[0, 1], validation=[2, 3]))
    return root / "ds"


def tiny_config(**overrides) -> TrainConfig:
    data = {
        "model": {"m": 4},
        "epochs": 2,
        "batch_size": 2,
        "train_samples_per_epoch": 4,
        "learning_rate": 1e-3,
        "validation_samples_per_epoch": 2,
        "torch_threads": 1,
        "device": "cpu",
        "pipeline": {"matching": {"mode": "sparse"}},
        "loss": {"pose_from_epoch": 1},
    }
    data.update(overrides)
    return from_dict(TrainConfig, data)


def test_training_writes_outputs_and_resumes_exactly(dataset_dir, tmp_path):
    straight = Trainer(dataset_dir, tmp_path / "straight", tiny_config(), False, SINGLE).run()
    assert straight["epochs_completed"] == 2 and straight["initial_validation"]["val_loss"] > 0
    run = tmp_path / "straight"
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch,train_loss")
    assert (run / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    checkpoint = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    for key in ("model", "optimizer", "epoch", "config", "model_config", "data_hash", "best_val"):
        assert key in checkpoint
    assert checkpoint["epoch"] == 1 and checkpoint["model_config"]["m"] == 4
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    with open(run / "metrics.csv", newline="") as handle:
        assert best["best_val"] == min(float(row["val_loss"]) for row in csv.DictReader(handle))

    # the same training interrupted after one epoch and resumed ends with the same weights
    Trainer(dataset_dir, tmp_path / "resumed", tiny_config(epochs=1), False, SINGLE).run()
    resumed = Trainer(dataset_dir, tmp_path / "resumed", tiny_config(epochs=2), True, SINGLE)
    assert resumed.run()["epochs_completed"] == 2
    final_straight = TrainingCheckpoint.load(run / "checkpoints" / "last.pt").network()
    final_resumed = TrainingCheckpoint.load(tmp_path / "resumed" / "checkpoints" / "last.pt").network()
    assert weights_sha256(final_resumed) == weights_sha256(final_straight)
    assert len((tmp_path / "resumed" / "metrics.csv").read_text().splitlines()) == 3

    with pytest.raises(ConfigError, match="learning_rate"):
        Trainer(dataset_dir, tmp_path / "resumed", tiny_config(learning_rate=0.5), True, SINGLE)
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(dataset_dir, tmp_path / "resumed", tiny_config(), False, SINGLE)
    with pytest.raises(FileNotFoundError, match="last.pt"):
        Trainer(dataset_dir, tmp_path / "fresh", None, True, SINGLE)


def test_skipped_batches_are_counted_with_their_reason_and_early_stopping(dataset_dir, tmp_path):
    # no element can reach 10 000 inliers: every batch is skipped, the validation loss never improves after epoch 0
    config = tiny_config(
        epochs=5, early_stopping_patience=2, pipeline={"matching": {"mode": "sparse"}, "min_inliers": 10_000}
    )
    trainer = Trainer(dataset_dir, tmp_path / "run", config, False, SINGLE)
    before = [p.detach().clone() for p in trainer.network.parameters()]
    summary = trainer.run()
    assert summary["stopped_early"] and summary["epochs_completed"] == 3
    assert summary["skipped"] == {REASON_FEW_INLIERS: 12, REASON_NO_ELEMENT: 6}
    assert summary["final_epoch"]["train_skipped_batches"] == 2 and summary["final_epoch"]["train_steps"] == 0
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.network.parameters()))  # no step was taken
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["skipped"] == summary["skipped"]


def test_fine_tuning_starts_from_the_given_weights_with_the_descriptor_loss(dataset_dir, tmp_path):
    base = tmp_path / "base"
    Trainer(dataset_dir, base, tiny_config(epochs=1), False, SINGLE).run()
    base_weights = TrainingCheckpoint.load(base / "checkpoints" / "last.pt").network()
    config = tiny_config(epochs=1, loss={"pose_from_epoch": 0, "descriptor_weight": 1.0})
    summary = Trainer(dataset_dir, tmp_path / "tuned", config, False, SINGLE, base / "checkpoints" / "last.pt").run()
    initial = TrainingCheckpoint.load(tmp_path / "tuned" / "checkpoints" / "initial.pt").network()
    assert weights_sha256(initial) == weights_sha256(base_weights) == summary["init_from"]["weights_sha256"]
    epoch = summary["final_epoch"]
    assert float(epoch["train_descriptor_loss"]) > 0 and float(epoch["val_descriptor_loss"]) > 0
    assert 0.0 <= float(epoch["val_match_accuracy"]) <= 1.0
    assert float(epoch["val_loss"]) > float(epoch["val_pose_loss"]) + 2.5 * float(epoch["val_keypoint_loss"])

    with pytest.raises(ValueError, match="model"):
        Trainer(
            dataset_dir,
            tmp_path / "other",
            tiny_config(model={"m": 8}),
            False,
            SINGLE,
            base / "checkpoints" / "last.pt",
        )
    shared = tiny_config(epochs=1, model={"m": 4, "shared_decoder": True})
    other = Trainer(dataset_dir, tmp_path / "shared", shared, False, SINGLE, base / "checkpoints" / "last.pt")
    assert all(torch.equal(a, b) for a, b in zip(other.network.encoder.parameters(), base_weights.encoder.parameters()))
    assert other.init_from["fresh_parameters"] and all(
        k.startswith("heads.") for k in other.init_from["fresh_parameters"]
    )
    with pytest.raises(FileNotFoundError, match="--init"):
        Trainer(dataset_dir, tmp_path / "missing", tiny_config(), False, SINGLE, tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="--resume"):
        Trainer(dataset_dir, base, tiny_config(epochs=2), True, SINGLE, base / "checkpoints" / "last.pt")
