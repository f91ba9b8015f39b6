"""`dlvf train --dataset DATASET --out RUN_DIR [--config YAML] [--resume | --init CHECKPOINT]`; DDP under `torchrun`."""

from __future__ import annotations

import argparse

from dlvf_ros.config import load_config
from dlvf_ros.training.config import TrainConfig
from dlvf_ros.training.distributed import init_distributed, shutdown


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset directory built by `dlvf dataset`")
    parser.add_argument("--out", required=True, help="run directory: checkpoints, metrics.csv, tensorboard, curve PNG")
    parser.add_argument(
        "--config", default=None, help="TrainConfig YAML/JSON (default: built-in, see config/train.yaml)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    parser.add_argument(
        "--init",
        default=None,
        metavar="CHECKPOINT",
        help="start a new run from another run's weights (fine-tuning; optimizer and epochs start fresh)",
    )


def run(args: argparse.Namespace) -> int:
    from dlvf_ros.training.trainer import Trainer

    config = load_config(TrainConfig, args.config) if args.config else None
    context = init_distributed(config.device if config else TrainConfig().device)
    try:
        summary = Trainer(args.dataset, args.out, config, args.resume, context, args.init).run()
    finally:
        shutdown(context)
    if context.is_main:
        skipped = ", ".join(f"{reason}: {count}" for reason, count in summary["skipped"].items()) or "none"
        print(
            f"trained {summary['epochs_completed']} epochs on {summary['world_size']} process(es) in "
            f"{summary['seconds']:.1f} s; best validation loss {summary['best_val_loss']:.4g} "
            f"(untrained {summary['initial_validation']['val_loss']:.4g})"
            f"{' (early stop)' if summary['stopped_early'] else ''}; skipped: {skipped}"
        )
        print(f"checkpoints: {args.out}/checkpoints/best.pt, last.pt; curve: {args.out}/training_curve.png")
    return 0
