"""`dlvf export --checkpoint CKPT --out model.pt [--height H --width W] [--dataset DIR]`: checkpoint -> TorchScript.

The model follows the contract in `dlvf_ros.features.model_file` and embeds metadata.json (architecture, m, descriptor
size, input size, training config, data hash, checkpoint SHA-256). The written file is re-loaded through
`load_feature_model` before the command reports success.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from dlvf_ros import fileio
from dlvf_ros.features.checkpoint import CheckpointError, TrainingCheckpoint
from dlvf_ros.features.export import export_feature_net
from dlvf_ros.features.model_file import ModelContractError, load_feature_model

DEFAULT_INPUT_SIZE = (384, 512)  # (H, W) of the UTIAS Bumblebee images


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="training checkpoint (from `dlvf train`)")
    parser.add_argument(
        "--out", required=True, type=Path, help="TorchScript model file to write (e.g. models/model.pt)"
    )
    parser.add_argument(
        "--height",
        type=int,
        default=None,
        help="network input height (px, multiple of 16); default the training size, else 384",
    )
    parser.add_argument(
        "--width",
        type=int,
        default=None,
        help="network input width (px, multiple of 16); default the training size, else 512",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument(
        "--dataset",
        type=Path,
        default=None,
        help="the `dlvf dataset` directory the checkpoint was trained on: its roots, runs, lightings "
        "and pair counts go into the metadata (its data hash must match the checkpoint's)",
    )


def training_data_summary(dataset_dir: Path, data_hash: str | None) -> dict:
    """What the model was trained on, from a dataset's dataset.json; refuses a dataset of another data hash."""
    manifest_path = dataset_dir / "dataset.json"
    if not manifest_path.is_file():
        raise ValueError(f"--dataset {dataset_dir}: no dataset.json; pass the directory `dlvf dataset --out` wrote")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("data_hash") != data_hash:
        raise ValueError(
            f"--dataset {dataset_dir}: its data hash {manifest.get('data_hash')} is not the checkpoint's "
            f"{data_hash}; pass the dataset the checkpoint was trained on"
        )
    return {
        "dataset": str(dataset_dir),
        "image_size": [manifest["image_width"], manifest["image_height"]],
        "roots": [
            {"path": root["path"], "runs": root["runs"], "lighting": root.get("lighting", {})}
            for root in manifest["roots"]
        ],
        "split": manifest["config"]["split"],
        "pairs": {name: entry["count"] for name, entry in manifest["pairs"].items()},
    }


def input_size_for(checkpoint: TrainingCheckpoint, height: int | None, width: int | None) -> tuple[int, int]:
    """(H, W): the command line, else the checkpoint's training size, else 384 x 512."""
    if (height is None) != (width is None):
        raise ValueError("dlvf export: give both --height and --width, or neither")
    if height is not None and width is not None:
        return int(height), int(width)
    return checkpoint.input_size or DEFAULT_INPUT_SIZE


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    try:
        checkpoint = TrainingCheckpoint.load(args.checkpoint)
        net = checkpoint.network()
        input_size = input_size_for(checkpoint, args.height, args.width)
        source = {
            "checkpoint": args.checkpoint.name,
            "checkpoint_sha256": fileio.sha256_file(args.checkpoint),
            "epoch": checkpoint.epoch,
            "best_val": checkpoint.best_val,
            "image_size": checkpoint.image_size,
            "rig": checkpoint.rig,
            "init_from": checkpoint.init_from,
        }
        training_data = training_data_summary(args.dataset, checkpoint.data_hash) if args.dataset else None
        metadata = export_feature_net(
            net,
            args.out,
            input_size,
            training_config=checkpoint.config,
            data_hash=checkpoint.data_hash,
            source=source,
            training_data=training_data,
        )
        load_feature_model(args.out, expected_input_size=input_size)
    except (CheckpointError, ModelContractError, ValueError) as exc:
        print(f"dlvf export: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {args.out}: U-Net m={metadata['m']}, input {metadata['input_height']}x{metadata['input_width']} RGB, "
        f"{metadata['num_keypoints']} keypoints x {metadata['descriptor_size']}-D descriptors, "
        f"data_hash {metadata['data_hash']}, sha256 {fileio.sha256_file(args.out)[:16]}"
    )
    return 0
