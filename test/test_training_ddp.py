"""DDP: `torchrun --nproc_per_node=2 dlvf train` on CPU (gloo) takes one step and both ranks hold identical weights."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from test_training_dataset import FOUR_RUNS, build_plane_dataset

from dlvf_ros.features.checkpoint import TrainingCheckpoint
from dlvf_ros.training.config import SplitConfig
from dlvf_ros.training.trainer import weights_sha256


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_torchrun_two_ranks_hold_identical_weights_after_a_step(tmp_path):
    root = tmp_path / "world"
    build_plane_dataset(root, tmp_path / "ds", FOUR_RUNS, 4, 2, SplitConfig(train=[0, 1], validation=[2, 3]))
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {"m": 4},
                "epochs": 1,
                "batch_size": 1,
                "train_samples_per_epoch": 2,
                "learning_rate": 0.01,
                "validation_samples_per_epoch": 2,
                "torch_threads": 1,
                "device": "cpu",
                "pipeline": {"matching": {"mode": "sparse"}},
                "loss": {"pose_from_epoch": 0},
            }
        )
    )
    run_dir = tmp_path / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    completed = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "dlvf_ros.cli",
            "train",
            "--dataset",
            str(tmp_path / "ds"),
            "--out",
            str(run_dir),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=200,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    reports = [json.loads((run_dir / "ranks" / f"rank_{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert [r["samples_seen"] for r in reports] == [1, 1]  # the 2 samples were split, not duplicated
    assert reports[0]["weights_sha256"] == reports[1]["weights_sha256"]
    torch.manual_seed(0)
    initial = TrainingCheckpoint.load(run_dir / "checkpoints" / "initial.pt").network()
    checkpoint = TrainingCheckpoint.load(run_dir / "checkpoints" / "last.pt")
    final = checkpoint.network()
    assert weights_sha256(final) == reports[0]["weights_sha256"]  # rank 0 wrote what both ranks hold
    # the optimizer step (not only BatchNorm statistics) changed the parameters
    changed = [not torch.equal(a, b) for a, b in zip(initial.parameters(), final.parameters())]
    assert sum(changed) > len(changed) // 2
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2 and checkpoint.epoch == 0
    assert int(summary["final_epoch"]["train_steps"]) == 2  # one step on each rank
