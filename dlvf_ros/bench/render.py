"""`dlvf bench render`: synthetic stereo rendering throughput (stereo pairs/s), candidates side by side.

One world (default config or `--config`, `--seed`) and its teach trajectory; for each image size, `render_run`
renders `--frames` consecutive frames (left + right colour, left float depth, read back to numpy) after `--warmup`
frames, under each lighting of `--lightings` (noon: shadow map + sun; night: headlights). Reported per row: pairs/s
over the timed frames (wall clock), median ms per pair, CPU ms per pair (all threads of this process: what the
rendering costs whatever else runs on the machine) and pairs/s / floor. Floors on 2 cores: 8 pairs/s at 512x384,
14 at 320x240 (exit status 1 if a row at those sizes falls below its floor). The load average is printed: on a busy
machine the wall-clock rate drops while the CPU cost does not.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path

from dlvf_ros import fileio
from dlvf_ros.sim.sim_cli import parse_size

log = logging.getLogger(__name__)

FLOORS_PAIRS_PER_S = {(512, 384): 8.0, (320, 240): 14.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes", default="512x384,320x240", help="comma-separated WIDTHxHEIGHT (default: the two sizes with floors)"
    )
    parser.add_argument("--lightings", default="noon,night", help="comma-separated lightings (default noon,night)")
    parser.add_argument("--frames", type=int, default=40, help="timed frames per row (default 40)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames first (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    parser.add_argument("--config", type=Path, default=None, help="SimConfig YAML/JSON (default: built-in defaults)")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON to this path")


def bench_row(world, trajectory, renderer, lighting, frames: int, warmup: int) -> dict:
    from dlvf_ros.sim.frames import render_run

    times_s: list[float] = []
    start, cpu_start = time.perf_counter(), time.process_time()
    run = render_run(world, trajectory, lighting, renderer=renderer)
    for k in range(warmup + frames):
        if k == warmup:
            start, cpu_start = time.perf_counter(), time.process_time()
        tick = time.perf_counter()
        next(run)
        if k >= warmup:
            times_s.append(time.perf_counter() - tick)
    wall_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    run.close()
    return {
        "pairs_per_s": frames / wall_s,
        "median_ms_per_pair": 1000.0 * statistics.median(times_s),
        "cpu_ms_per_pair": 1000.0 * cpu_s / frames,
    }


def run(args: argparse.Namespace) -> int:
    from dlvf_ros.config import load_config
    from dlvf_ros.geometry.camera import StereoRig
    from dlvf_ros.sim.config import SimConfig
    from dlvf_ros.sim.lighting import lighting_preset
    from dlvf_ros.sim.renderer import StereoRenderer, gl_context
    from dlvf_ros.sim.trajectory import teach_trajectory
    from dlvf_ros.sim.world import generate_world

    try:
        sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
        lightings = [lighting_preset(n.strip()) for n in args.lightings.split(",") if n.strip()]
        rigs = [StereoRig().scaled(w, h) for w, h in sizes]
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise SystemExit(f"dlvf bench render: {exc}") from None
    if args.frames < 1 or args.warmup < 0:
        raise SystemExit("dlvf bench render: --frames must be >= 1 and --warmup >= 0")
    config = load_config(SimConfig, args.config)
    world = generate_world(args.seed, config.world, progress=True)
    trajectory = teach_trajectory(world, config.trajectory, config.odometry)
    if len(trajectory) < args.warmup + args.frames:
        raise SystemExit(f"dlvf bench render: the path has {len(trajectory)} frames; lower --frames or --warmup")

    rows = []
    for (width, height), rig in zip(sizes, rigs):
        with StereoRenderer(world, rig, config.render) as renderer:
            for lighting in lightings:
                row = {
                    "size": f"{width}x{height}",
                    "lighting": lighting.name,
                    **bench_row(world, trajectory, renderer, lighting, args.frames, args.warmup),
                }
                floor = FLOORS_PAIRS_PER_S.get((width, height))
                row["floor_pairs_per_s"] = floor
                row["ratio_to_floor"] = None if floor is None else row["pairs_per_s"] / floor
                rows.append(row)
                log.info("%s %s: %.1f pairs/s", row["size"], lighting.name, row["pairs_per_s"])

    load = os.getloadavg()
    print(f"\n{'size':<9} {'lighting':<9} {'pairs/s':>8} {'median ms':>10} {'cpu ms':>8} {'floor':>6} {'ratio':>6}")
    for row in rows:
        floor_text = "-" if row["floor_pairs_per_s"] is None else f"{row['floor_pairs_per_s']:.0f}"
        ratio_text = "-" if row["ratio_to_floor"] is None else f"{row['ratio_to_floor']:.2f}"
        print(
            f"{row['size']:<9} {row['lighting']:<9} {row['pairs_per_s']:>8.1f} {row['median_ms_per_pair']:>10.1f} "
            f"{row['cpu_ms_per_pair']:>8.1f} {floor_text:>6} {ratio_text:>6}"
        )
    print(f"load average {load[0]:.2f} on {os.cpu_count()} cores; renderer: {gl_context().info['GL_RENDERER']}")
    missed = [r for r in rows if r["ratio_to_floor"] is not None and r["ratio_to_floor"] < 1.0]
    if missed:
        print("below floor: " + ", ".join(f"{r['size']} {r['lighting']}" for r in missed))

    if args.json:
        result = {
            "benchmark": "render",
            "seed": args.seed,
            "frames": args.frames,
            "warmup": args.warmup,
            "rows": rows,
            "load_average_1min": load[0],
            "cpu_count": os.cpu_count(),
            "gl_renderer": gl_context().info["GL_RENDERER"],
            "machine": platform.machine(),
        }
        fileio.atomic_write_text(args.json, json.dumps(result, indent=2))
        log.info("wrote %s", args.json)
    return 1 if missed else 0
