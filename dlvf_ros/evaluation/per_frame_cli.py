"""`dlvf test --data ROOT --model MODEL_OR_CHECKPOINT --out DIR`: the per-frame mode on a dataset.

Each later run is localized against each earlier one, frame by frame, against the metrically closest vertex of the
earlier run, by the localizer's own matching, RANSAC and refinement (`dlvf_ros.evaluation.per_frame`); no odometry,
no submap. A dataset has no through-the-nodes result (that is `dlvf replay` + `dlvf evaluate` on bags).
Writes DIR/test_results.json (summary, per lighting, per run pair, criteria, config, model), DIR/frames.csv (one row
per frame) and DIR/test_results.png.
Runs: --runs, else the config's `runs`, else the test split of --dataset (its runs in this root), else every run.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dlvf_ros import fileio
from dlvf_ros.config import load_config, to_dict
from dlvf_ros.data.utias import UtiasDataset
from dlvf_ros.evaluation import evaluate, metrics, plots, report
from dlvf_ros.evaluation.per_frame import evaluate_dataset_per_frame
from dlvf_ros.features.backends import BACKEND_NAMES, make_backend
from dlvf_ros.localization.frontend import StereoFeatures, StereoFrontend
from dlvf_ros.localization.per_frame import PerFrameLocalizer
from dlvf_ros.training.checkpoint_backend import load_backend
from dlvf_ros.training.config import PerFrameConfig
from dlvf_ros.training.disparity_cache import resized_rgb


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="UTIAS-layout dataset root with the runs to test")
    parser.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        default="learned",
        help="feature backend (default learned; orb and sift need no --model)",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="learned backend: training checkpoint (.pt) or exported model; omit for an untrained default network",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--config", default=None, help="PerFrameConfig YAML/JSON (default: built-in, see config/test.yaml)"
    )
    parser.add_argument("--runs", type=int, nargs="+", default=None, help="run ids to test (overrides the config)")
    parser.add_argument(
        "--map-run",
        type=int,
        default=None,
        help="localize every other run against this one only, e.g. 0 (the teach run); overrides the config",
    )
    parser.add_argument("--dataset", default=None, help="a `dlvf dataset` directory: test its test-split runs")


def choose_runs(args: argparse.Namespace, config: PerFrameConfig, dataset: UtiasDataset) -> list[int]:
    if args.runs:
        return sorted(args.runs)
    if config.runs:
        return sorted(config.runs)
    if args.dataset:
        from dlvf_ros.training.dataset import DatasetManifest

        manifest = DatasetManifest.load(args.dataset)
        root = dataset.root.resolve()
        indices = [i for i, path in enumerate(manifest.roots) if path.resolve() == root]
        if not indices:
            raise ValueError(f"--dataset {args.dataset} was not built from {dataset.root}; its roots: {manifest.roots}")
        return sorted({run for index, run in manifest.members("test") if index == indices[0]})
    return dataset.run_ids


def _backend(args: argparse.Namespace):
    """(backend, its preferred (width, height) or None)."""
    if args.backend == "learned":
        return load_backend(args.model)
    if args.model is not None:
        raise ValueError(f"--model is for --backend learned, not {args.backend}; drop it")
    return make_backend(args.backend), None


def _frames_csv(frames, evaluations) -> str:
    text = io.StringIO()
    writer = csv.writer(text)
    keys = list(evaluations[0].errors)
    writer.writerow(
        ["run", "pose", "stamp_ns", "map_run", "map_pose", "lighting", "inliers"]
        + ["localized", "success", "strict", "wrong_fix"]
        + keys
    )
    rows = iter(frames)
    for evaluation in evaluations:
        for i in range(len(evaluation.stamp_ns)):
            frame = next(rows)
            writer.writerow(
                [frame.run, frame.pose, frame.stamp_ns, frame.map_run, frame.map_pose, evaluation.lighting]
                + [int(evaluation.inliers[i])]
                + [int(m[i]) for m in (evaluation.localized, evaluation.success, evaluation.strict_success)]
                + [int(evaluation.wrong_fix[i])]
                + [f"{evaluation.errors[k][i]:.4f}" for k in keys]
            )
    return text.getvalue()


def run(args: argparse.Namespace) -> int:
    config = load_config(PerFrameConfig, args.config)
    dataset = UtiasDataset(args.data)
    backend, model_size = _backend(args)
    size: tuple[int, int]
    if config.image_width is not None and config.image_height is not None:
        size = (config.image_width, config.image_height)
    else:
        size = model_size or (dataset.rig.width, dataset.rig.height)
    runs = choose_runs(args, config, dataset)
    torch.set_num_threads(config.torch_threads)
    # the reference: dense SGBM at the test size, as training's disparities
    localizer_config = config.localizer_config(size[0])
    frontend = StereoFrontend(backend, dataset.rig.scaled(*size), localizer_config.stereo)
    localizer = PerFrameLocalizer(frontend, localizer_config)
    cache: dict[tuple[int, int], StereoFeatures] = {}

    def images(vertex: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        left, right = (resized_rgb(dataset.root, vertex, side, *size) for side in ("left", "right"))
        return left, right

    def features(vertex: tuple[int, int], current: bool) -> StereoFeatures:
        """A vertex's features, cached (a teach vertex is the nearest of many frames), except a frame to localize
        with match refinement on: it holds its resampler (the network's encoder maps)."""
        if current and localizer.refines_matches:
            return localizer.frame_features(*images(vertex))
        if vertex not in cache:
            cache[vertex] = frontend.process(*images(vertex))
        return cache[vertex]

    started = time.perf_counter()
    evaluations, frames = evaluate_dataset_per_frame(
        dataset,
        features,
        localizer,
        runs,
        config.success,
        config.frame_stride,
        config.max_edges,
        progress=lambda jobs: tqdm(jobs, desc="localize", unit="frame", leave=False),
        map_run=args.map_run if args.map_run is not None else config.map_run,
    )
    summary = evaluate.summarize(evaluations)
    per_lighting = evaluate.summarize_by_lighting(evaluations)
    per_run_pair = {e.name: evaluate.summarize([e]) for e in evaluations}
    out = Path(args.out)
    result = {
        "summary": summary,
        "per_lighting": per_lighting,
        "per_run_pair": per_run_pair,
        "criteria": {"success": to_dict(config.success), "strict": to_dict(metrics.STRICT)},
        "runs": runs,
        "image_size": list(size),
        "model": backend.signature(),
        "data": str(dataset.root),
        "config": to_dict(config),
        "sgbm": to_dict(localizer_config.stereo.sgbm),  # the disparity range used at this image size
        "wall_time_s": time.perf_counter() - started,
    }
    fileio.atomic_write_text(out / "test_results.json", json.dumps(result, indent=1, default=str))
    fileio.atomic_write_text(out / "frames.csv", _frames_csv(frames, evaluations))
    plots.plot_per_frame_results(
        per_run_pair, evaluations, config.success, out / "test_results.png", title=str(args.model or args.backend)
    )
    rows = {f"lighting {label}": {report.PER_FRAME: s} for label, s in per_lighting.items()}
    rows[f"runs {','.join(map(str, runs))}"] = {report.PER_FRAME: summary}
    print(report.summary_table(rows))
    print(
        f"dlvf test: success {config.success.describe()}, strict {metrics.STRICT.describe()}; wrong fixes: "
        f"localized outside the success bounds; results in {out}/test_results.json, plot {out}/test_results.png"
    )
    return 0
