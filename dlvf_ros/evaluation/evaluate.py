"""Score localized frames against ground truth: per-frame errors, success, strict success, wrong fixes, inliers,
latency; run summaries. One scoring for both protocols:
- through the nodes (`evaluate_replay`): the frames are those the localizer reported on (one per-frame record each)
  plus any pose without one. A frame is localized when a pose with its image stamp was published. Frames the node
  dropped as stale are not frames here; `processed_fraction` (frames / images in the bag) shows them.
- per frame (`per_frame.py`): every repeat frame against its ground-truth-nearest keyframe.
A frame succeeds when localized within the `SuccessCriteria` (and strictly so within `metrics.STRICT`); a localized
frame outside the criteria's error bounds is a wrong fix, and the wrong-fix rate is wrong fixes / localized frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlvf_ros.evaluation import metrics
from dlvf_ros.evaluation.records import Replay
from dlvf_ros.geometry.interpolation import interpolate_poses


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
    success: np.ndarray  # bool, within the run's SuccessCriteria
    strict_success: np.ndarray  # bool, within metrics.STRICT
    wrong_fix: np.ndarray  # bool, localized with ground truth and outside the SuccessCriteria's error bounds
    state: np.ndarray  # str ("" in per-frame mode)
    inliers: np.ndarray  # int64
    latency_ms: np.ndarray  # float64, NaN where not reported (per-frame mode: features + stereo + pose)
    errors: dict[str, np.ndarray]  # metrics.pose_errors keys, NaN where not localized or no ground truth
    T_map_vehicle_est: np.ndarray  # (N, 4, 4), NaN where not localized
    T_map_vehicle_gt: np.ndarray  # (N, 4, 4), NaN where no ground truth
    # metrics.errors_in_sigmas keys against the published covariance; NaN where none was published (per-frame mode)
    errors_in_sigmas: dict[str, np.ndarray]


def score_frames(
    name: str,
    lighting: str,
    n_images: int,
    stamp_ns: np.ndarray,
    localized: np.ndarray,
    state: np.ndarray,
    inliers: np.ndarray,
    latency_ms: np.ndarray,
    T_est: np.ndarray,
    T_gt: np.ndarray,
    criteria: metrics.SuccessCriteria,
    covariance: np.ndarray | None = None,
) -> RunEvaluation:
    """Errors and success of N frames: estimates `T_est` (NaN where not localized) against `T_gt` (NaN where there
    is no ground truth), both (N, 4, 4) in one frame (the map, or each frame's keyframe); `covariance` (N, 6, 6): the
    published map-frame covariance of each estimate (None: none published)."""
    localized = np.asarray(localized, dtype=bool)
    has_gt = np.all(np.isfinite(T_gt), axis=(1, 2))
    both = localized & has_gt
    errors = {
        key: np.full(len(stamp_ns), np.nan)
        for key in ("along_track_m", "lateral_m", "vertical_m", "heading_deg", "translation_m")
    }
    if both.any():
        for key, values in metrics.pose_errors(T_est[both], T_gt[both]).items():
            errors[key][both] = values
    in_sigmas = {key: np.full(len(stamp_ns), np.nan) for key in ("position", "heading")}
    if covariance is not None and both.any():
        xy_error = T_est[both, :2, 3] - T_gt[both, :2, 3]
        for key, values in metrics.errors_in_sigmas(xy_error, errors["heading_deg"][both], covariance[both]).items():
            in_sigmas[key][both] = values
    return RunEvaluation(
        name,
        lighting,
        int(n_images),
        np.asarray(stamp_ns, dtype=np.int64),
        localized,
        has_gt,
        metrics.success_mask(errors, both, inliers, criteria),
        metrics.success_mask(errors, both, inliers, metrics.STRICT),
        metrics.wrong_fix_mask(errors, both, criteria),
        np.asarray(state, dtype=object).astype(str),
        np.asarray(inliers, dtype=np.int64),
        np.asarray(latency_ms, dtype=np.float64),
        errors,
        T_est,
        T_gt,
        in_sigmas,
    )


def evaluate_replay(
    replay: Replay,
    ground_truth: GroundTruth,
    n_images: int,
    criteria: metrics.SuccessCriteria,
    max_ground_truth_gap_s: float = 0.25,
    name: str = "",
    lighting: str = "unknown",
) -> RunEvaluation:
    """Per-frame errors of `replay` against `ground_truth`; `n_images` is the number of stereo pairs in the bag;
    ground truth is interpolated across sample gaps up to `max_ground_truth_gap_s`."""
    frames = replay.frames
    stamp_ns = np.union1d(frames.stamp_ns, replay.pose_stamp_ns).astype(np.int64)
    n = len(stamp_ns)
    frame_row = {int(s): i for i, s in enumerate(frames.stamp_ns)}
    pose_row = {int(s): i for i, s in enumerate(replay.pose_stamp_ns)}
    localized = np.array([int(s) in pose_row for s in stamp_ns], dtype=bool)
    rows = [frame_row.get(int(s)) for s in stamp_ns]
    state = np.array([frames.state[r] if r is not None else "" for r in rows], dtype=object)
    inliers = np.array([frames.inliers[r] if r is not None else 0 for r in rows], dtype=np.int64)
    latency_ms = np.array([frames.latency_ms[r] if r is not None else np.nan for r in rows], dtype=np.float64)

    T_est = np.full((n, 4, 4), np.nan)
    covariance = np.full((n, 6, 6), np.nan)
    for i, s in enumerate(stamp_ns):
        if localized[i]:
            T_est[i] = replay.T_map_vehicle[pose_row[int(s)]]
            covariance[i] = replay.covariance[pose_row[int(s)]]
    T_world_vehicle, has_gt = interpolate_poses(
        ground_truth.stamp_ns, ground_truth.T_world_vehicle, stamp_ns, int(max_ground_truth_gap_s * 1e9)
    )
    T_gt = np.full((n, 4, 4), np.nan)
    if has_gt.any():
        T_gt[has_gt], _ = metrics.ground_truth_in_map(
            T_world_vehicle[has_gt], ground_truth.T_map_keyframe, ground_truth.T_world_keyframe
        )
    return score_frames(
        name or replay.path.name,
        lighting,
        n_images,
        stamp_ns,
        localized,
        state,
        inliers,
        latency_ms,
        T_est,
        T_gt,
        criteria,
        covariance,
    )


def _median(values: np.ndarray) -> float:
    return _percentile(values, 50)


def _percentile(values: np.ndarray, q: float) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.percentile(values, q)) if len(values) else float("nan")


def summarize(runs: list[RunEvaluation]) -> dict:
    """Pooled statistics of one or more runs (JSON-ready)."""
    if not runs:
        raise ValueError("summarize: no runs to summarize")
    cat = {key: np.concatenate([r.errors[key] for r in runs]) for key in runs[0].errors}
    localized = np.concatenate([r.localized for r in runs])
    has_gt = np.concatenate([r.has_ground_truth for r in runs])
    success = np.concatenate([r.success for r in runs])
    strict = np.concatenate([r.strict_success for r in runs])
    wrong = np.concatenate([r.wrong_fix for r in runs])
    inliers = np.concatenate([r.inliers for r in runs])
    latency = np.concatenate([r.latency_ms for r in runs])
    frames = len(localized)
    images = int(sum(r.n_images for r in runs))
    evaluable = int(has_gt.sum())
    fixes = int((localized & has_gt).sum())
    return {
        "runs": [r.name for r in runs],
        "images": images,
        "frames": frames,
        "processed_fraction": frames / images if images else float("nan"),
        "frames_with_ground_truth": evaluable,
        "localized_fraction": float(localized[has_gt].mean()) if evaluable else float("nan"),
        "success_rate": float(success[has_gt].mean()) if evaluable else float("nan"),
        "strict_success_rate": float(strict[has_gt].mean()) if evaluable else float("nan"),
        "fixes_with_ground_truth": fixes,
        "wrong_fixes": int(wrong.sum()),
        "wrong_fix_rate": float(wrong.sum() / fixes) if fixes else float("nan"),
        "along_track_m": metrics.statistics(cat["along_track_m"]),
        "lateral_m": metrics.statistics(cat["lateral_m"]),
        "heading_deg": metrics.statistics(cat["heading_deg"]),
        "translation_m": metrics.statistics(cat["translation_m"]),
        # published covariance against the errors (NaN without covariances): a consistent one gives 2.45 and 1.96
        "position_error_sigmas_p95": _percentile(np.concatenate([r.errors_in_sigmas["position"] for r in runs]), 95),
        "heading_error_sigmas_p95": _percentile(np.concatenate([r.errors_in_sigmas["heading"] for r in runs]), 95),
        "inliers_median": _median(inliers),
        "inliers_median_localized": _median(inliers[localized]),
        "latency_ms_median": _median(latency),
        "latency_ms_p95": _percentile(latency, 95),
    }


def summarize_by_lighting(runs: list[RunEvaluation]) -> dict[str, dict]:
    """`summarize` per lighting label, labels in first-seen order."""
    labels = list(dict.fromkeys(r.lighting for r in runs))
    return {label: summarize([r for r in runs if r.lighting == label]) for label in labels}
