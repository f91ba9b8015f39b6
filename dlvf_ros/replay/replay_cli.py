"""`dlvf replay --bag BAG --map MAP [--model M] --out DIR`: play a bag through the real localizer_node and record it.

Processes: localizer_node (own process, use_sim_time) and bag_player (own process, plays the bag with /clock);
this process records the node's poses, per-frame results (`localization/frame_status`) and health summaries
(/diagnostics) into DIR (`dlvf_ros.replay.recorder`), with a progress bar of per-frame results over the bag's
stereo frames. Everything runs on a machine-local ROS graph (shared-memory transport, own domain id).
The node's parameters are written to DIR/localizer_params.yaml (the base file with map, model and sim time set)
and DIR/replay.json is written last: a directory without it is an interrupted replay.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import yaml
from tqdm import tqdm

from dlvf_ros import fileio
from dlvf_ros.evaluation import records
from dlvf_ros.localization.frame_record import FRAME_STATUS_TOPIC
from dlvf_ros.package_share import package_share_directory

NODE_NAME = "localizer_node"
LEFT_IMAGE_TOPIC = "/stereo/left/image_raw"


class ReplayError(ValueError):
    """The replay ran but the node failed or localized nothing; the message carries the node's own reason."""


def default_params_file() -> Path:
    """config/localizer_node.yaml of the package share directory (installed) or the source checkout."""
    path = package_share_directory() / "config" / f"{NODE_NAME}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no {path}; pass --params-file")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bag", required=True, type=Path, help="rosbag2 bag of the run to replay")
    parser.add_argument("--map", required=True, type=Path, help="teach map store directory")
    parser.add_argument("--model", type=Path, default=None, help="exported model (learned maps; default: shipped)")
    parser.add_argument("--backend", default=None, help="feature backend (default: the one the map was built with)")
    parser.add_argument("--out", required=True, type=Path, help="directory for the recording")
    parser.add_argument(
        "--params-file",
        type=Path,
        default=None,
        help="localizer_node parameter file (default: config/localizer_node.yaml)",
    )
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    parser.add_argument(
        "--lighting",
        default=None,
        help="label of the run's lighting for `dlvf evaluate` "
        "(default: from the run's run_info.yaml next to the bag, else unknown)",
    )
    parser.add_argument(
        "--drain-s",
        type=float,
        default=3.0,
        help="after the bag ends, wait until no frame result arrived for this long (s)",
    )
    parser.add_argument("--ready-timeout-s", type=float, default=60.0, help="start-up limit for the node (s)")
    parser.add_argument(
        "--initial-keyframe",
        type=int,
        default=None,
        help="the run starts at this keyframe of the taught path (a repeat from the path's start: 0); the localizer "
        "starts up around it (localizer.initial_keyframe_id; default: the parameter file's)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing recording in --out")


def bag_summary(bag: Path) -> dict:
    """Message counts per topic and the time span (ns) of a rosbag2 bag, from its metadata."""
    from rosbags.rosbag2 import Reader

    directory = bag.parent if bag.suffix in (".mcap", ".db3") else bag
    if not (directory / "metadata.yaml").is_file():
        raise FileNotFoundError(f"{bag} is not a rosbag2 bag (no {directory / 'metadata.yaml'})")
    with Reader(directory) as reader:
        return {
            "topics": {c.topic: c.msgcount for c in reader.connections},
            "start_ns": reader.start_time,
            "end_ns": reader.end_time,
        }


def find_lighting(bag: Path) -> str | None:
    """The `lighting` of a simulator run: its run_info.yaml sits next to the bag, above it, or (the layout of
    `dlvf sim --bags`: OUT/bags/run_X next to OUT/run_X) in the run directory of the same name."""
    for directory in (bag, bag.parent, bag.parent.parent, bag.parent.parent / bag.name):
        info = directory / "run_info.yaml"
        if info.is_file():
            data = yaml.safe_load(info.read_text()) or {}
            if data.get("lighting") is not None:
                return str(data["lighting"])
    return None


def write_node_parameters(base: Path, out: Path, overrides: dict) -> Path:
    """A copy of the parameter file `base` with `overrides` set in the node's ros__parameters (dotted names, e.g.
    `localizer.initial_keyframe_id`, set the nested entry)."""
    data = yaml.safe_load(base.read_text()) or {}
    keys = [k for k in ("/**", f"/**/{NODE_NAME}", NODE_NAME, f"/{NODE_NAME}") if k in data]
    key = keys[-1] if keys else f"/**/{NODE_NAME}"
    parameters = data.setdefault(key, {}).setdefault("ros__parameters", {})
    for name, value in overrides.items():
        *groups, leaf = name.split(".")
        section = parameters
        for group in groups:
            section = section.setdefault(group, {})
        section[leaf] = value
    fileio.atomic_write_text(out, yaml.safe_dump(data, sort_keys=False))
    return out


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise SystemExit(f"dlvf replay: {out} exists and is not empty; choose another --out or pass --overwrite")
        if not (out / records.POSES_FILE).exists() and not (out / records.MANIFEST_FILE).exists():
            raise SystemExit(f"dlvf replay: refusing to overwrite {out}: it is not a replay recording")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def run(args: argparse.Namespace) -> int:
    from dlvf_ros.localization.map_store import MapStore, MapStoreError

    if args.rate <= 0:
        raise SystemExit(f"dlvf replay: --rate must be positive, got {args.rate}")
    try:
        summary = bag_summary(args.bag)
        store = MapStore.open(args.map)
        base_params_file = args.params_file or default_params_file()
    except (FileNotFoundError, MapStoreError) as exc:
        raise SystemExit(f"dlvf replay: {exc}") from exc
    n_frames = summary["topics"].get(LEFT_IMAGE_TOPIC, 0)
    if n_frames == 0:
        raise SystemExit(f"dlvf replay: {args.bag} has no {LEFT_IMAGE_TOPIC} messages (topics: {summary['topics']})")
    _prepare_out(args.out, args.overwrite)
    overrides = {"map_path": str(args.map.resolve()), "use_sim_time": True}
    if args.model is not None:
        overrides["model"] = str(args.model.resolve())
    if args.backend is not None:
        overrides["backend"] = args.backend
    if args.initial_keyframe is not None:
        if not 0 <= args.initial_keyframe < len(store):
            raise SystemExit(
                f"dlvf replay: --initial-keyframe {args.initial_keyframe} is not in the map (ids 0..{len(store) - 1})"
            )
        overrides["localizer.initial_keyframe_id"] = args.initial_keyframe
    params_file = write_node_parameters(base_params_file, args.out / "localizer_params.yaml", overrides)
    lighting = args.lighting or find_lighting(args.bag.resolve()) or "unknown"

    from dlvf_ros.replay.environment import apply_isolated_ros_environment

    apply_isolated_ros_environment()
    started = time.monotonic()
    result = _replay(args, params_file, n_frames)
    manifest = {
        "bag": str(args.bag.resolve()),
        "map": str(args.map.resolve()),
        "map_keyframes": len(store),
        "backend": args.backend or store.manifest["backend"],
        "model": overrides.get("model", ""),
        "lighting": lighting,
        "rate": args.rate,
        "params_file": params_file.name,
        "bag_frames": n_frames,
        "bag_duration_s": (summary["end_ns"] - summary["start_ns"]) * 1e-9,
        "wall_time_s": time.monotonic() - started,
        **result,
    }
    fileio.atomic_write_text(args.out / records.MANIFEST_FILE, json.dumps(manifest, indent=2))
    print(
        f"dlvf replay: {result['frame_results']} frame results, {result['poses']} poses for {n_frames} stereo "
        f"frames -> {args.out}"
    )
    logs = args.out / "logs"
    if result["localizer_exit_code"] != 0:
        raise ReplayError(
            f"localizer_node exited with code {result['localizer_exit_code']}: {result['node_reason']} (logs in {logs})"
        )
    if result["bag_player_exit_code"] != 0:
        raise ReplayError(f"bag_player exited with code {result['bag_player_exit_code']} (logs in {logs})")
    if result["poses"] == 0 and result["frame_errors"] == result["frame_results"]:
        # no frame went through the localizer without an error: the input or the setup is wrong
        raise ReplayError(
            f"localizer_node published no pose for the {n_frames} stereo frames of {args.bag}: "
            f"{result['node_reason'] or 'no reason reported'} (recording in {args.out})"
        )
    if result["poses"] == 0:  # frames were localized cleanly and none gave a fix: a result, not a failure
        print(f"dlvf replay: no frame was localized ({result['node_reason'] or 'no fix'})")
    return 0


def _replay(args: argparse.Namespace, params_file: Path, n_frames: int) -> dict:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from dlvf_ros.replay.processes import RosProcessError, python_module_command, start_ros_process
    from dlvf_ros.replay.recorder import OutputRecorder
    from dlvf_ros.ros.stereo_input import bag_remappings

    log_dir = args.out / "logs"
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    recorder = OutputRecorder(args.out, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(recorder)
    node = start_ros_process(
        python_module_command("dlvf_ros.ros.localizer_node"),
        node_name=NODE_NAME,
        remap=bag_remappings(),
        params_file=params_file,
        log_dir=log_dir,
    )
    player = None
    try:
        try:
            node.wait_ready(
                timeout_s=args.ready_timeout_s,
                publishes=["/localization/pose", "/" + FRAME_STATUS_TOPIC],
                subscribes=[LEFT_IMAGE_TOPIC],
                node=recorder,
            )
        except RosProcessError as exc:
            if node.alive():
                raise
            raise ReplayError(f"localizer_node did not start: {node.failure_reason()} (log {node.log_path})") from exc
        player = start_ros_process(
            python_module_command(
                "dlvf_ros.replay.bag_player", str(args.bag), "--rate", str(args.rate), "--wait-for", LEFT_IMAGE_TOPIC
            ),
            log_dir=log_dir,
        )
        with tqdm(total=n_frames, desc="replay", unit="frame") as progress:

            def spin_until(done) -> None:
                while not done():
                    executor.spin_once(timeout_sec=0.05)
                    progress.update(recorder.frame_statuses - progress.n)
                    if not node.alive():
                        raise ReplayError(
                            f"localizer_node exited with code {node.returncode} during the replay: "
                            f"{node.failure_reason()} (log {node.log_path})"
                        )

            spin_until(lambda: not player.alive())
            drain_started = time.monotonic()

            def drained() -> bool:
                last = recorder.last_frame_status_monotonic or drain_started
                return recorder.frame_statuses >= n_frames or time.monotonic() - max(last, drain_started) > args.drain_s

            spin_until(drained)
        frames = {
            k: recorder.last_summary.get(k, "") for k in ("frames_received", "frames_processed", "frames_dropped_stale")
        }
    finally:
        localizer_code = node.stop(timeout_s=20.0)
        player_code = player.stop() if player is not None else None
        recorder.close()
        executor.shutdown()
        recorder.destroy_node()
        rclpy.shutdown(context=context)
    return {
        "frame_results": recorder.frame_statuses,
        "frame_errors": recorder.frame_errors,
        "poses": recorder.poses.count,
        "localizer_exit_code": localizer_code,
        "bag_player_exit_code": player_code,
        "node_counters": frames,
        "node_reason": recorder.last_problem if localizer_code == 0 else node.failure_reason(),
        "logs": os.path.relpath(log_dir, args.out),
    }
