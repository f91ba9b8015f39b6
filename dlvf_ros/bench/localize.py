"""`dlvf bench localize`: end-to-end localization latency per stereo frame, feature backends side by side.

Per backend: teach a short map from rendered (or bagged) teach frames, then time `Localizer.process` on repeat
frames 0.5 m beside the path: features + SGBM stereo + descriptor matching + RANSAC, on `--threads` CPU threads.
Prints a table (median / p90 ms, Hz, per-stage medians, ratios to the learned model and to ORB) and writes JSON
(`--json`). XFeat is a row by default when its optional package is installed.
The learned model is `--model`, else the one shipped in models/, else an untrained exported network of the default
size: its cost is the same as a trained one's (the output says which was used). Floor: the learned model must run
at >= 5 Hz; below it the command exits 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from dlvf_ros import fileio

log = logging.getLogger(__name__)

FLOOR_HZ = 5.0
STAGES = ("features", "stereo", "matching", "ransac")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dlvf_ros.features import xfeat_backend

    parser.add_argument(
        "--backends",
        default="learned,orb,sift" + (",xfeat" if xfeat_backend.is_installed() else ""),
        help="comma-separated backends to compare (default: learned,orb,sift and xfeat when installed)",
    )
    parser.add_argument("--model", type=Path, default=None, help="exported model (default: shipped, else untrained)")
    parser.add_argument("--width", type=int, default=512, help="image width in pixels (rendered frames)")
    parser.add_argument("--height", type=int, default=384, help="image height in pixels (rendered frames)")
    parser.add_argument("--frames", type=int, default=12, help="timed repeat frames per backend (after warm-up)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first frames (start-up global search)")
    parser.add_argument("--threads", type=int, default=2, help="torch and OpenCV threads")
    parser.add_argument("--teach-bag", type=Path, default=None, help="teach frames from a bag instead of rendering")
    parser.add_argument("--repeat-bag", type=Path, default=None, help="repeat frames from a bag (with --teach-bag)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")


def _rendered_frames(width: int, height: int, n_repeat: int):
    """Rig, teach frames (noon, on the trail) and repeat frames (noon, 0.5 m aside, 3 deg) from the simulator."""
    from dlvf_ros.geometry.camera import StereoRig
    from dlvf_ros.sim.config import RenderConfig, WorldConfig
    from dlvf_ros.sim.lighting import lighting_preset
    from dlvf_ros.sim.renderer import StereoRenderer
    from dlvf_ros.sim.trajectory import pose_on_path
    from dlvf_ros.sim.world import generate_world

    spacing_m = 0.5
    length_m = spacing_m * (n_repeat + 4)
    world = generate_world(7, WorldConfig(path_length_m=length_m + 10, texture_size=256))
    rig = StereoRig().scaled(width, height)

    noon = lighting_preset("noon")
    with StereoRenderer(world, rig, RenderConfig()) as renderer:

        def frames(poses):
            for i, T in enumerate(poses):
                images = renderer.render(T, noon, noise_seed=i)
                yield i * 500_000_000, images.left, images.right, T

        teach = list(frames([pose_on_path(world, s) for s in np.arange(0.0, length_m + 2.0, 1.0)]))
        repeat = list(frames([pose_on_path(world, 1.0 + spacing_m * k, 0.5, np.deg2rad(3.0)) for k in range(n_repeat)]))
    return rig, teach, repeat


def _bag_frames(path: Path):
    from dlvf_ros.data.bags import read_stereo_bag

    rig, frames = read_stereo_bag(path)
    return rig, [(f.stamp_ns, f.left, f.right, f.T_odom_vehicle) for f in frames if f.T_odom_vehicle is not None]


def _learned_model(model: Path | None, rig, workdir: Path) -> tuple[Path, str]:
    from dlvf_ros.package_share import shipped_model_path

    if model is not None:
        return model, f"{model}"
    shipped = shipped_model_path()
    if shipped is not None:
        return shipped, f"{shipped} (shipped)"
    from dlvf_ros.features.export import export_feature_net
    from dlvf_ros.features.unet import FeatureNet

    path = workdir / "untrained.pt"
    export_feature_net(FeatureNet(), path, (rig.height - rig.height % 16, rig.width - rig.width % 16))
    return path, "untrained exported FeatureNet (default size; same cost as a trained model)"


def _bench_backend(name: str, model: Path | None, rig, teach, repeat, warmup: int, workdir: Path) -> dict:
    from dlvf_ros.features.backends import make_backend
    from dlvf_ros.localization.localizer import Localizer
    from dlvf_ros.localization.teach import TeachConfig, Teacher

    backend = make_backend(name, model)
    teacher = Teacher.create(workdir / f"map_{name}", backend, rig, TeachConfig(store_images=False))
    for stamp_ns, left, right, T_odom_vehicle in teach:
        teacher.add_frame(stamp_ns, left, right, T_odom_vehicle)
    localizer = Localizer.from_map(workdir / f"map_{name}", model)
    totals, stages, fixed, inliers = [], {s: [] for s in STAGES}, 0, []
    for k, (stamp_ns, left, right, T_odom_vehicle) in enumerate(repeat):
        start = time.perf_counter()
        result = localizer.process(stamp_ns, left, right, T_odom_vehicle)
        elapsed_ms = 1000 * (time.perf_counter() - start)
        if k < warmup:
            continue
        totals.append(elapsed_ms)
        for stage in STAGES:
            stages[stage].append(result.timings_ms.get(stage, 0.0))
        fixed += int(result.fixed)
        inliers.append(result.num_inliers)
    totals = np.array(totals)
    return {
        "backend": name,
        "keyframes": teacher.num_keyframes,
        "frames": len(totals),
        "fixed": fixed,
        "median_inliers": float(np.median(inliers)) if inliers else 0.0,
        "median_ms": float(np.median(totals)),
        "p90_ms": float(np.percentile(totals, 90)),
        "hz": float(1000.0 / np.median(totals)),
        "stage_median_ms": {s: float(np.median(v)) for s, v in stages.items()},
    }


def run(args: argparse.Namespace) -> int:
    import cv2
    import torch

    from dlvf_ros.features import xfeat_backend
    from dlvf_ros.features.backends import BACKEND_NAMES

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or args.frames < 1 or args.warmup < 0 or args.threads < 1:
        raise SystemExit("dlvf bench localize: need at least one backend, --frames >= 1, --warmup >= 0, --threads >= 1")
    unknown = sorted(set(backends) - set(BACKEND_NAMES))
    if unknown:
        raise SystemExit(f"dlvf bench localize: unknown backend(s) {unknown}; choose from {list(BACKEND_NAMES)}")
    if "xfeat" in backends and not xfeat_backend.is_installed():
        raise SystemExit(f"dlvf bench localize: {xfeat_backend.MISSING_EXTRA}")
    if (args.teach_bag is None) != (args.repeat_bag is None):
        raise SystemExit("dlvf bench localize: give both --teach-bag and --repeat-bag, or neither (renders frames)")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    if args.teach_bag is None:
        log.info("rendering frames (%dx%d) ...", args.width, args.height)
        rig, teach, repeat = _rendered_frames(args.width, args.height, args.frames + args.warmup)
    else:
        log.info("reading bags ...")
        rig, teach = _bag_frames(args.teach_bag)
        _, repeat = _bag_frames(args.repeat_bag)
        repeat = repeat[: args.frames + args.warmup]
    results, model_note = [], None
    with tempfile.TemporaryDirectory(prefix="dlvf_bench_localize_") as tmp:
        workdir = Path(tmp)
        for name in backends:
            model = None
            if name == "learned":
                model, model_note = _learned_model(args.model, rig, workdir)
            log.info("benchmarking %s ...", name)
            results.append(_bench_backend(name, model, rig, teach, repeat, args.warmup, workdir))

    references = [r for r in results if r["backend"] in ("learned", "orb")] or results[:1]
    header = (
        f"{'backend':>8} {'frames':>6} {'fixed':>5} {'inliers':>7} {'median ms':>9} {'p90 ms':>7} {'Hz':>6} "
        + " ".join(f"{s:>9}" for s in STAGES)
        + "".join(f" {'x ' + reference['backend']:>10}" for reference in references)
    )
    load = os.getloadavg()
    print(
        f"\nend-to-end localization per stereo frame, {rig.width}x{rig.height}, {args.threads} threads "
        f"(per-stage columns: median ms); machine load average {load[0]:.1f} on {os.cpu_count()} CPUs "
        "(other processes slow every column)"
    )
    print(header)
    for r in results:
        for reference in references:
            r["ratio_to_" + reference["backend"]] = r["median_ms"] / reference["median_ms"]
        print(
            f"{r['backend']:>8} {r['frames']:>6} {r['fixed']:>5} {r['median_inliers']:>7.0f} {r['median_ms']:>9.1f} "
            f"{r['p90_ms']:>7.1f} {r['hz']:>6.1f} "
            + " ".join(f"{r['stage_median_ms'][s]:>9.1f}" for s in STAGES)
            + "".join(f" {r['ratio_to_' + reference['backend']]:>10.2f}" for reference in references)
        )
    learned = next((r for r in results if r["backend"] == "learned"), None)
    floor_ok = learned is None or learned["hz"] >= FLOOR_HZ
    if model_note:
        print(f"learned model: {model_note}")
    if learned is not None:
        print(
            f"floor: learned {learned['hz']:.1f} Hz {'>=' if floor_ok else '<'} {FLOOR_HZ:.0f} Hz: "
            f"{'OK' if floor_ok else 'BELOW FLOOR'}"
        )
    if args.json is not None:
        report = {
            "benchmark": "localize",
            "width": rig.width,
            "height": rig.height,
            "threads": args.threads,
            "warmup_frames": args.warmup,
            "learned_model": model_note,
            "floor_hz": FLOOR_HZ,
            "floor_ok": floor_ok,
            "machine": {
                "cpu_count": os.cpu_count(),
                "load_average_1min": load[0],
                "platform": platform.platform(),
                "torch": torch.__version__,
                "opencv": cv2.__version__,
            },
            "results": results,
        }
        fileio.atomic_write_text(args.json, json.dumps(report, indent=2))
        log.info("wrote %s", args.json)
    return 0 if floor_ok else 1
