"""Evaluate one recorded replay against ground truth: per-frame errors, success, inliers, latency; run summaries.

The frames are those the localizer reported on (one per-frame diagnostic each) plus any pose without one. A frame is
localized when a pose with its image stamp was published; it succeeds when localized within `SuccessCriteria`.
Frames the node dropped as stale are not frames here; `processed_fraction` (frames / images in the bag) shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlvf_ros.evaluation import metrics
from dlvf_ros.evaluation.records import Replay


@dataclass
class GroundTruth:
    """Repeat-run ground truth (world frame) and the map keyframes' poses in map and world frames."""

    stamp_ns: np.ndarray  # (K,) int64
    T_world_vehicle: np.ndarray  # (K, 4, 4)
    T_map_keyframe: np.ndarray  # (J, 4, 4)
    T_world_keyframe: np.ndarray  # (J, 4, 4)


@dataclass
class RunEvaluation:
    """Per-frame results of one replay (arrays of length N frames, sorted by image stamp)."""

    name: str
    lighting: str
    n_images: int
    stamp_ns: np.ndarray
    localized: np.ndarray  # bool
    has_ground_truth: np.ndarray  # bool
    success: np.ndarray  # bool
    state: np.ndarray  # str
    inliers: np.ndarray  # int64
    latency_ms: np.ndarray  # float64, NaN where not reported
    errors: dict[str, np.ndarray]  # metrics.pose_errors keys, NaN where not localized or no ground truth
    T_map_vehicle_est: np.ndarray  # (N, 4, 4), NaN where not localized
    T_map_vehicle_gt: np.ndarray  # (N, 4, 4), NaN where no ground truth


def evaluate_replay(
    replay: Replay,
    ground_truth: GroundTruth,
    n_images: int,
    criteria: metrics.SuccessCriteria,
    name: str = "",
    lighting: str = "unknown",
) -> RunEvaluation:
    """Per-frame errors of `replay` against `ground_truth`; `n_images` is the number of stereo pairs in the bag."""
    frames = replay.frames
    stamp_ns = np.union1d(frames.stamp_ns, replay.pose_stamp_ns).astype(np.int64)
    n = len(stamp_ns)
    frame_row = {int(s): i for i, s in enumerate(frames.stamp_ns)}
    pose_row = {int(s): i for i, s in enumerate(replay.pose_stamp_ns)}
    localized = np.array([int(s) in pose_row for s in stamp_ns], dtype=bool)
    rows = [frame_row.get(int(s)) for s in stamp_ns]
    state = np.array([frames.state[r] if r is not None else "" for r in rows], dtype=object).astype(str)
    inliers = np.array([frames.inliers[r] if r is not None else 0 for r in rows], dtype=np.int64)
    latency_ms = np.array([frames.latency_ms[r] if r is not None else np.nan for r in rows], dtype=np.float64)

    T_est = np.full((n, 4, 4), np.nan)
    for i, s in enumerate(stamp_ns):
        if localized[i]:
            T_est[i] = replay.T_map_vehicle[pose_row[int(s)]]
    T_world_vehicle, has_gt = metrics.interpolate_poses(
        ground_truth.stamp_ns,
        ground_truth.T_world_vehicle,
        stamp_ns,
        int(criteria.max_ground_truth_gap_s * 1e9),
    )
    T_gt = np.full((n, 4, 4), np.nan)
    if has_gt.any():
        T_gt[has_gt], _ = metrics.ground_truth_in_map(
            T_world_vehicle[has_gt], ground_truth.T_map_keyframe, ground_truth.T_world_keyframe
        )
    both = localized & has_gt
    errors = {
        key: np.full(n, np.nan) for key in ("along_track_m", "lateral_m", "vertical_m", "heading_deg", "translation_m")
    }
    if both.any():
        for key, values in metrics.pose_errors(T_est[both], T_gt[both]).items():
            errors[key][both] = values
    success = metrics.success_mask(errors, both, criteria)
    return RunEvaluation(
        name or replay.path.name,
        lighting,
        int(n_images),
        stamp_ns,
        localized,
        has_gt,
        success,
        state,
        inliers,
        latency_ms,
        errors,
        T_est,
        T_gt,
    )


def _median(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else float("nan")


def summarize(runs: list[RunEvaluation]) -> dict:
    """Pooled statistics of one or more runs (JSON-ready)."""
    if not runs:
        raise ValueError("summarize: no runs to summarize")
    cat = {key: np.concatenate([r.errors[key] for r in runs]) for key in runs[0].errors}
    localized = np.concatenate([r.localized for r in runs])
    has_gt = np.concatenate([r.has_ground_truth for r in runs])
    success = np.concatenate([r.success for r in runs])
    inliers = np.concatenate([r.inliers for r in runs])
    latency = np.concatenate([r.latency_ms for r in runs])
    frames = len(localized)
    images = int(sum(r.n_images for r in runs))
    evaluable = int(has_gt.sum())
    finite_latency = latency[np.isfinite(latency)]
    return {
        "runs": [r.name for r in runs],
        "images": images,
        "frames": frames,
        "processed_fraction": frames / images if images else float("nan"),
        "frames_with_ground_truth": evaluable,
        "localized_fraction": float(localized[has_gt].mean()) if evaluable else float("nan"),
        "success_rate": float(success[has_gt].mean()) if evaluable else float("nan"),
        "along_track_m": metrics.statistics(cat["along_track_m"]),
        "lateral_m": metrics.statistics(cat["lateral_m"]),
        "heading_deg": metrics.statistics(cat["heading_deg"]),
        "translation_m": metrics.statistics(cat["translation_m"]),
        "inliers_median": _median(inliers),
        "inliers_median_localized": _median(inliers[localized]),
        "latency_ms_median": _median(finite_latency),
        "latency_ms_p95": float(np.percentile(finite_latency, 95)) if len(finite_latency) else float("nan"),
    }


def summarize_by_lighting(runs: list[RunEvaluation]) -> dict[str, dict]:
    """`summarize` per lighting label, labels in first-seen order."""
    labels = list(dict.fromkeys(r.lighting for r in runs))
    return {label: summarize([r for r in runs if r.lighting == label]) for label in labels}
