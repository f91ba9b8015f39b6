"""`dlvf demo`: a path taught at noon, repeated at other hours, localized by learned features, ORB and SIFT.

Steps, each a `dlvf` sub-command in its own process (the same code a user runs), each cached under `--work` by a
key of its inputs so a second run reuses what is still valid:
1. `dlvf sim --bags`: one world that no training run saw; a noon teach run and one repeat run per lighting.
2. `dlvf teach --bag`: one teach map per feature backend from the noon bag.
3. `dlvf replay`: every repeat bag through the real `localizer_node` process over DDS, with /clock.
4. `dlvf evaluate --per-frame`: errors against ground truth through the nodes, and the per-frame mode on the same
   bags beside it; then one table and one plot across backends and lightings: success, strict success, the wrong-fix
   rate (published poses outside the success bounds: the safety figure), inliers, errors, latency.
5. `dlvf closed-loop` per closed-loop backend on the same world (seed and style): sim_node, localizer_node and
   path_tracker_node drive a taught path at each closed-loop lighting, lock-step; its table and top-down plot.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from dlvf_ros import fileio
from dlvf_ros.config import load_config, to_dict
from dlvf_ros.evaluation.closed_loop import results_table
from dlvf_ros.evaluation.metrics import STRICT, SUCCESS, SuccessCriteria

BACKENDS = ("learned", "orb", "sift", "xfeat")


@dataclass
class DemoConfig:
    """What the demo renders and replays. Lengths in metres; `replay_rate` is the bag playback speed factor."""

    world_seed: int = 100  # no training or validation world has this seed (models/README.md)
    style: str = "demo"  # every held-out appearance member (dlvf_ros/sim/style.py): a world unlike any training one
    teach_lighting: str = "noon"
    lightings: list[str] = field(default_factory=lambda: ["morning", "evening", "overcast", "dusk", "night", "glare"])
    path_length_m: float = 40.0
    spacing_m: float = 0.5
    backends: list[str] = field(default_factory=lambda: list(BACKENDS))
    replay_rate: float = 2.0
    success: SuccessCriteria = field(default_factory=lambda: SUCCESS)
    closed_loop_lightings: list[str] = field(default_factory=lambda: ["night", "glare"])  # empty: no closed loop
    closed_loop_backends: list[str] = field(default_factory=lambda: ["learned", "orb"])
    closed_loop_path_length_m: float = 25.0

    def __post_init__(self) -> None:
        for name in ("backends", "closed_loop_backends"):
            unknown = sorted(set(getattr(self, name)) - set(BACKENDS))
            if unknown:
                raise ValueError(f"DemoConfig.{name}: unknown {unknown}; choose from {list(BACKENDS)}")
        if not self.lightings:
            raise ValueError("DemoConfig.lightings: give at least one repeat lighting")
        if not (self.path_length_m > 0 and self.spacing_m > 0 and self.replay_rate > 0):
            raise ValueError("DemoConfig: path_length_m, spacing_m and replay_rate must be > 0")
        if not self.closed_loop_path_length_m > 0:
            raise ValueError("DemoConfig: closed_loop_path_length_m must be > 0")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(".cache/demo"),
        help="working directory; cached world, maps and replays are reused (default .cache/demo)",
    )
    parser.add_argument("--config", type=Path, default=None, help="DemoConfig YAML (default: config/demo.yaml values)")
    parser.add_argument("--model", type=Path, default=None, help="exported model (default: the one shipped in models/)")
    parser.add_argument("--fresh", action="store_true", help="ignore the cache and redo every step")


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def source_fingerprint(*subpackages: str) -> str:
    """Hash of the Python sources of these dlvf_ros subpackages: a cached step is redone when the code behind it
    changes (a new localizer must not be scored with an old replay)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in subpackages:
        for path in sorted((package / name).rglob("*.py")):
            digest.update(str(path.relative_to(package)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class Step:
    """One cached `dlvf` sub-command: skipped when `marker` exists and `key_file` holds the same key."""

    def __init__(self, name: str, argv: list[str], key: str, marker: Path, log_dir: Path) -> None:
        self.name, self.argv, self.key, self.marker = name, argv, key, marker
        self.key_file = marker.parent / f".{marker.name}.demo-key"
        self.log = log_dir / f"{name.replace(' ', '_').replace('/', '_')}.log"

    def cached(self) -> bool:
        return self.marker.exists() and self.key_file.is_file() and self.key_file.read_text() == self.key

    def run(self) -> None:
        run_logged(self.name, self.argv, self.log, self.marker)
        fileio.atomic_write_text(self.key_file, self.key)


def run_logged(name: str, argv: list[str], log_path: Path, marker: Path) -> None:
    """Run `dlvf ARGV` in its own process with its output in `log_path`; SystemExit with the log's tail unless it
    exits 0 and leaves `marker`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        result = subprocess.run(
            [sys.executable, "-m", "dlvf_ros.cli", *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    if result.returncode != 0 or not marker.exists():
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
        raise SystemExit(f"dlvf demo: step '{name}' failed (exit {result.returncode}); log {log_path}:\n{tail}")


def plan(config: DemoConfig, work: Path, model: Path | None) -> tuple[list[Step], dict[str, list[Path]]]:
    """All steps in order, and the replay directories of each backend (in lighting order)."""
    logs = work / "logs"
    world = work / "world"
    runs = [config.teach_lighting, *config.lightings]
    world_key = _key(
        "world",
        config.world_seed,
        config.style,
        runs,
        config.path_length_m,
        config.spacing_m,
        source_fingerprint("sim", "data"),
    )
    steps = [
        Step(
            "render world",
            [
                "sim",
                "--out",
                str(world),
                "--seed",
                str(config.world_seed),
                "--style",
                config.style,
                "--teach-lighting",
                config.teach_lighting,
                "--lightings",
                ",".join(config.lightings),
                "--path-length",
                str(config.path_length_m),
                "--spacing",
                str(config.spacing_m),
                "--bags",
                "--overwrite",
            ],
            world_key,
            world / "bags" / f"run_{len(runs) - 1:06d}",
            logs,
        )
    ]
    if "learned" in config.backends and model is None:
        raise ValueError("demo plan: the learned backend needs a model")
    model_hash = fileio.sha256_file(model) if model is not None and "learned" in config.backends else None
    replays: dict[str, list[Path]] = {}
    for backend in config.backends:
        map_dir = work / "maps" / backend
        model_args = ["--model", str(model)] if backend == "learned" else []
        map_key = _key(
            world_key,
            backend,
            model_hash if backend == "learned" else None,
            source_fingerprint("features", "geometry", "matching", "localization", "ros", "replay"),
        )
        steps.append(
            Step(
                f"teach {backend}",
                [
                    "teach",
                    "--bag",
                    str(world / "bags" / "run_000000"),
                    "--out",
                    str(map_dir),
                    "--backend",
                    backend,
                    "--overwrite",
                    *model_args,
                ],
                map_key,
                map_dir / "manifest.json",
                logs,
            )
        )
        replays[backend] = []
        for run_id, lighting in enumerate(config.lightings, start=1):
            out = work / "replays" / backend / lighting
            steps.append(
                Step(
                    f"replay {backend} {lighting}",
                    [
                        "replay",
                        "--bag",
                        str(world / "bags" / f"run_{run_id:06d}"),
                        "--map",
                        str(map_dir),
                        "--out",
                        str(out),
                        "--rate",
                        str(config.replay_rate),
                        "--lighting",
                        lighting,
                        "--initial-keyframe",  # each repeat starts at the taught path's start
                        "0",
                        "--overwrite",
                        *model_args,
                    ],
                    _key(map_key, run_id, config.replay_rate),
                    out / "replay.json",
                    logs,
                )
            )
            replays[backend].append(out)
        replay_keys = [step.key for step in steps[-len(config.lightings) :]]
        steps.append(_evaluate_step(config, work, backend, model, replays[backend], replay_keys))
    if config.closed_loop_lightings:
        steps += [_closed_loop_step(config, work, backend, model) for backend in config.closed_loop_backends]
    return steps, replays


def _closed_loop_step(config: DemoConfig, work: Path, backend: str, model: Path | None) -> Step:
    """`dlvf closed-loop` of one backend on the demo's world, cached on its settings, model and code."""
    out = work / "closed_loop" / backend
    model_args = ["--model", str(model)] if backend == "learned" and model is not None else []
    argv = [
        "closed-loop",
        "--out",
        str(out),
        "--seed",
        str(config.world_seed),
        "--style",
        config.style,
        "--path-length",
        str(config.closed_loop_path_length_m),
        "--teach-lighting",
        config.teach_lighting,
        "--lightings",
        ",".join(config.closed_loop_lightings),
        "--backend",
        backend,
        "--overwrite",
        *model_args,
    ]
    key = _key(
        argv[2:],
        fileio.sha256_file(model) if model is not None and model_args else None,
        source_fingerprint("sim", "features", "geometry", "matching", "localization", "control", "ros", "replay"),
        source_fingerprint("evaluation"),
    )
    return Step(f"closed loop {backend}", argv, key, out / "closed_loop.json", work / "logs")


def _evaluate_step(
    config: DemoConfig, work: Path, backend: str, model: Path | None, replays: list[Path], replay_keys: list[str]
) -> Step:
    """`dlvf evaluate --per-frame` of one backend's replays, cached on them and on the scoring code."""
    out = work / "evaluation" / backend
    argv = [
        "evaluate",
        "--out",
        str(out),
        "--max-translation-error-m",
        str(config.success.max_translation_error_m),
        "--max-heading-error-deg",
        str(config.success.max_heading_error_deg),
        "--min-inliers",
        str(config.success.min_inliers),
        "--per-frame",
        *(["--model", str(model)] if backend == "learned" else []),
    ]
    for replay in replays:
        argv += ["--replay", str(replay)]
    key = _key(replay_keys, to_dict(config.success), source_fingerprint("evaluation", "localization"))
    return Step(f"evaluate {backend}", argv, key, out / "summary.json", work / "logs")


def table(config: DemoConfig, results: dict[str, dict]) -> str:
    """Text table: one row per lighting and backend; `results[backend]` is its `dlvf evaluate` summary.json."""
    header = (
        f"{'lighting':<10} {'backend':<8} {'success':>8} {'strict':>7} {'wrong fixes':>12} {'frames':>8} "
        f"{'inliers':>8} {'lateral m':>10} {'heading deg':>12} {'latency ms':>11} {'per-frame':>10} {'strict':>7}"
    )
    lines = [header, "-" * len(header)]
    for lighting in config.lightings:
        for i, backend in enumerate(config.backends):
            s = results[backend]["by_lighting"][lighting]
            per_frame = results[backend].get("per_frame", {}).get("by_lighting", {}).get(lighting)
            wrong = f"{100 * s['wrong_fix_rate']:.1f}% {s['wrong_fixes']:>2d}" if s["fixes_with_ground_truth"] else "-"
            per_frame_columns = (
                f"{100 * per_frame['success_rate']:>9.1f}% {100 * per_frame['strict_success_rate']:>6.1f}%"
                if per_frame
                else f"{'-':>10} {'-':>7}"
            )
            lines.append(
                f"{lighting if i == 0 else '':<10} {backend:<8} {100 * s['success_rate']:>7.1f}% "
                f"{100 * s['strict_success_rate']:>6.1f}% {wrong:>12} "
                f"{s['frames']:>3d}/{s['images']:<4d} {s['inliers_median']:>8.0f} "
                f"{s['lateral_m']['median_abs']:>10.3f} {s['heading_deg']['median_abs']:>12.2f} "
                f"{s['latency_ms_median']:>11.0f} {per_frame_columns}"
            )
    return "\n".join(lines)


def plot(config: DemoConfig, results: dict[str, dict], path: Path) -> None:
    """Success rate and median inliers per lighting, one bar per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(config.lightings))
    width = 0.8 / len(config.backends)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for i, backend in enumerate(config.backends):
        rows = [results[backend]["by_lighting"][lighting] for lighting in config.lightings]
        axes[0].bar(x + i * width, [100 * r["success_rate"] for r in rows], width, label=backend)
        axes[1].bar(x + i * width, [r["inliers_median"] for r in rows], width, label=backend)
    for ax, title in zip(axes, ("success rate (%)", "median RANSAC inliers")):
        ax.set_xticks(x + width * (len(config.backends) - 1) / 2, config.lightings)
        ax.set_title(f"{title}; taught at {config.teach_lighting}")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylim(0, 105)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=len(config.backends), frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))  # room below the axes for the legend, which covers no bar there
    with fileio.atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from dlvf_ros.package_share import shipped_model_path

    config = load_config(DemoConfig, args.config)
    model = args.model or shipped_model_path()
    if "learned" in config.backends and (model is None or not Path(model).is_file()):
        raise SystemExit("dlvf demo: no model; pass --model PATH or ship exactly one *.pt in models/")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    steps, _ = plan(config, work, Path(model).resolve() if model else None)
    started = time.perf_counter()
    with tqdm(steps, desc="demo", unit="step") as progress:
        for step in progress:
            progress.set_postfix_str(step.name)
            if args.fresh or not step.cached():
                step.run()
    results = {b: json.loads((work / "evaluation" / b / "summary.json").read_text()) for b in config.backends}
    report = table(config, results)
    plot(config, results, work / "demo.png")
    summary = {
        "config": to_dict(config),
        "model": str(model),
        "results": results,
        "wall_time_s": time.perf_counter() - started,
    }
    print(
        f"\nTaught at {config.teach_lighting} on world {config.world_seed}; success = localized "
        f"{config.success.describe()}, strict {STRICT.describe()}; wrong fixes = published poses outside the success "
        "bounds (% of published, count); per-frame = each frame against its nearest keyframe, no odometry."
    )
    print(report)
    closed_loop_runs: dict[str, dict] = {}
    for backend in config.closed_loop_backends if config.closed_loop_lightings else []:
        out = work / "closed_loop" / backend
        closed_loop = json.loads((out / "closed_loop.json").read_text())
        closed_loop_runs[backend] = closed_loop["runs"]
        print(f"\nClosed loop, {backend}: the path tracker drives the taught path by the localizer's poses (lock-step)")
        print(results_table(closed_loop["runs"]))
        print(f"plot: {out / 'closed_loop.png'}")
    summary["closed_loop"] = closed_loop_runs
    fileio.atomic_write_text(work / "demo_summary.json", json.dumps(summary, indent=2))
    print(f"\nplots: {work / 'demo.png'}, per backend: {work / 'evaluation'}; summary: {work / 'demo_summary.json'}")
    return 0
