"""`dlvf sim --out DIR --seed S`: render a synthetic teach-and-repeat world to the UTIAS layout (and bags).

Run 0 is the teach run (under --teach-lighting); run i >= 1 repeats the path under the i-th of --lightings.
The world's style (style.py) is drawn from the seed unless --style names it; it is printed, written to
DIR/sim_config.yaml (with the settings used) and to every run's run_info.yaml. Writes DIR/run_XXXXXX/... (UTIAS
layout, dlvf_ros.data.utias.UtiasWriter), DIR/bags/run_XXXXXX (one rosbag2 bag per run with --bags) and
DIR/contact_sheet.png (places x lightings). `--style-sheet` instead renders one view of each of the styles that
together use every member of every family, under each of --lightings, to DIR/style_sheet.png.

`dlvf sim --live [--seed S] [--style X] [--lightings ONE] [--size WxH] [--path-length L] [--ros-args ...]` runs the
simulated robot in the loop instead (sim_node, dlvf_ros/ros/sim_node.py): it publishes stereo, odometry, tf, /clock
and ground truth and drives by cmd_vel; its other parameters follow --ros-args (e.g. `-p mode:=teach -p
clock:=realtime`).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from dlvf_ros import fileio
from dlvf_ros.config import load_config, to_dict
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.sim.config import SimConfig

RUN_DIR = re.compile(r"^run_\d{6}$")
ALL_LIGHTINGS = "noon,morning,evening,overcast,dusk,night,glare"


def parse_size(text: str) -> tuple[int, int]:
    """'512x384' -> (512, 384)."""
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"image size must look like 512x384, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None, help="dataset directory to write (required unless --live)")
    parser.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    parser.add_argument(
        "--lightings",
        default=None,
        help="comma-separated repeat-run lightings: presets (noon, morning, evening, overcast, dusk, night, "
        "glare) or hours 0-24, optionally NAME@AZ (sun azimuth AZ deg clockwise from the direction of travel); "
        f"one repeat run each (default: all presets, {ALL_LIGHTINGS}); with --live one lighting (default noon)",
    )
    parser.add_argument("--teach-lighting", default="noon", help="lighting of the teach run (default noon)")
    parser.add_argument(
        "--style",
        default=None,
        help="world style: drawn (the seed's own, never a test member), training (neither held-out set), "
        "held_out_test, held_out_validation, classic (the look before styles), demo, and/or family=member "
        "overrides, e.g. ground=snow,camera=cheap_cmos; or a YAML file of family: member (default: the config's "
        "world.style, drawn)",
    )
    parser.add_argument(
        "--style-sheet",
        action="store_true",
        help="render OUT/style_sheet.png (every member of every family, under each of --lightings) instead of runs",
    )
    parser.add_argument("--path-length", type=float, default=None, help="taught path length, m (default: config)")
    parser.add_argument("--spacing", type=float, default=None, help="teach frame spacing, m (default: config)")
    parser.add_argument(
        "--size",
        type=parse_size,
        default=(512, 384),
        help="image size WIDTHxHEIGHT with the rig's 4:3 aspect (default 512x384)",
    )
    parser.add_argument("--bags", action="store_true", help="also write one rosbag2 bag per run to OUT/bags/")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="bag storage (default mcap)")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="SimConfig YAML/JSON (default: built-in defaults, the same as config/sim.yaml)",
    )
    parser.add_argument("--places", type=int, default=4, help="rows of the contact sheet (default 4)")
    parser.add_argument("--overwrite", action="store_true", help="replace runs already in --out")
    parser.add_argument(
        "--live",
        action="store_true",
        help="run the simulated robot in the loop (sim_node) on this world instead of rendering runs",
    )
    parser.add_argument(
        "--ros-args",
        dest="ros_args",
        nargs=argparse.REMAINDER,
        default=[],
        help="with --live: the rest of the command line goes to sim_node as ROS arguments (-p name:=value ...)",
    )


def _prepare_output(out: Path, overwrite: bool) -> None:
    existing = [p for p in out.iterdir() if RUN_DIR.match(p.name)] if out.is_dir() else []
    if existing and not overwrite:
        raise SystemExit(
            f"dlvf sim: {out} already holds {len(existing)} run(s); pass --overwrite or choose another --out"
        )
    for path in existing + ([out / "bags"] if (out / "bags").is_dir() else []):
        shutil.rmtree(path)


def run(args: argparse.Namespace) -> int:
    from dlvf_ros.data.bags import write_run_bag
    from dlvf_ros.data.utias import UtiasWriter
    from dlvf_ros.sim.contact_sheet import contact_sheet_png, nearest_frames, place_arc_lengths
    from dlvf_ros.sim.frames import render_run
    from dlvf_ros.sim.lighting import lighting_preset
    from dlvf_ros.sim.renderer import StereoRenderer
    from dlvf_ros.sim.style import style_spec_from_yaml
    from dlvf_ros.sim.trajectory import repeat_trajectory, teach_trajectory
    from dlvf_ros.sim.world import generate_world

    if args.live:
        return _live(args)
    if args.ros_args:
        raise SystemExit("dlvf sim: --ros-args goes with --live")
    if args.out is None:
        raise SystemExit("dlvf sim: --out DIR is required (unless --live)")
    if args.seed < 0 or args.places < 1:
        raise SystemExit(f"dlvf sim: --seed must be >= 0 and --places >= 1, got {args.seed} and {args.places}")
    config = load_config(SimConfig, args.config)
    try:
        if args.path_length is not None:
            config.world = dataclasses.replace(config.world, path_length_m=args.path_length)
        if args.spacing is not None:
            config.trajectory = dataclasses.replace(config.trajectory, spacing_m=args.spacing)
        if args.style is not None:
            spec = style_spec_from_yaml(args.style) if args.style.endswith((".yaml", ".yml")) else args.style
            config.world = dataclasses.replace(config.world, style=spec)
        rig = StereoRig().scaled(*args.size)
        teach_lighting = lighting_preset(args.teach_lighting)
        names = [n.strip() for n in (args.lightings or ALL_LIGHTINGS).split(",") if n.strip()]
        repeat_lightings = [lighting_preset(n) for n in names]
    except ValueError as exc:
        raise SystemExit(f"dlvf sim: {exc}") from None

    out = args.out
    if args.style_sheet:
        return _style_sheet(args, config, rig, names)
    _prepare_output(out, args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    world = generate_world(args.seed, config.world, progress=True)
    style = world.style.to_dict()
    print(f"dlvf sim: world {args.seed} style {world.style.spec}")
    if world.style.held_out_members:
        print(f"  held-out members (never for training): {world.style.held_out_members}")
    fileio.atomic_write_text(
        out / "sim_config.yaml",
        yaml.safe_dump(
            {
                "seed": args.seed,
                "size": list(args.size),
                "teach_lighting": args.teach_lighting,
                "lightings": names,
                "style": style,
                **to_dict(config),
            },
            sort_keys=False,
        ),
    )

    runs = [(teach_trajectory(world, config.trajectory, config.odometry, teach_lighting.hour), teach_lighting)]
    for run_id, lighting in enumerate(repeat_lightings, start=1):
        runs.append((repeat_trajectory(world, run_id, config.trajectory, config.odometry, lighting.hour), lighting))

    places = place_arc_lengths(config.world.path_length_m, args.places)
    sheet: list[list[np.ndarray | None]] = [[None] * len(runs) for _ in places]
    writer = UtiasWriter(out, rig)
    with StereoRenderer(world, rig, config.render) as renderer:
        for column, (trajectory, lighting) in enumerate(tqdm(runs, desc=f"world {args.seed}", unit="run")):
            wanted = {pose_id: row for row, pose_id in enumerate(nearest_frames(trajectory, places))}
            info = {
                "lighting": lighting.name,
                "hour": lighting.hour,
                "seed": args.seed,
                "kind": "teach" if trajectory.run_id == 0 else "repeat",
                "cloud_cover": lighting.cloud_cover,
                "style": style,
            }
            with writer.add_run(trajectory.run_id, info) as run_writer:

                def frames():
                    for frame in render_run(world, trajectory, lighting, renderer=renderer, progress=True):
                        run_writer.add_frame(frame)
                        if frame.pose_id in wanted:
                            sheet[wanted[frame.pose_id]][column] = frame.left
                        yield frame

                if args.bags:
                    write_run_bag(out / "bags" / f"run_{trajectory.run_id:06d}", frames(), rig, storage=args.storage)
                else:
                    for _ in frames():
                        pass

    images = [[image for image in row if image is not None] for row in sheet]
    if any(len(row) != len(runs) for row in images):
        raise RuntimeError("dlvf sim: a contact-sheet place was not rendered in every run")
    column_labels = [f"run {t.run_id}: {lighting.name}" + (" (teach)" if t.run_id == 0 else "") for t, lighting in runs]
    row_labels = [f"s = {s:.0f} m" for s in places]
    sheet_path = out / "contact_sheet.png"
    title = f"world {args.seed}: the same places under each run's lighting"
    fileio.atomic_write_bytes(sheet_path, contact_sheet_png(images, row_labels, column_labels, title))
    frames_written = sum(len(t) for t, _ in runs)
    print(f"dlvf sim: {len(runs)} runs, {frames_written} stereo frames ({rig.width}x{rig.height}) in {out}")
    print(f"  contact sheet: {sheet_path}")
    if args.bags:
        print(f"  bags ({args.storage}): {out / 'bags'}")
    offsets = [float(np.abs(t.lateral_offset_m).max()) for t, _ in runs[1:]]
    if offsets:
        print(f"  repeat runs: max lateral offset {max(offsets):.2f} m")
    return 0


def _style_sheet(args: argparse.Namespace, config: SimConfig, rig: StereoRig, lightings: list[str]) -> int:
    """`--style-sheet`: one view per covering style (style.covering_styles) and lighting, as OUT/style_sheet.png."""
    from dlvf_ros.sim.contact_sheet import contact_sheet_png, style_views
    from dlvf_ros.sim.style import covering_styles

    args.out.mkdir(parents=True, exist_ok=True)
    specs = [style.spec for style in covering_styles()]
    images, worlds = style_views(specs, args.seed, lightings, rig, config.world, config.render)
    lines = (
        ("ground", "trail"),
        ("rocks", "trees", "undergrowth"),
        ("man_made", "terrain", "sky"),
        ("camera", "headlights"),
    )
    labels = ["\n".join(" ".join(getattr(w.style, f) for f in line) for line in lines) for w in worlds]
    path = args.out / "style_sheet.png"
    title = f"world {args.seed} in styles that together use every member"
    fileio.atomic_write_bytes(path, contact_sheet_png(images, labels, lightings, title, label_width_in=1.9))
    print(f"dlvf sim: {len(specs)} styles x {len(lightings)} lightings in {path}")
    return 0


def _live(args: argparse.Namespace) -> int:
    """`--live`: sim_node in this process, with the world options as its parameters."""
    from dlvf_ros.replay.processes import format_parameter
    from dlvf_ros.ros.sim_node import main as sim_node_main

    lightings = [n.strip() for n in (args.lightings or "noon").split(",") if n.strip()]
    if len(lightings) != 1:
        raise SystemExit(f"dlvf sim --live: give one lighting with --lightings, got {lightings}")
    parameters = {
        "seed": args.seed,
        "lighting": lightings[0],
        "image_width": args.size[0],
        "image_height": args.size[1],
    }
    if args.style is not None:
        parameters["style"] = args.style
    if args.path_length is not None:
        parameters["path_length_m"] = args.path_length
    if args.config is not None:
        parameters["sim_config"] = str(args.config.resolve())
    ros_args = [item for name, value in parameters.items() for item in ("-p", f"{name}:={format_parameter(value)}")]
    return sim_node_main(["dlvf sim --live", "--ros-args", *ros_args, *args.ros_args])
