"""`dlvf teach --bag BAG --out MAP`: build a map store from a teach bag (keyframes, features, stereo points).

Bad frames (undecodable or unpaired images, stamps out of order or repeated, no odometry near the stamp) are skipped
and counted, as the teach node does. The map is built in a staging folder next to MAP and renamed into place only
when it holds at least one keyframe, so a failed or interrupted run leaves MAP as it was.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from dlvf_ros import fileio
from dlvf_ros.config import load_config
from dlvf_ros.features.backends import BACKEND_NAMES, make_backend
from dlvf_ros.features.xfeat_backend import XFeatMissingError
from dlvf_ros.localization.map_store import check_new_map_path
from dlvf_ros.localization.teach import FrameRejected, TeachConfig, Teacher
from dlvf_ros.package_share import shipped_model_path


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
            raise ValueError(
                "--backend learned needs --model PATH (there is no single shipped model in models/); "
                "or use --backend orb|sift|xfeat"
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
    from dlvf_ros.data.bag_reader import count_skip, read_stereo_bag

    config = load_config(TeachConfig, args.config)
    if args.no_images:
        config.store_images = False
    check_new_map_path(args.out, args.overwrite)
    backend = backend_from_arguments(args)
    rig, frames = read_stereo_bag(args.bag)
    skipped: Counter = Counter()
    with fileio.replacing_directory(args.out) as staged:
        teacher = Teacher.create(staged, backend, rig, config)
        with tqdm(frames, desc="teach", unit="frame") as progress:
            for frame in progress:
                if frame.T_odom_vehicle is None:
                    count_skip(skipped, "no odometry near the stamp", f"frame at {frame.stamp_ns} ns")
                    continue
                try:
                    teacher.add_frame(
                        frame.stamp_ns, frame.left, frame.right, frame.T_odom_vehicle, frame.T_world_vehicle
                    )
                except FrameRejected as exc:
                    count_skip(skipped, exc.reason, str(exc))
                progress.set_postfix(keyframes=teacher.num_keyframes)
        skipped.update(frames.skipped)
        print(
            f"map {args.out}: {teacher.num_keyframes} keyframes from {teacher.frames_seen} frames; skipped: "
            f"{', '.join(f'{n} {reason}' for reason, n in sorted(skipped.items())) or 'none'}; "
            f"{teacher.frames_skipped_few_points} keyframe candidate(s) had fewer than {config.min_valid_points} "
            f"stereo points; backend {backend.name}"
        )
        if teacher.num_keyframes == 0:
            raise ValueError(
                f"no keyframe was stored from bag {args.bag}, so no map was written; check the bag's odometry "
                "and images"
            )
    return 0
