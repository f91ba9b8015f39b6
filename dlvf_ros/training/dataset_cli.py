"""`dlvf dataset --data ROOT [ROOT ...] --out DATASET [--config YAML] [--cache DIR]`: cross-run pairs and the
disparity cache."""

from __future__ import annotations

import argparse

from dlvf_ros.config import load_config
from dlvf_ros.training.config import DatasetConfig
from dlvf_ros.training.dataset import build_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="ROOT",
        help="UTIAS-layout dataset root(s); several synthetic worlds may be combined",
    )
    parser.add_argument("--out", required=True, help="output dataset directory (dataset.json, pairs_*.npz)")
    parser.add_argument(
        "--config", default=None, help="DatasetConfig YAML/JSON (default: built-in, see config/dataset.yaml)"
    )
    parser.add_argument(
        "--cache", default=None, help="disparity cache directory (default: OUT/disparity); may be shared"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes that compute the disparity cache (default 1)")


def run(args: argparse.Namespace) -> int:
    config = load_config(DatasetConfig, args.config)
    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    manifest = build_dataset(args.data, args.out, config, args.cache, args.workers)
    data = manifest.data
    print(
        f"dataset {manifest.directory} (data hash {manifest.data_hash[:12]}), "
        f"images {manifest.image_size[0]}x{manifest.image_size[1]}"
    )
    print(f"{'split':<11} {'members (root, run)':<40} {'pairs':>8}")
    for split, entry in data["pairs"].items():
        members = ", ".join(f"({root},{run})" for root, run in data["splits"][split])
        print(f"{split:<11} {members[:40]:<40} {entry['count']:>8}")
    print(f"disparity cache: {data['disparity']['images']} images in {manifest.disparity_cache().directory}")
    return 0
