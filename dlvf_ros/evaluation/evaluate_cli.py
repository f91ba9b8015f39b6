"""`dlvf evaluate --replay DIR [--replay DIR ...] [--bag BAG ...] --map MAP --out DIR [--per-frame]`: errors
against ground truth.

Through the nodes: for each recorded replay (`dlvf replay`), the bag's /ground_truth/pose (world frame) is compared
with the recorded poses through the map keyframes' ground truth (see `dlvf_ros.evaluation.metrics`).
With --per-frame, the per-frame mode beside it: every image of the same bag against its ground-truth-nearest map
keyframe (`dlvf_ros.evaluation.per_frame`; the map's backend, --model for a learned map), no odometry, no submap.
Each protocol reports success, strict success (`metrics.STRICT`), median inliers and the wrong-fix rate.
Writes to --out: summary.json (criteria, pooled, per lighting, per run; "per_frame" likewise), frames_<run>.csv
(per-frame results; frames_<run>_per_frame.csv), PNG plots (errors, inliers and latency over time, per lighting,
trajectories) and TUM trajectories (tum/<run>_estimate.tum, tum/<run>_ground_truth.tum, map frame) for evo; and
prints a table.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from dlvf_ros import fileio
from dlvf_ros.config import to_dict
from dlvf_ros.evaluation import evaluate, metrics, plots, records, report, tum

LEFT_IMAGE_TOPIC = "/stereo/left/image_raw"
GROUND_TRUTH_TOPIC = "/ground_truth/pose"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = metrics.SUCCESS
    parser.add_argument("--replay", required=True, type=Path, action="append", help="replay directory (repeatable)")
    parser.add_argument(
        "--bag",
        type=Path,
        action="append",
        default=None,
        help="the bag of each --replay, in the same order (default: the one its replay.json names)",
    )
    parser.add_argument("--map", type=Path, default=None, help="teach map (default: the one replay.json names)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument(
        "--lighting", action="append", default=None, help="lighting label of each --replay (default: replay.json's)"
    )
    parser.add_argument(
        "--max-translation-error-m",
        type=float,
        default=defaults.max_translation_error_m,
        help=f"success bound on the planar error (default {defaults.max_translation_error_m} m)",
    )
    parser.add_argument(
        "--max-heading-error-deg",
        type=float,
        default=defaults.max_heading_error_deg,
        help=f"success bound on the heading error (default {defaults.max_heading_error_deg} deg)",
    )
    parser.add_argument(
        "--min-inliers",
        type=int,
        default=defaults.min_inliers,
        help=f"success needs at least this many inliers (default {defaults.min_inliers})",
    )
    parser.add_argument(
        "--max-ground-truth-gap-s",
        type=float,
        default=0.25,
        help="largest ground-truth sample gap to interpolate across (s, default 0.25)",
    )
    parser.add_argument(
        "--per-frame",
        action="store_true",
        help="also run the per-frame mode on the same bags (every image against its nearest keyframe)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="--per-frame on a learned map: its exported model (default: the replay's, else the shipped one)",
    )


def read_bag_ground_truth(bag: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """((K,) stamps_ns, (K, 4, 4) T_world_vehicle) of /ground_truth/pose and the number of left images."""
    from rosbags.highlevel import AnyReader

    from dlvf_ros.data import msg_codec
    from dlvf_ros.data.bags import typestore_for

    if not bag.exists():
        raise FileNotFoundError(f"bag {bag} does not exist")
    stamps, poses = [], []
    with AnyReader([bag], default_typestore=typestore_for("kilted")) as reader:
        by_topic = {c.topic: c for c in reader.connections}
        if GROUND_TRUTH_TOPIC not in by_topic:
            raise ValueError(
                f"bag {bag} has no {GROUND_TRUTH_TOPIC}: it cannot be evaluated (topics: {sorted(by_topic)})"
            )
        n_images = by_topic[LEFT_IMAGE_TOPIC].msgcount if LEFT_IMAGE_TOPIC in by_topic else 0
        for connection, _, raw in reader.messages(connections=[by_topic[GROUND_TRUTH_TOPIC]]):
            message: Any = reader.deserialize(raw, connection.msgtype)
            stamps.append(msg_codec.stamp_to_ns(message.header.stamp))
            poses.append(msg_codec.pose_to_matrix(message.pose))
    return np.asarray(stamps, dtype=np.int64), np.asarray(poses).reshape(-1, 4, 4), int(n_images)


def map_ground_truth(map_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """((J, 4, 4) T_map_keyframe, (J, 4, 4) T_world_keyframe) of a map taught with ground truth."""
    from dlvf_ros.localization.map_store import MapStore

    store = MapStore.open(map_path)
    T_world = []
    for entry in store.entries:
        T = store.keyframe(entry.keyframe_id).T_world_keyframe
        if T is None:
            raise ValueError(
                f"map {map_path}: keyframe {entry.keyframe_id} has no ground truth (T_world_keyframe); "
                "teach from a bag with /ground_truth/pose to evaluate against it"
            )
        T_world.append(T)
    return np.stack([e.T_map_keyframe for e in store.entries]), np.stack(T_world)


def _frames_csv(run: evaluate.RunEvaluation) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    keys = list(run.errors)
    writer.writerow(
        ["stamp_ns", "localized", "success", "strict", "wrong_fix", "state", "inliers", "latency_ms", *keys]
    )
    for i in range(len(run.stamp_ns)):
        writer.writerow(
            [
                int(run.stamp_ns[i]),
                int(run.localized[i]),
                int(run.success[i]),
                int(run.strict_success[i]),
                int(run.wrong_fix[i]),
                run.state[i],
                int(run.inliers[i]),
                f"{run.latency_ms[i]:.1f}",
                *(f"{run.errors[k][i]:.4f}" for k in keys),
            ]
        )
    return buffer.getvalue()


def _resolve_inputs(args: argparse.Namespace) -> list[tuple[records.Replay, Path, str]]:
    if args.bag is not None and len(args.bag) != len(args.replay):
        raise SystemExit(
            f"dlvf evaluate: give one --bag per --replay ({len(args.bag)} bags, {len(args.replay)} "
            "replays), or none to use the bags the replays name"
        )
    if args.lighting is not None and len(args.lighting) != len(args.replay):
        raise SystemExit("dlvf evaluate: give one --lighting per --replay, or none")
    inputs = []
    for i, directory in enumerate(args.replay):
        replay = records.read_replay(directory)
        bag = args.bag[i] if args.bag else Path(replay.manifest.get("bag", ""))
        lighting = args.lighting[i] if args.lighting else str(replay.manifest.get("lighting", "unknown"))
        inputs.append((replay, bag, lighting))
    return inputs


def _per_frame(args, map_path: Path, inputs, truths, criteria) -> list[evaluate.RunEvaluation]:
    """The per-frame mode on every replay's bag (see the module docstring)."""
    from dlvf_ros.data.bags import read_stereo_bag
    from dlvf_ros.evaluation.per_frame import evaluate_bag_per_frame
    from dlvf_ros.features.backends import make_backend
    from dlvf_ros.localization.frontend import StereoFeatures, StereoFrontend
    from dlvf_ros.localization.localizer import LocalizerConfig
    from dlvf_ros.localization.map_store import MapStore
    from dlvf_ros.localization.per_frame import PerFrameLocalizer
    from dlvf_ros.package_share import shipped_model_path

    store = MapStore.open(map_path)
    models = {args.model} if args.model else {r.manifest.get("model") or None for r, _, _ in inputs}
    if len(models) != 1:
        raise ValueError(f"the replays used different models {sorted(map(str, models))}; pass --model")
    model, backend = models.pop(), store.manifest["backend"]
    if backend != "learned":
        model = None
    elif model is None:
        model = shipped_model_path()
        if model is None:
            raise ValueError(f"map {map_path} is a learned map: pass --model (no single shipped model in models/)")
    config = LocalizerConfig()
    config.stereo = store.taught_stereo()
    localizer = PerFrameLocalizer(StereoFrontend(make_backend(backend, model), store.rig, config.stereo), config)
    store.check_compatible(localizer.frontend.backend, store.rig, config.stereo.method)

    def keyframe(keyframe_id: int) -> StereoFeatures:
        k = store.keyframe(keyframe_id)
        return StereoFeatures(k.features, k.points_camera, k.valid)

    runs = []
    for (_, bag, lighting), (name, truth, n_images) in zip(inputs, truths):
        _, frames = read_stereo_bag(bag)
        runs.append(
            evaluate_bag_per_frame(
                ((f.stamp_ns, f.left, f.right) for f in frames),
                truth,
                keyframe,
                localizer,
                criteria,
                args.max_ground_truth_gap_s,
                n_images,
                name,
                lighting,
            )
        )
    return runs


def _summaries(runs: list[evaluate.RunEvaluation]) -> dict:
    return {
        "overall": evaluate.summarize(runs),
        "by_lighting": evaluate.summarize_by_lighting(runs),
        "runs": {run.name: evaluate.summarize([run]) for run in runs},
    }


def _write_run(out: Path, run: evaluate.RunEvaluation, suffix: str) -> None:
    fileio.atomic_write_text(out / f"frames_{run.name}{suffix}.csv", _frames_csv(run))
    tum.write_tum(
        out / "tum" / f"{run.name}{suffix}_estimate.tum",
        run.stamp_ns[run.localized],
        run.T_map_vehicle_est[run.localized],
    )
    tum.write_tum(
        out / "tum" / f"{run.name}{suffix}_ground_truth.tum",
        run.stamp_ns[run.has_ground_truth],
        run.T_map_vehicle_gt[run.has_ground_truth],
    )


def run(args: argparse.Namespace) -> int:
    try:
        criteria = metrics.SuccessCriteria(args.max_translation_error_m, args.max_heading_error_deg, args.min_inliers)
        inputs = _resolve_inputs(args)
        map_paths = {args.map} if args.map else {Path(r.manifest.get("map", "")) for r, _, _ in inputs}
        if len(map_paths) != 1:
            raise SystemExit(
                f"dlvf evaluate: the replays use different maps {sorted(map(str, map_paths))}; "
                "evaluate them separately or pass --map"
            )
        map_path = map_paths.pop()
        T_map_keyframe, T_world_keyframe = map_ground_truth(map_path)
        runs, truths, names = [], [], set()
        for replay, bag, lighting in inputs:
            stamps, T_world_vehicle, n_images = read_bag_ground_truth(bag)
            name = replay.path.resolve().name
            while name in names:
                name += "_"
            names.add(name)
            truth = evaluate.GroundTruth(stamps, T_world_vehicle, T_map_keyframe, T_world_keyframe)
            truths.append((name, truth, n_images))
            runs.append(
                evaluate.evaluate_replay(
                    replay, truth, n_images, criteria, args.max_ground_truth_gap_s, name=name, lighting=lighting
                )
            )
        per_frame = _per_frame(args, map_path, inputs, truths, criteria) if args.per_frame else []
    except (records.ReplayRecordError, ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"dlvf evaluate: {exc}") from exc

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "criteria": {"success": to_dict(criteria), "strict": to_dict(metrics.STRICT)},
        "max_ground_truth_gap_s": args.max_ground_truth_gap_s,
        **_summaries(runs),
    }
    if per_frame:
        summary["per_frame"] = _summaries(per_frame)
    fileio.atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    for run in runs:
        _write_run(out, run, "")
    for run in per_frame:
        _write_run(out, run, "_per_frame")
    plots.plot_errors(runs, out / "errors.png", criteria.max_translation_error_m, criteria.max_heading_error_deg)
    plots.plot_inliers_latency(runs, out / "inliers_latency.png")
    plots.plot_per_lighting(summary["by_lighting"], out / "per_lighting.png")
    plots.plot_trajectories(runs, out / "trajectories.png")

    def protocols(key: str, sub: str | None = None) -> dict[str, dict]:
        row = {report.NODES: summary[key] if sub is None else summary[key][sub]}
        if per_frame:
            row[report.PER_FRAME] = summary["per_frame"][key] if sub is None else summary["per_frame"][key][sub]
        return row

    rows = {f"{r.name} ({r.lighting})": protocols("runs", r.name) for r in runs}
    if len(runs) > 1:
        rows.update({f"lighting {k}": protocols("by_lighting", k) for k in summary["by_lighting"]})
        rows["all"] = protocols("overall")
    print(report.summary_table(rows))
    print(
        f"dlvf evaluate: success {criteria.describe()}, strict {metrics.STRICT.describe()}; wrong fixes: published "
        f"poses outside the success bounds; results in {out}"
    )
    return 0
