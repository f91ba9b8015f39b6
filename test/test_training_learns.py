"""The key check: a short training run on a tiny synthetic teach-and-repeat set lowers the validation loss and raises
the test success rate over the untrained network (same architecture and initial weights), through the CLIs.

The training trajectory differs between CPUs (float reductions differ between instruction sets) and between thread
counts, so the effect is made larger and steadier, and the success threshold sits at half the smallest gain measured
over seeds and thread counts: 192 keypoints per 128 x 96 image (8 x 8 cells), the descriptor loss on ground-truth
correspondences beside the scaled-down pose and keypoint losses (why: models/README.md), deterministic torch ops and a
fixed thread count. What it gave is noted at MIN_SUCCESS_GAIN; `train_and_test` reruns it for any training seed and
thread count.
"""

import json

import pytest
import torch
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
# Test success rate, trained minus untrained: half the smallest gain measured. Measured on x86-64 (2 shared cores),
# training seeds 0-4 with 1 and with 2 torch threads: untrained 4-35 %, trained 60-85 %; gain min 0.31 / median 0.48
# (1 thread), 0.31 / 0.56 (2 threads); median inliers 0 -> 11-26; best / initial validation loss 0.09-0.40. With a
# busy loop on each core the numbers were bit-identical (seeds 0 and 4, 2 threads). The earlier setup (16 x 16 cells,
# no descriptor loss, +0.3 required) gained 0.19 on a Xeon (AVX-512) and 0.40-0.56 here.
MIN_SUCCESS_GAIN = 0.15

pytestmark = pytest.mark.usefixtures("restore_torch_threads")  # test/conftest.py


@pytest.fixture
def deterministic_torch():
    """Deterministic torch ops for the test, then the previous setting."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(previous)


def train_and_test(tmp_path, seed: int = 0, torch_threads: int = 1) -> tuple[dict, dict, dict]:
    """`dlvf dataset`, `dlvf train` (training seed `seed`) and `dlvf test` of the initial and the best checkpoint on
    a plane world: (training summary, test summary of the untrained network, of the trained one)."""
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
            "seed": seed,
            "model": {"m": 8, "cell": 8, "shared_decoder": True},
            "epochs": 8,
            "batch_size": 3,
            "learning_rate": 5e-4,
            "train_samples_per_epoch": 36,
            "validation_samples_per_epoch": 6,
            "torch_threads": torch_threads,
            "device": "cpu",
            "pipeline": {"matching": {"mode": "sparse"}},
            "loss": {
                "pose_from_epoch": 2,
                "keypoint_weight": 0.25,
                "pose_scale": 0.02,
                "descriptor_weight": 1.0,
                "descriptor_exclusion_px": 5.0,
            },
        },
        "test": {
            "ransac": {"inlier_threshold_m": 0.5},
            # success: 0.5 m planar and 5 deg heading error with the RANSAC's 6 inliers (dlvf test's old default)
            "success": {"max_translation_error_m": 0.5, "max_heading_error_deg": 5.0, "min_inliers": 6},
            "sgbm": {"num_disparities": 32},
            "torch_threads": torch_threads,
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
    return json.loads((run / "summary.json").read_text()), results["initial"], results["best"]


@pytest.mark.slow
# a hang guard: about 65 s of CPU on one core; 700-1250 s of wall time were measured at load 20 on 2 cores
@pytest.mark.timeout(1800)
def test_short_training_beats_the_untrained_network(tmp_path, deterministic_torch):
    summary, before, after = train_and_test(tmp_path)
    initial_val = summary["initial_validation"]["val_loss"]
    assert summary["best_val_loss"] < 0.5 * initial_val, (summary["best_val_loss"], initial_val)
    assert before["frames"] == after["frames"] == 6 * 8  # 4 test runs: each later one against each earlier one
    print(
        f"validation loss {initial_val:.3g} -> {summary['best_val_loss']:.3g}; test success "
        f"{before['success_rate']:.0%} -> {after['success_rate']:.0%}, median inliers "
        f"{before['inliers_median']} -> {after['inliers_median']}"
    )
    assert after["success_rate"] >= before["success_rate"] + MIN_SUCCESS_GAIN
    assert after["inliers_median"] > before["inliers_median"]
