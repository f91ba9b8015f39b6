"""`dlvf teach --bag BAG --out MAP`: build a map store from a teach bag (keyframes, features, stereo points)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

from dlvf_ros.config import load_config
from dlvf_ros.features.backends import BACKEND_NAMES, make_backend, shipped_model_path
from dlvf_ros.features.xfeat_backend import XFeatMissingError
from dlvf_ros.localization.teach import TeachConfig, Teacher

log = logging.getLogger(__name__)


def add_backend_arguments(parser: argparse.ArgumentParser, default_backend: str | None = "learned") -> None:
    """--backend and --model, shared by the commands that extract features."""
    parser.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        default=default_backend,
        help=f"feature backend (default: {default_backend})",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="exported model for --backend learned (default: the one *.pt in models/)",
    )


def backend_from_arguments(args: argparse.Namespace):
    model = args.model
    if args.backend == "learned" and model is None:
        model = shipped_model_path()
        if model is None:
            raise SystemExit(
                "dlvf: --backend learned needs --model PATH (no single shipped model in models/); "
                "or use --backend orb|sift"
            )
    try:
        return make_backend(args.backend, model)
    except XFeatMissingError as exc:
        raise SystemExit(f"dlvf: {exc}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bag", required=True, type=Path, help="teach run bag (rosbag2 mcap or sqlite3)")
    parser.add_argument("--out", required=True, type=Path, help="map directory to create")
    add_backend_arguments(parser)
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TeachConfig YAML/JSON (keyframe spacing, SGBM); default: built-in defaults",
    )
    parser.add_argument("--no-images", action="store_true", help="do not store keyframe images (no re-extraction)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing map at --out")


def run(args: argparse.Namespace) -> int:
    from dlvf_ros.data.bags import read_stereo_bag

    config = load_config(TeachConfig, args.config)
    if args.no_images:
        config.store_images = False
    backend = backend_from_arguments(args)
    rig, frames = read_stereo_bag(args.bag)
    teacher = Teacher.create(args.out, backend, rig, config, overwrite=args.overwrite)
    without_odometry = 0
    with tqdm(frames, desc="teach", unit="frame") as progress:
        for frame in progress:
            if frame.T_odom_vehicle is None:
                without_odometry += 1
                continue
            teacher.add_frame(frame.stamp_ns, frame.left, frame.right, frame.T_odom_vehicle, frame.T_world_vehicle)
            progress.set_postfix(keyframes=teacher.num_keyframes)
    if without_odometry:
        log.warning("%d frame(s) had no odometry near their stamp and were skipped", without_odometry)
    print(
        f"map {args.out}: {teacher.num_keyframes} keyframes from {teacher.frames_seen} frames "
        f"({teacher.frames_skipped_few_points} skipped for fewer than {config.min_valid_points} stereo points, "
        f"{without_odometry} without odometry); backend {backend.name}"
    )
    if teacher.num_keyframes == 0:
        print("dlvf teach: no keyframe was stored; check the bag's odometry and images")
        return 1
    return 0
