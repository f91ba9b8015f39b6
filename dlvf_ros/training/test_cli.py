"""`dlvf test --data ROOT --model MODEL_OR_CHECKPOINT --out DIR`: localize later runs against earlier ones.

Writes DIR/test_results.json (summary, config, model), DIR/frames.csv (one row per frame) and DIR/test_results.png.
Runs: --runs, else the config's `runs`, else the test split of --dataset (its runs in this root), else every run.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from tqdm import tqdm

from dlvf_ros import fileio
from dlvf_ros.config import load_config, to_dict
from dlvf_ros.data.utias import UtiasDataset
from dlvf_ros.training.config import TestConfig
from dlvf_ros.training.evaluate import DOF, evaluate, load_backend
from dlvf_ros.training.plots import plot_test_results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="UTIAS-layout dataset root with the runs to test")
    parser.add_argument(
        "--model",
        default=None,
        help="training checkpoint (.pt) or exported model; omit for an untrained default network",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--config", default=None, help="TestConfig YAML/JSON (default: built-in, see config/test.yaml)")
    parser.add_argument("--runs", type=int, nargs="+", default=None, help="run ids to test (overrides the config)")
    parser.add_argument("--dataset", default=None, help="a `dlvf dataset` directory: test its test-split runs")


def choose_runs(args: argparse.Namespace, config: TestConfig, dataset: UtiasDataset) -> list[int]:
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


def run(args: argparse.Namespace) -> int:
    config = load_config(TestConfig, args.config)
    dataset = UtiasDataset(args.data)
    backend, model_size = load_backend(args.model)
    if config.image_width is not None:
        size = (config.image_width, config.image_height)
    else:
        size = model_size or (dataset.rig.width, dataset.rig.height)
    runs = choose_runs(args, config, dataset)
    summary, frames = evaluate(
        dataset,
        backend,
        size,
        runs,
        config,
        progress=lambda jobs: tqdm(jobs, desc="localize", unit="frame", leave=False),
    )
    out = Path(args.out)
    result = {
        "summary": summary,
        "runs": runs,
        "image_size": list(size),
        "model": backend.signature(),
        "data": str(dataset.root),
        "config": to_dict(config),
    }
    fileio.atomic_write_text(out / "test_results.json", json.dumps(result, indent=1, default=str))
    text = io.StringIO()
    fields = [
        "run",
        "pose",
        "map_run",
        "map_pose",
        "lighting",
        "map_lighting",
        "matches",
        "inliers",
        "localized",
        "success",
        "match_ms",
        *DOF,
    ]
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    for frame in frames:
        writer.writerow({**{k: frame[k] for k in fields if k in frame}, **{k: frame["errors"].get(k, "") for k in DOF}})
    fileio.atomic_write_text(out / "frames.csv", text.getvalue())
    plot_test_results(summary, frames, out / "test_results.png", title=str(args.model or "untrained network"))
    rmse = summary["rmse"]
    print(f"{'runs':<16} {'frames':>7} {'success':>8} {'med. inliers':>13} " + " ".join(f"{k:>10}" for k in DOF))
    print(
        f"{','.join(map(str, runs)):<16} {summary['frames']:>7} {100 * summary['success_rate']:>7.1f}% "
        f"{summary['inliers']['median_abs']:>13.1f} " + " ".join(f"{rmse[k]:>10.3f}" for k in DOF)
    )
    for lighting, group in summary["per_lighting"].items():
        print(
            f"  lighting {lighting:<12} frames {group['frames']:>5}  success {100 * group['success_rate']:5.1f}%  "
            f"median inliers {group['median_inliers']:.0f}"
        )
    print(
        f"translation RMSE {summary['translation_rmse_m']:.3f} m, "
        f"rotation RMSE {summary['rotation_rmse_deg']:.2f} deg; "
        f"results in {out}/test_results.json, plot {out}/test_results.png"
    )
    return 0
