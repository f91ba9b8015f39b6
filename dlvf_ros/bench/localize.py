"""`dlvf bench localize`: end-to-end localization latency per stereo frame, feature backends, stereo methods and
RANSAC sampling side by side.

Per backend and stereo method (`--stereo`, see `localization.frontend`): teach a short map from rendered (or bagged)
teach frames, then time `Localizer.process` on repeat frames 0.5 m beside the path: features + stereo + descriptor
matching (with match refinement at `--refine-radius`, `MatchingConfig.refine_radius`, for backends that can) +
RANSAC and refinement, on `--threads` CPU threads, with each RANSAC sampling of `--ransac-sampling` (uniform or
weighted by the matches' weights; `RansacConfig.weighted_sampling`). The candidates are timed interleaved, frame by
frame in a rotating order, so a change in the machine's load hits them all alike. Prints a table (median / p90 ms,
Hz, per-stage medians, the ratios to the learned model and to ORB with the same stereo method and sampling, to the
first stereo method with the same backend and sampling and, given two samplings, to the first sampling with the same
backend and stereo method, and, on rendered frames, the median pose error against ground truth) and writes JSON
(`--json`). XFeat is a row by default when its optional package is installed.
The learned model is `--model`, else the one shipped in models/, else an untrained exported network of the default
size: its cost is the same as a trained one's (the output says which was used). Floor: the learned model with the
first stereo method and sampling must run at >= 5 Hz; below it the command exits 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from dlvf_ros import fileio
from dlvf_ros.config import from_dict
from dlvf_ros.matching.descriptor_matching import MatchingConfig

log = logging.getLogger(__name__)

FLOOR_HZ = 5.0
STAGES = ("features", "stereo", "matching", "ransac")
SAMPLINGS = ("uniform", "weighted")  # RANSAC minimal samples drawn uniformly or by the match weights


def _sampling_name(weighted_sampling: bool) -> str:
    return SAMPLINGS[int(weighted_sampling)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dlvf_ros.features import xfeat_backend
    from dlvf_ros.localization.frontend import STEREO_METHODS, StereoConfig
    from dlvf_ros.localization.localizer import localizer_ransac

    parser.add_argument(
        "--backends",
        default="learned,orb,sift" + (",xfeat" if xfeat_backend.is_installed() else ""),
        help="comma-separated backends to compare (default: learned,orb,sift and xfeat when installed)",
    )
    parser.add_argument(
        "--stereo",
        default=StereoConfig().method,
        help=f"comma-separated stereo methods to compare ({', '.join(STEREO_METHODS)}; default: the default one)",
    )
    parser.add_argument(
        "--ransac-sampling",
        default=_sampling_name(localizer_ransac().weighted_sampling),
        help=f"comma-separated RANSAC samplings to compare ({', '.join(SAMPLINGS)}; default: the localizer's)",
    )
    parser.add_argument(
        "--refine-radius",
        type=int,
        default=MatchingConfig().refine_radius,
        help="match refinement radius (network px; 0: off; default: the localizer's)",
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
                yield i * 500_000_000, images.left, images.right, T, T  # odometry = map = world here

        teach = list(frames([pose_on_path(world, s) for s in np.arange(0.0, length_m + 2.0, 1.0)]))
        repeat = list(frames([pose_on_path(world, 1.0 + spacing_m * k, 0.5, np.deg2rad(3.0)) for k in range(n_repeat)]))
    return rig, teach, repeat


def _bag_frames(path: Path):
    from dlvf_ros.data.bags import read_stereo_bag

    rig, frames = read_stereo_bag(path)
    # no ground truth in the map frame (the teach odometry frame) for a bag
    return rig, [(f.stamp_ns, f.left, f.right, f.T_odom_vehicle, None) for f in frames if f.T_odom_vehicle is not None]


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


def _stereo_config(method: str):
    from dlvf_ros.localization.frontend import StereoConfig

    return from_dict(StereoConfig, {"method": method}, "--stereo")


def _teach(backend, stereo: str, rig, teach, workdir: Path) -> tuple[Path, int]:
    """(map path, keyframes) of a map taught from `teach` with `backend` and stereo method `stereo`."""
    from dlvf_ros.localization.teach import TeachConfig, Teacher

    path = workdir / f"map_{backend.name}_{stereo}"
    teacher = Teacher.create(path, backend, rig, TeachConfig(store_images=False, stereo=_stereo_config(stereo)))
    for stamp_ns, left, right, T_odom_vehicle, _ in teach:
        teacher.add_frame(stamp_ns, left, right, T_odom_vehicle)
    return path, teacher.num_keyframes


def _localizer(backend, stereo: str, sampling: str, refine_radius: int, rig, map_path: Path):
    """A localizer against the map at `map_path` with stereo method `stereo`, RANSAC sampling `sampling` and match
    refinement radius `refine_radius`."""
    from dlvf_ros.localization.frontend import StereoFrontend
    from dlvf_ros.localization.localizer import Localizer, LocalizerConfig, localizer_ransac
    from dlvf_ros.localization.map_store import MapStore

    ransac = dataclasses.replace(localizer_ransac(), weighted_sampling=sampling == "weighted")
    matching = MatchingConfig(refine_radius=refine_radius)
    config = LocalizerConfig(stereo=_stereo_config(stereo), matching=matching, ransac=ransac)
    return Localizer(MapStore.open(map_path), StereoFrontend(backend, rig, config.stereo), config)


def _summary(backend: str, stereo: str, sampling: str, keyframes: int, records: list[dict]) -> dict:
    totals = np.array([r["total_ms"] for r in records])
    errors = [r["error"] for r in records if r["error"] is not None]
    return {
        "backend": backend,
        "stereo": stereo,
        "ransac_sampling": sampling,
        "keyframes": keyframes,
        "frames": len(records),
        "fixed": sum(r["fixed"] for r in records),
        "median_inliers": float(np.median([r["inliers"] for r in records])),
        # median error of the fixed frames against ground truth (None without ground truth or fixes)
        "median_error_m": float(np.median([e[0] for e in errors])) if errors else None,
        "median_error_deg": float(np.median([e[1] for e in errors])) if errors else None,
        "median_ms": float(np.median(totals)),
        "p90_ms": float(np.percentile(totals, 90)),
        "hz": float(1000.0 / np.median(totals)),
        "stage_median_ms": {s: float(np.median([r["stages"].get(s, 0.0) for r in records])) for s in STAGES},
    }


def _bench(
    candidates: list[tuple[str, str, str]],
    model: Path | None,
    refine_radius: int,
    rig,
    teach,
    repeat,
    warmup: int,
    workdir: Path,
):
    """Teach a map per (backend, stereo) of the (backend, stereo, sampling) candidates, then time each candidate's
    localizer on each repeat frame in turn, in a rotating order."""
    from dlvf_ros.features.backends import make_backend
    from dlvf_ros.geometry import transforms

    backends = {name: make_backend(name, model if name == "learned" else None) for name, _, _ in candidates}
    maps = {}
    for name, stereo in dict.fromkeys((name, stereo) for name, stereo, _ in candidates):
        log.info("teaching %s / %s ...", name, stereo)
        maps[(name, stereo)] = _teach(backends[name], stereo, rig, teach, workdir)
    localizers = {
        (name, stereo, sampling): _localizer(
            backends[name], stereo, sampling, refine_radius, rig, maps[(name, stereo)][0]
        )
        for name, stereo, sampling in candidates
    }
    records: dict[tuple[str, str, str], list[dict]] = {candidate: [] for candidate in candidates}
    log.info("localizing ...")
    for k, (stamp_ns, left, right, T_odom_vehicle, T_map_vehicle_true) in enumerate(repeat):
        for candidate in candidates[k % len(candidates) :] + candidates[: k % len(candidates)]:
            localizer = localizers[candidate]
            start = time.perf_counter()
            result = localizer.process(stamp_ns, left, right, T_odom_vehicle)
            elapsed_ms = 1000 * (time.perf_counter() - start)
            if k < warmup:
                continue
            error = None
            if result.fixed and T_map_vehicle_true is not None:
                delta = transforms.invert(T_map_vehicle_true) @ result.T_map_vehicle
                error = (
                    float(np.linalg.norm(delta[:3, 3])),
                    float(np.rad2deg(transforms.rotation_angle(delta[:3, :3]))),
                )
            records[candidate].append(
                {
                    "total_ms": elapsed_ms,
                    "stages": result.timings_ms,
                    "fixed": int(result.fixed),
                    "inliers": result.num_inliers,
                    "error": error,
                }
            )
    return [
        _summary(name, stereo, sampling, maps[(name, stereo)][1], records[(name, stereo, sampling)])
        for name, stereo, sampling in candidates
    ]


def _format(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def run(args: argparse.Namespace) -> int:
    import cv2
    import torch

    from dlvf_ros.features import xfeat_backend
    from dlvf_ros.features.backends import BACKEND_NAMES
    from dlvf_ros.localization.frontend import STEREO_METHODS

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    stereo_methods = [m.strip() for m in args.stereo.split(",") if m.strip()]
    samplings = list(dict.fromkeys(m.strip() for m in args.ransac_sampling.split(",") if m.strip()))
    if not backends or args.frames < 1 or args.warmup < 0 or args.threads < 1:
        raise SystemExit("dlvf bench localize: need at least one backend, --frames >= 1, --warmup >= 0, --threads >= 1")
    unknown = sorted(set(backends) - set(BACKEND_NAMES))
    if unknown:
        raise SystemExit(f"dlvf bench localize: unknown backend(s) {unknown}; choose from {list(BACKEND_NAMES)}")
    if "xfeat" in backends and not xfeat_backend.is_installed():
        raise SystemExit(f"dlvf bench localize: {xfeat_backend.MISSING_EXTRA}")
    unknown = sorted(set(stereo_methods) - set(STEREO_METHODS))
    if not stereo_methods or unknown:
        raise SystemExit(
            f"dlvf bench localize: --stereo takes a comma-separated list of {', '.join(STEREO_METHODS)}; got {unknown}"
        )
    unknown = sorted(set(samplings) - set(SAMPLINGS))
    if not samplings or unknown:
        raise SystemExit(
            f"dlvf bench localize: --ransac-sampling takes a comma-separated list of {', '.join(SAMPLINGS)}; "
            f"got {unknown}"
        )
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
    model, model_note = None, None
    candidates = [(name, stereo, sampling) for sampling in samplings for stereo in stereo_methods for name in backends]
    with tempfile.TemporaryDirectory(prefix="dlvf_bench_localize_") as tmp:
        workdir = Path(tmp)
        if "learned" in backends:
            model, model_note = _learned_model(args.model, rig, workdir)
        results = _bench(candidates, model, args.refine_radius, rig, teach, repeat, args.warmup, workdir)

    by_key = {(r["backend"], r["stereo"], r["ransac_sampling"]): r for r in results}
    reference_backends = [b for b in ("learned", "orb") if b in backends] or backends[:1]
    reference_stereo, reference_sampling = stereo_methods[0], samplings[0]
    ratio_keys = [f"ratio_to_{b}" for b in reference_backends] + [f"ratio_to_{reference_stereo}"]
    if len(samplings) > 1:
        ratio_keys.append(f"ratio_to_{reference_sampling}")
    for r in results:
        backend, stereo, sampling = r["backend"], r["stereo"], r["ransac_sampling"]
        for reference in reference_backends:
            r[f"ratio_to_{reference}"] = r["median_ms"] / by_key[(reference, stereo, sampling)]["median_ms"]
        r[f"ratio_to_{reference_stereo}"] = r["median_ms"] / by_key[(backend, reference_stereo, sampling)]["median_ms"]
        if len(samplings) > 1:
            r[f"ratio_to_{reference_sampling}"] = (
                r["median_ms"] / by_key[(backend, stereo, reference_sampling)]["median_ms"]
            )
    stereo_width = max(len(m) for m in stereo_methods + ["stereo"])
    ratio_widths = [max(8, len(key) - len("ratio_to_") + 2) for key in ratio_keys]
    header = (
        f"{'backend':>8} {'stereo':>{stereo_width}} {'ransac':>8} {'frames':>6} {'fixed':>5} {'inliers':>7} "
        f"{'err m':>6} {'err deg':>7} {'median ms':>9} {'p90 ms':>7} {'Hz':>6} "
        + " ".join(f"{s:>9}" for s in STAGES)
        + "".join(f" {'x ' + key[len('ratio_to_') :]:>{w}}" for key, w in zip(ratio_keys, ratio_widths))
    )
    sampling_note = (
        f", x {reference_sampling}: to {reference_sampling} RANSAC sampling with the same backend and stereo"
        if len(samplings) > 1
        else ""
    )
    load = os.getloadavg()
    print(
        f"\nend-to-end localization per stereo frame, {rig.width}x{rig.height}, {args.threads} threads "
        f"(per-stage columns: median ms; x {' / x '.join(reference_backends)}: ratio to that backend with the same "
        f"stereo and sampling, x {reference_stereo}: to {reference_stereo} with the same backend and sampling"
        f"{sampling_note}; ransac: how RANSAC draws its samples; err: median pose error of the fixes; match "
        f"refinement radius {args.refine_radius}); machine load "
        f"average {load[0]:.1f} on {os.cpu_count()} CPUs (other processes slow every column)"
    )
    print(header)
    for r in results:
        print(
            f"{r['backend']:>8} {r['stereo']:>{stereo_width}} {r['ransac_sampling']:>8} {r['frames']:>6} "
            f"{r['fixed']:>5} {r['median_inliers']:>7.0f} {_format(r['median_error_m'], 6, 3)} "
            f"{_format(r['median_error_deg'], 7, 2)} {r['median_ms']:>9.1f} {r['p90_ms']:>7.1f} {r['hz']:>6.1f} "
            + " ".join(f"{r['stage_median_ms'][s]:>9.1f}" for s in STAGES)
            + "".join(f" {r[key]:>{w}.2f}" for key, w in zip(ratio_keys, ratio_widths))
        )
    learned = by_key.get(("learned", reference_stereo, reference_sampling))
    floor_ok = learned is None or learned["hz"] >= FLOOR_HZ
    if model_note:
        print(f"learned model: {model_note}")
    if learned is not None:
        print(
            f"floor: learned ({reference_stereo}, {reference_sampling}) {learned['hz']:.1f} Hz "
            f"{'>=' if floor_ok else '<'} {FLOOR_HZ:.0f} Hz: {'OK' if floor_ok else 'BELOW FLOOR'}"
        )
    if args.json is not None:
        report = {
            "benchmark": "localize",
            "width": rig.width,
            "height": rig.height,
            "threads": args.threads,
            "warmup_frames": args.warmup,
            "stereo_methods": stereo_methods,
            "ransac_samplings": samplings,
            "refine_radius": args.refine_radius,
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
