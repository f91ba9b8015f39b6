"""`dlvf closed-loop --out DIR`: teach a simulated world in the loop, then let the path tracker drive the repeats at
each lighting from an offset start; record and score every run.

Teach: sim_node drives the trail centreline at `--teach-lighting` while teach_node builds the map. Repeat (one per
lighting of `--lightings`): sim_node starts `--initial-lateral` m left of the path, turned `--initial-heading` deg,
and moves only by cmd_vel, which path_tracker_node computes from localizer_node's tracker output and odometry. The
lock-step clock (default) makes a run independent of the machine's load; `--real-time` lets latency and dropped
frames act. Every process is a real node on a machine-local ROS graph (`dlvf_ros.replay.environment`); this process
records (`dlvf_ros.replay.closed_loop_recorder`).

Output:
    DIR/teach/map/            the teach map store; DIR/teach/ holds the teach pass's recording and logs/
    DIR/runs/<lighting>/      the localizer's replay directory (replay.json, poses.jsonl, frame_status.jsonl,
                              diagnostics.jsonl), ground_truth.jsonl, tracker.jsonl and logs/
    DIR/closed_loop.json      settings and each run's scores (`dlvf_ros.evaluation.closed_loop.score_run`)
    DIR/closed_loop.png       driven versus taught path per lighting, lateral error along the path
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dlvf_ros import fileio
from dlvf_ros.localization.map_store import is_map_store
from dlvf_ros.sim.live import LiveSimConfig
from dlvf_ros.sim.sim_cli import parse_size

DEMO_LIGHTINGS = "noon,morning,evening,overcast,dusk,night,glare"
TRAILING_WALL_S = 1.0  # keep recording this long after the run ended (the last messages in flight)


class ClosedLoopError(ValueError):
    """A pass ran but a node failed or it did not end in time; the message carries the node's own reason and logs."""


@dataclass
class ClosedLoopSettings:
    """One closed-loop experiment (the CLI's options)."""

    out: Path
    seed: int = 100
    style: str = "demo"
    path_length_m: float = 25.0
    size: tuple[int, int] = (320, 240)
    teach_lighting: str = "noon"
    lightings: list[str] = field(default_factory=lambda: ["noon", "night", "glare"])
    backend: str = "learned"
    model: str = ""
    clock: str = "lockstep"
    camera_rate_hz: float = 5.0
    initial_lateral_m: float = 0.3
    initial_heading_deg: float = 5.0
    max_sim_time_s: float = 0.0  # 0: derived from the path length
    give_up_s: float = 20.0  # end a repeat after this much sim time without the tracker driving
    map_path: Path | None = None  # an earlier teach pass's map (same world settings): no teach pass
    pass_timeout_s: float = 1800.0
    tracker_parameters: dict = field(default_factory=dict)
    sim_parameters: dict = field(default_factory=dict)

    def max_sim_time(self) -> float:
        return self.max_sim_time_s or 30.0 + 4.0 * self.path_length_m  # at 0.25 m/s, with stops


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--seed", type=int, default=100, help="world seed (default 100)")
    parser.add_argument("--style", default="demo", help="world style (default demo: the held-out-style world)")
    parser.add_argument("--path-length", type=float, default=25.0, help="taught path length, m (default 25)")
    parser.add_argument("--size", type=parse_size, default=(320, 240), help="image size WxH (default 320x240)")
    parser.add_argument("--teach-lighting", default="noon", help="lighting of the teach pass (default noon)")
    parser.add_argument(
        "--lightings",
        default="noon,night,glare",
        help=f"comma-separated repeat lightings, one run each (default noon,night,glare; the demo's: {DEMO_LIGHTINGS})",
    )
    parser.add_argument("--backend", default="learned", help="feature backend: learned, orb, sift (default learned)")
    parser.add_argument("--model", default="", help="exported model for the learned backend (default: the shipped one)")
    parser.add_argument("--real-time", action="store_true", help="real-time clock instead of lock-step")
    parser.add_argument("--camera-rate", type=float, default=5.0, help="stereo frames per sim second (default 5)")
    parser.add_argument("--initial-lateral", type=float, default=0.3, help="repeat start offset, m left (default 0.3)")
    parser.add_argument("--initial-heading", type=float, default=5.0, help="repeat start heading, deg (default 5)")
    parser.add_argument(
        "--max-sim-time", type=float, default=0.0, help="end a repeat after this many sim seconds (default 30 + 4/m)"
    )
    parser.add_argument(
        "--give-up",
        type=float,
        default=20.0,
        help="end a repeat after this many sim seconds without the tracker driving (waiting or stopped; default 20)",
    )
    parser.add_argument(
        "--map",
        type=Path,
        default=None,
        help="use this teach map (DIR/teach/map of an earlier run with the same world options) instead of teaching",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="wall-clock limit per pass, s (default 1800)")
    parser.add_argument("--overwrite", action="store_true", help="replace DIR")


def settings_from_args(args: argparse.Namespace) -> ClosedLoopSettings:
    lightings = [n.strip() for n in args.lightings.split(",") if n.strip()]
    if not lightings:
        raise ValueError("--lightings: give at least one lighting, e.g. noon,night")
    if args.model and not Path(args.model).is_file():
        raise ValueError(f"--model {args.model} does not exist; give an exported .pt model or leave it out")
    if args.map is not None and not is_map_store(args.map):
        raise ValueError(f"--map {args.map} is not a map store; give DIR/teach/map of an earlier dlvf closed-loop")
    for lighting in [args.teach_lighting, *lightings]:  # the sim's own checks: lighting, image size, rates
        LiveSimConfig(
            path_length_m=args.path_length,
            lighting=lighting,
            image_width=args.size[0],
            image_height=args.size[1],
            camera_rate_hz=args.camera_rate,
        )
    return ClosedLoopSettings(
        out=args.out,
        seed=args.seed,
        style=args.style,
        path_length_m=args.path_length,
        size=args.size,
        teach_lighting=args.teach_lighting,
        lightings=lightings,
        backend=args.backend,
        model=str(Path(args.model).resolve()) if args.model else "",
        clock="realtime" if args.real_time else "lockstep",
        camera_rate_hz=args.camera_rate,
        initial_lateral_m=args.initial_lateral,
        initial_heading_deg=args.initial_heading,
        max_sim_time_s=args.max_sim_time,
        give_up_s=args.give_up,
        map_path=args.map.resolve() if args.map is not None else None,
        pass_timeout_s=args.timeout,
    )


def run(args: argparse.Namespace) -> int:
    from dlvf_ros.evaluation import closed_loop

    settings = settings_from_args(args)
    if settings.out.exists() and not settings.out.is_dir():
        raise ValueError(f"--out {settings.out} is a file; give a directory")
    if settings.out.exists() and any(settings.out.iterdir()):
        if not args.overwrite:
            raise ValueError(f"{settings.out} is not empty; pass --overwrite to replace it")
        shutil.rmtree(settings.out)
    results = run_closed_loop(settings)
    print(closed_loop.results_table(results["runs"]))
    print(f"dlvf closed-loop: {settings.out / 'closed_loop.json'}, {settings.out / 'closed_loop.png'}")
    return 0


def run_closed_loop(settings: ClosedLoopSettings) -> dict:
    """Teach, every repeat, the scores, the JSON and the plot; returns the JSON's content."""
    from dlvf_ros.evaluation import closed_loop
    from dlvf_ros.evaluation.plots import plot_closed_loop
    from dlvf_ros.replay.environment import apply_isolated_ros_environment

    apply_isolated_ros_environment()
    settings.out.mkdir(parents=True, exist_ok=True)
    map_path = settings.map_path if settings.map_path is not None else teach(settings)
    runs, traces = {}, {}
    for run_id, lighting in enumerate(settings.lightings, start=1):
        run_dir = settings.out / "runs" / lighting
        wall_s = repeat(settings, map_path, run_dir, lighting, run_id)
        runs[lighting], traces[lighting] = score_repeat(map_path, run_dir, lighting, wall_s)
    taught = taught_path_in_world(map_path)
    results = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(settings).items()},
        "criteria": closed_loop.metrics.SuccessCriteria().describe(),
        "runs": runs,
    }
    closed_loop.write_results(settings.out / "closed_loop.json", results)
    plot_closed_loop(taught.T_map_vertex[:, :2, 3], traces, settings.out / "closed_loop.png")
    return results


def _sim_parameters(settings: ClosedLoopSettings) -> dict:
    return {
        "seed": settings.seed,
        "style": settings.style,
        "path_length_m": settings.path_length_m,
        "image_width": settings.size[0],
        "image_height": settings.size[1],
        "camera_rate_hz": settings.camera_rate_hz,
        "clock": settings.clock,
        "lockstep_timeout_s": 120.0,
        "start_timeout_s": 600.0,
        **settings.sim_parameters,
    }


def teach(settings: ClosedLoopSettings) -> Path:
    """The teach pass: sim_node drives the centreline while teach_node builds DIR/teach/map; returns the map path."""
    from dlvf_ros.ros.stereo_input import TOPICS

    teach_dir = settings.out / "teach"
    map_path = teach_dir / "map"
    node = NodeSpec(
        "teach_node",
        "dlvf_ros.ros.teach_node",
        {"map_path": str(map_path), "backend": settings.backend, "model": settings.model, "use_sim_time": True},
        subscribes="/" + TOPICS[0],
    )
    sim = {**_sim_parameters(settings), "mode": "teach", "run_id": 0, "lighting": settings.teach_lighting}
    run_pass(teach_dir, [node], sim, lambda recorder: recorder.run_status.get("finished") == "true", settings)
    if not is_map_store(map_path):
        raise ClosedLoopError(f"the teach pass wrote no map at {map_path} (logs in {teach_dir / 'logs'})")
    return map_path


def repeat(
    settings: ClosedLoopSettings,
    map_path: Path,
    run_dir: Path,
    lighting: str,
    run_id: int,
    extra_nodes: Callable | None = None,
) -> float:
    """One repeat at `lighting`, driven by path_tracker_node; returns the wall time (s). `extra_nodes(context)`: rclpy
    nodes spun with the recorder (a test's fault injector)."""
    from dlvf_ros.ros.stereo_input import TOPICS

    localizer = NodeSpec(
        "localizer_node",
        "dlvf_ros.ros.localizer_node",
        # the robot is parked at the start of its taught path (as a VT&R repeat begins at the first vertex): the
        # start-up prior lets a night view with few inliers localize there (`localization.fix_gate`, rule 2)
        {"map_path": str(map_path), "model": settings.model, "use_sim_time": True, "localizer.initial_keyframe_id": 0},
        subscribes="/" + TOPICS[0],
    )
    tracker = NodeSpec(
        "path_tracker_node",
        "dlvf_ros.ros.path_tracker_node",
        {"use_sim_time": True, **settings.tracker_parameters},
        subscribes="/odom",
    )
    sim = {
        **_sim_parameters(settings),
        "mode": "repeat",
        "run_id": run_id,
        "lighting": lighting,
        "initial_lateral_m": settings.initial_lateral_m,
        "initial_heading_deg": settings.initial_heading_deg,
        "duration_s": settings.max_sim_time(),
    }

    def done(recorder) -> bool:
        stalled = recorder.tracker_stalled_s() > settings.give_up_s
        return stalled or recorder.tracker_mode == "finished" or recorder.run_status.get("finished") == "true"

    started = time.monotonic()
    run_pass(run_dir, [localizer, tracker], sim, done, settings, extra_nodes)
    wall_s = time.monotonic() - started
    manifest = {"map": str(map_path), "lighting": lighting, "run_id": run_id, "wall_time_s": wall_s}
    fileio.atomic_write_text(run_dir / "replay.json", json.dumps(manifest, indent=2) + "\n")
    return wall_s


@dataclass(frozen=True)
class NodeSpec:
    """A node process of a pass: name, module, parameters, and a topic it must subscribe before the sim starts."""

    name: str
    module: str
    parameters: dict
    subscribes: str


def run_pass(
    out_dir: Path,
    nodes: list[NodeSpec],
    sim_parameters: dict,
    done: Callable,
    settings: ClosedLoopSettings,
    extra_nodes: Callable | None = None,
) -> None:
    """Start `nodes`, then sim_node; record into `out_dir` until `done(recorder)`; stop everything (nodes finish their
    outputs on SIGINT). A node that exits early or a pass beyond `settings.pass_timeout_s` is a ClosedLoopError."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from dlvf_ros.package_share import package_share_directory
    from dlvf_ros.replay.closed_loop_recorder import ClosedLoopRecorder
    from dlvf_ros.replay.processes import python_module_command, start_ros_process

    log_dir = out_dir / "logs"
    out_dir.mkdir(parents=True, exist_ok=True)
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    recorder = ClosedLoopRecorder(out_dir, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(recorder)
    extras = list(extra_nodes(context)) if extra_nodes is not None else []
    for extra in extras:
        executor.add_node(extra)
    processes = []
    try:
        for spec in nodes:
            params_file = package_share_directory() / "config" / f"{spec.name}.yaml"
            processes.append(
                start_ros_process(
                    python_module_command(spec.module),
                    node_name=spec.name,
                    parameters=spec.parameters,
                    params_file=params_file,
                    log_dir=log_dir,
                )
            )
        for spec, process in zip(nodes, processes):
            process.wait_ready(timeout_s=300.0, subscribes=[spec.subscribes], node=recorder)
        sim = start_ros_process(
            python_module_command("dlvf_ros.ros.sim_node"),
            node_name="sim_node",
            parameters=sim_parameters,
            params_file=package_share_directory() / "config" / "sim_node.yaml",
            log_dir=log_dir,
        )
        processes.append(sim)
        deadline = time.monotonic() + settings.pass_timeout_s
        while not done(recorder):
            executor.spin_once(timeout_sec=0.05)
            for process in processes:
                if not process.alive():
                    raise ClosedLoopError(
                        f"{process.node_name} exited with code {process.returncode}: {process.failure_reason()} "
                        f"(log {process.log_path})"
                    )
            if recorder.run_status.get("error"):
                raise ClosedLoopError(f"sim_node failed: {recorder.run_status['error']} (log {sim.log_path})")
            if time.monotonic() > deadline:
                raise ClosedLoopError(
                    f"{out_dir.name}: not done after {settings.pass_timeout_s:.0f} s (logs in {log_dir})"
                )
        trailing = time.monotonic() + TRAILING_WALL_S
        while time.monotonic() < trailing:
            executor.spin_once(timeout_sec=0.05)
    finally:
        for process in reversed(processes):
            process.stop(timeout_s=60.0)
        recorder.close()
        executor.shutdown()
        for node in [recorder, *extras]:
            node.destroy_node()
        rclpy.shutdown(context=context)


def taught_path_in_world(map_path: Path):
    """The taught path through the map's keyframes at their ground-truth poses (world frame)."""
    from dlvf_ros.evaluation.evaluate_cli import map_ground_truth
    from dlvf_ros.localization.path_tracking import TaughtPath

    return TaughtPath(map_ground_truth(map_path)[1])


def score_repeat(map_path: Path, run_dir: Path, lighting: str, wall_s: float):
    """(`closed_loop.score_run` result, `TrackingTrace`) of a recorded repeat."""
    from dlvf_ros.evaluation import closed_loop, evaluate, metrics, records
    from dlvf_ros.evaluation.evaluate_cli import map_ground_truth

    T_map_keyframe, T_world_keyframe = map_ground_truth(map_path)
    stamps, T_world_vehicle = closed_loop.read_ground_truth(run_dir)
    replay = records.read_replay(run_dir)
    ground_truth = evaluate.GroundTruth(stamps, T_world_vehicle, T_map_keyframe, T_world_keyframe)
    simulator = closed_loop.simulator_status(replay.other_statuses)
    n_images = int(simulator.get("frames", len(replay.frames.stamp_ns)))
    localization = evaluate.evaluate_replay(
        replay, ground_truth, n_images, metrics.SuccessCriteria(), name=lighting, lighting=lighting
    )
    taught = taught_path_in_world(map_path)
    trace = closed_loop.trace_on_path(taught, stamps, T_world_vehicle)
    tracker_stamps, tracker_modes = closed_loop.read_tracker_modes(run_dir)
    result = closed_loop.score_run(taught, trace, tracker_stamps, tracker_modes, localization, wall_s, simulator)
    return result, trace
