"""Score closed-loop repeats (`dlvf closed-loop`) against ground truth: how well the robot followed the taught path.

A run directory holds what `dlvf_ros.replay.closed_loop_recorder` wrote: the localizer's outputs (a replay directory,
`records`), `ground_truth.jsonl` (sim_node's T_world_vehicle, 20 Hz) and `tracker.jsonl` (path_tracker_node's mode
per command). The taught path is the teach pass's ground truth (world frame, the trail centreline).

Per run (`score_run`):
- tracking: the vehicle's signed lateral offset from the taught path (m, + left) and heading error (deg), from ground
  truth at every sample from the first motion to the end of the run (RMS, max |.|): over the whole run (it starts
  with the initial offset) and once settled, from `SETTLE_M` of progress on (`*_settled`);
- progress: share of the path's length the vehicle reached (ground-truth arc length of its projection) and whether
  the tracker declared the end reached (`finished`);
- stops: standstills (ground-truth speed below `STANDSTILL_MPS` and yaw rate below `STANDSTILL_RAD_S`, a turn in
  place is motion, for at least `MIN_STOP_S`) after the first motion
  and before the finish, and the tracker's safety stops (mode `stopped`): count and total seconds;
- speed and time: mean speed (distance / time from first motion to the end), sim and wall time, and the simulator's
  own account (`simulator_status`: frames published, sim seconds per wall second; under the real-time clock below 1
  means the machine could not keep up);
- localization: `evaluate.summarize` of the localizer's frames (the one `SuccessCriteria`): success rate,
  wrong-fix rate, localized fraction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlvf_ros import fileio
from dlvf_ros.control.path_tracker import TrackerMode
from dlvf_ros.evaluation import evaluate, metrics, records
from dlvf_ros.geometry import transforms
from dlvf_ros.localization.path_tracking import TaughtPath

GROUND_TRUTH_FILE = "ground_truth.jsonl"
TRACKER_FILE = "tracker.jsonl"
STANDSTILL_MPS = 0.02  # slower than this, turning slower than STANDSTILL_RAD_S, counts as standing
STANDSTILL_RAD_S = 0.02
MIN_STOP_S = 0.5  # a standstill at least this long is a stop
SETTLE_M = 3.0  # tracking errors "settled": from this much progress along the path on (m), after the initial offset


@dataclass
class TrackingTrace:
    """Ground truth of a run located on the taught path, per sample (sorted by stamp)."""

    stamp_ns: np.ndarray  # (N,) int64
    xy: np.ndarray  # (N, 2) world frame (m)
    progress_m: np.ndarray  # (N,) arc length along the taught path
    lateral_m: np.ndarray  # (N,) + left of the path
    heading_deg: np.ndarray  # (N,) vehicle yaw - path yaw, + counter-clockwise
    speed_mps: np.ndarray  # (N,) from consecutive positions (0 for the first)
    yaw_rate_rad_s: np.ndarray  # (N,) from consecutive headings (0 for the first)

    def standing(self) -> np.ndarray:
        """(N,) bool: neither driving nor turning."""
        return (self.speed_mps <= STANDSTILL_MPS) & (np.abs(self.yaw_rate_rad_s) <= STANDSTILL_RAD_S)


def read_ground_truth(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """((N,) stamps ns, (N, 4, 4) T_world_vehicle) of a run's ground_truth.jsonl, sorted by stamp."""
    rows = sorted(records.read_jsonl(Path(run_dir) / GROUND_TRUTH_FILE), key=lambda r: r["stamp_ns"])
    stamps = np.array([r["stamp_ns"] for r in rows], dtype=np.int64)
    return stamps, np.array([r["T_world_vehicle"] for r in rows], dtype=np.float64).reshape(-1, 4, 4)


def read_tracker_modes(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """((M,) stamps ns, (M,) mode str) of a run's tracker.jsonl, sorted by stamp."""
    rows = sorted(records.read_jsonl(Path(run_dir) / TRACKER_FILE), key=lambda r: r["stamp_ns"])
    return np.array([r["stamp_ns"] for r in rows], dtype=np.int64), np.array([r["message"] for r in rows], dtype=str)


def simulator_status(statuses: list[dict]) -> dict[str, str]:
    """The values of sim_node's last run status among a recording's other statuses ({} when there is none)."""
    runs = [s for s in statuses if s.get("name", "").endswith(": run") and "sim_time_s" in s.get("values", {})]
    return dict(runs[-1]["values"]) if runs else {}


def trace_on_path(taught: TaughtPath, stamp_ns: np.ndarray, T_world_vehicle: np.ndarray) -> TrackingTrace:
    """Each ground-truth pose located on the taught path (`taught` in the world frame)."""
    positions = [taught.locate(T) for T in T_world_vehicle]
    xy = T_world_vehicle[:, :2, 3]
    dt = np.diff(stamp_ns) * 1e-9
    step_s = np.where(dt > 0, dt, np.inf)
    speed = np.concatenate([[0.0], np.linalg.norm(np.diff(xy, axis=0), axis=1) / step_s])
    yaw = np.unwrap([transforms.yaw_of(T) for T in T_world_vehicle]) if len(xy) else np.zeros(0)
    yaw_rate = np.concatenate([[0.0], np.diff(yaw) / step_s])
    return TrackingTrace(
        stamp_ns=np.asarray(stamp_ns, dtype=np.int64),
        xy=xy,
        progress_m=np.array([p.progress_m for p in positions]),
        lateral_m=np.array([p.cross_track_m for p in positions]),
        heading_deg=np.rad2deg([p.heading_error_rad for p in positions]),
        speed_mps=speed,
        yaw_rate_rad_s=yaw_rate,
    )


def intervals(mask: np.ndarray, stamp_ns: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) stamps (ns) of the runs of True in `mask` (end: the first stamp after the run, or the last)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(stamp_ns[a]), int(stamp_ns[min(b, len(stamp_ns) - 1)])) for a, b in zip(edges[::2], edges[1::2])]


def score_run(
    taught: TaughtPath,
    trace: TrackingTrace,
    tracker_stamp_ns: np.ndarray,
    tracker_mode: np.ndarray,
    localization: evaluate.RunEvaluation,
    wall_time_s: float,
    simulator: dict[str, str],
) -> dict:
    """The run's scores (JSON-ready; see the module docstring); `simulator`: `simulator_status`."""
    standing = trace.standing()
    moving = np.flatnonzero(~standing)
    finished_at = np.flatnonzero(tracker_mode == TrackerMode.FINISHED.value)
    end_ns = int(tracker_stamp_ns[finished_at[0]]) if len(finished_at) else int(trace.stamp_ns[-1])
    start_ns = int(trace.stamp_ns[moving[0]]) if len(moving) else end_ns
    driven = (trace.stamp_ns >= start_ns) & (trace.stamp_ns <= end_ns)
    standstills = [
        (a, b) for a, b in intervals(driven & standing, trace.stamp_ns) if (b - a) * 1e-9 >= MIN_STOP_S and b < end_ns
    ]
    safety = intervals(tracker_mode == TrackerMode.STOPPED.value, tracker_stamp_ns)
    distance_m = float(np.sum(np.linalg.norm(np.diff(trace.xy[driven], axis=0), axis=1))) if driven.sum() > 1 else 0.0
    duration_s = (end_ns - start_ns) * 1e-9
    settled = driven & (trace.progress_m >= SETTLE_M)
    return {
        "finished": bool(len(finished_at)),
        "completed_fraction": float(np.clip(trace.progress_m.max() / taught.length_m, 0.0, 1.0)),
        "path_length_m": taught.length_m,
        "lateral_m": metrics.statistics(trace.lateral_m[driven]),
        "heading_deg": metrics.statistics(trace.heading_deg[driven]),
        "settle_m": SETTLE_M,
        "lateral_settled_m": metrics.statistics(trace.lateral_m[settled]),
        "heading_settled_deg": metrics.statistics(trace.heading_deg[settled]),
        "stops": len(standstills),
        "stopped_s": float(sum(b - a for a, b in standstills) * 1e-9),
        "safety_stops": len(safety),
        "safety_stopped_s": float(sum(b - a for a, b in safety) * 1e-9),
        "distance_m": distance_m,
        "mean_speed_mps": distance_m / duration_s if duration_s > 0 else float("nan"),
        "sim_time_s": duration_s,
        "wall_time_s": float(wall_time_s),
        "localization": evaluate.summarize([localization]),
        "simulator": {
            "frames": int(simulator.get("frames", 0)),
            "sim_s_per_wall_s": (
                float(simulator["sim_time_s"]) / float(simulator["wall_time_s"])
                if float(simulator.get("wall_time_s", 0) or 0) > 0
                else float("nan")
            ),
            "clock": simulator.get("clock", ""),
        },
    }


def results_table(results: dict[str, dict]) -> str:
    """One line per run label: tracking, progress, stops, localization, speed and time."""
    header = (
        f"{'run':<16} {'done':>6} {'end':>3} {'lateral RMS/max':>15} {'settled RMS/max':>15} {'heading RMS':>16} "
        f"{'stops':>9} {'safety':>9} {'success':>7} {'wrong':>6} {'frames':>7} {'speed':>8} {'sim':>6} {'wall':>6} "
        f"{'sim/wall':>8}"
    )
    lines = [header, "-" * len(header)]
    for label, r in results.items():
        loc = r["localization"]
        lateral, settled = r["lateral_m"], r["lateral_settled_m"]
        lines.append(
            f"{label:<16} {r['completed_fraction']:>6.1%} {'yes' if r['finished'] else 'no':>3} "
            f"{lateral['rmse']:>7.3f}/{lateral['max_abs']:.3f}m {settled['rmse']:>7.3f}/{settled['max_abs']:.3f}m "
            f"{r['heading_deg']['rmse']:>7.2f}/{r['heading_settled_deg']['rmse']:.2f} deg "
            f"{r['stops']:>2d} /{r['stopped_s']:>4.1f}s "
            f"{r['safety_stops']:>2d} /{r['safety_stopped_s']:>4.1f}s {loc['success_rate']:>7.1%} "
            f"{loc['wrong_fix_rate']:>6.1%} {loc['frames']:>3d}/{loc['images']:<3d} {r['mean_speed_mps']:>4.2f}m/s "
            f"{r['sim_time_s']:>5.1f}s {r['wall_time_s']:>5.0f}s {r['simulator']['sim_s_per_wall_s']:>8.2f}"
        )
    lines.append(
        f"settled: from {SETTLE_M:.0f} m of progress on; heading RMS: whole run / settled; stops: count / seconds "
        "standing; safety: the tracker's stops without good fixes; success and wrong fixes: the localizer's frames; "
        "frames: processed / published; sim/wall: sim seconds per wall second"
    )
    return "\n".join(lines)


def write_results(path: str | Path, results: dict) -> None:
    """The results as JSON (atomic)."""
    fileio.atomic_write_text(path, json.dumps(results, indent=2, allow_nan=True) + "\n")
