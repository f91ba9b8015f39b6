"""The key check: a short training run on a tiny synthetic teach-and-repeat set lowers the validation loss and raises
the test success rate over the untrained network (same architecture and initial weights), through the CLIs."""

import json

import pytest
import yaml
from test_training_dataset import write_plane_world

from dlvf_ros import cli

# (lateral offset m, brightness gain) per run: run 0 is the teach run; the others repeat it under other lighting
RUNS = (
    (0.0, 1.0),
    (0.4, 0.6),
    (-0.3, 1.3),
    (0.2, 0.45),
    (-0.2, 0.7),
    (0.3, 1.2),
    (-0.4, 0.5),
    (0.1, 0.8),
    (0.35, 1.25),
    (-0.1, 0.55),
)

pytestmark = pytest.mark.usefixtures("restore_torch_threads")  # test/conftest.py


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_short_training_beats_the_untrained_network(tmp_path):
    world = tmp_path / "world"
    write_plane_world(world, runs=RUNS, frames=8)
    configs = {
        "dataset": {
            "train_pairs": 300,
            "validation_pairs": 12,
            "test_pairs": 0,
            "max_edges": 3,
            "image_width": 128,
            "image_height": 96,
            "sgbm": {"num_disparities": 32},
            "split": {"train": [0, 1, 2, 3], "validation": [4, 5], "test": [6, 7, 8, 9]},
        },
        "train": {
            "model": {"m": 8},
            "epochs": 25,
            "batch_size": 3,
            "learning_rate": 1e-3,
            "train_samples_per_epoch": 24,
            "validation_samples_per_epoch": 12,
            "torch_threads": 1,
            "device": "cpu",
            "pipeline": {"matching": {"mode": "sparse"}},
            "loss": {"pose_from_epoch": 2},
        },
        "test": {
            "ransac": {"inlier_threshold_m": 0.5},
            # success: 0.5 m planar and 5 deg heading error with the RANSAC's 6 inliers (dlvf test's old default)
            "success": {"max_translation_error_m": 0.5, "max_heading_error_deg": 5.0, "min_inliers": 6},
            "sgbm": {"num_disparities": 32},
            "torch_threads": 1,
        },
    }
    for name, data in configs.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data))
    dataset, run = tmp_path / "dataset", tmp_path / "run"
    assert (
        cli.main(["dataset", "--data", str(world), "--out", str(dataset), "--config", str(tmp_path / "dataset.yaml")])
        == 0
    )
    assert (
        cli.main(["train", "--dataset", str(dataset), "--out", str(run), "--config", str(tmp_path / "train.yaml")]) == 0
    )
    summary = json.loads((run / "summary.json").read_text())
    initial_val = summary["initial_validation"]["val_loss"]
    assert summary["best_val_loss"] < 0.5 * initial_val, (summary["best_val_loss"], initial_val)

    results = {}
    for name in ("initial", "best"):
        out = tmp_path / f"test_{name}"
        assert (
            cli.main(
                [
                    "test",
                    "--data",
                    str(world),
                    "--model",
                    str(run / "checkpoints" / f"{name}.pt"),
                    "--out",
                    str(out),
                    "--dataset",
                    str(dataset),
                    "--config",
                    str(tmp_path / "test.yaml"),
                ]
            )
            == 0
        )
        results[name] = json.loads((out / "test_results.json").read_text())["summary"]
        assert (out / "test_results.png").is_file()
    before, after = results["initial"], results["best"]
    assert before["frames"] == after["frames"] == 6 * 8  # 4 test runs: each later one against each earlier one
    print(
        f"validation loss {initial_val:.3g} -> {summary['best_val_loss']:.3g}; test success "
        f"{before['success_rate']:.0%} -> {after['success_rate']:.0%}, median inliers "
        f"{before['inliers_median']} -> {after['inliers_median']}"
    )
    assert after["success_rate"] >= before["success_rate"] + 0.3
    assert after["inliers_median"] > before["inliers_median"]
