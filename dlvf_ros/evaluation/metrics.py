"""Localization errors against ground truth: along-track, lateral, heading; success; summary statistics.

Ground truth in the map frame. The map frame is the teach pass's odometry frame, which drifts against the simulator's
`world`. So the ground-truth pose of the repeat vehicle is taken relative to the nearest teach keyframe (by world
position) and placed in the map through that keyframe:
`T_map_vehicle_gt = T_map_keyframe @ inv(T_world_keyframe) @ T_world_vehicle`.
Errors are those of the estimate seen from the true vehicle frame,
`T_gt_est = inv(T_map_vehicle_gt) @ T_map_vehicle_est`:
x is along-track (m, + ahead), y lateral (m, + left), yaw the heading error (rad, + counter-clockwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlvf_ros.geometry import transforms


@dataclass(frozen=True)
class SuccessCriteria:
    """A localized frame counts as a success when its planar error and heading error are both within bounds."""

    max_translation_error_m: float = 0.5
    max_heading_error_deg: float = 5.0
    max_ground_truth_gap_s: float = 0.25

    def __post_init__(self) -> None:
        for name in ("max_translation_error_m", "max_heading_error_deg", "max_ground_truth_gap_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SuccessCriteria.{name} must be > 0, got {getattr(self, name)}")


def _check_stack(name: str, T: np.ndarray) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.ndim != 3 or T.shape[1:] != (4, 4):
        raise ValueError(f"{name}: expected a (N, 4, 4) stack of transforms, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError(f"{name}: contains NaN or infinite entries")
    return T


def interpolate_poses(
    stamps_ns: np.ndarray, T_a_b: np.ndarray, query_ns: np.ndarray, max_gap_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Poses at `query_ns` between the two neighbouring samples (`transforms.interpolate`: linear in translation,
    slerp in rotation).

    Returns ((M, 4, 4) poses, (M,) valid). A query is invalid outside the sampled span or when its neighbours are
    more than `max_gap_ns` apart (identity returned there).
    """
    stamps_ns = np.asarray(stamps_ns, dtype=np.int64)
    query_ns = np.asarray(query_ns, dtype=np.int64)
    T_a_b = _check_stack("T_a_b", T_a_b)
    if len(stamps_ns) != len(T_a_b):
        raise ValueError(f"interpolate_poses: {len(stamps_ns)} stamps for {len(T_a_b)} poses")
    out = np.tile(np.eye(4), (len(query_ns), 1, 1))
    valid = np.zeros(len(query_ns), dtype=bool)
    if len(stamps_ns) == 0 or len(query_ns) == 0:
        return out, valid
    order = np.argsort(stamps_ns, kind="stable")
    stamps_ns, T_a_b = stamps_ns[order], T_a_b[order]
    keep = np.concatenate([[True], np.diff(stamps_ns) > 0])
    stamps_ns, T_a_b = stamps_ns[keep], T_a_b[keep]
    exact = np.searchsorted(stamps_ns, query_ns)
    hit = (exact < len(stamps_ns)) & (stamps_ns[np.minimum(exact, len(stamps_ns) - 1)] == query_ns)
    out[hit] = T_a_b[exact[hit]]
    valid[hit] = True
    if len(stamps_ns) < 2:
        return out, valid
    inside = ~hit & (query_ns > stamps_ns[0]) & (query_ns < stamps_ns[-1])
    upper = np.searchsorted(stamps_ns, query_ns[inside])
    close = (stamps_ns[upper] - stamps_ns[upper - 1]) <= max_gap_ns
    idx = np.flatnonzero(inside)[close]
    for i, hi in zip(idx, upper[close]):
        t0, t1 = stamps_ns[hi - 1], stamps_ns[hi]
        out[i] = transforms.interpolate(T_a_b[hi - 1], T_a_b[hi], float(query_ns[i] - t0) / float(t1 - t0))
    valid[idx] = True
    return out, valid


def nearest_keyframes(T_world_vehicle: np.ndarray, T_world_keyframe: np.ndarray) -> np.ndarray:
    """(N,) index of the keyframe closest in world position (m) to each vehicle pose."""
    T_world_vehicle = _check_stack("T_world_vehicle", T_world_vehicle)
    T_world_keyframe = _check_stack("T_world_keyframe", T_world_keyframe)
    if len(T_world_keyframe) == 0:
        raise ValueError("nearest_keyframes: the map has no keyframes with ground truth")
    d = np.linalg.norm(T_world_vehicle[:, None, :3, 3] - T_world_keyframe[None, :, :3, 3], axis=2)
    return np.argmin(d, axis=1)


def ground_truth_in_map(
    T_world_vehicle: np.ndarray, T_map_keyframe: np.ndarray, T_world_keyframe: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """True vehicle poses in the map frame through the nearest keyframe: ((N, 4, 4) T_map_vehicle, (N,) index)."""
    T_map_keyframe = _check_stack("T_map_keyframe", T_map_keyframe)
    if len(T_map_keyframe) != len(T_world_keyframe):
        raise ValueError(
            f"ground_truth_in_map: {len(T_map_keyframe)} map poses for {len(T_world_keyframe)} ground truths"
        )
    index = nearest_keyframes(T_world_vehicle, T_world_keyframe)
    T_map_world = T_map_keyframe[index] @ transforms.invert(np.asarray(T_world_keyframe)[index])
    return T_map_world @ T_world_vehicle, index


def pose_errors(T_map_vehicle_est: np.ndarray, T_map_vehicle_gt: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pose errors: along_track_m, lateral_m, vertical_m, heading_deg (signed), translation_m (planar)."""
    T_est = _check_stack("T_map_vehicle_est", T_map_vehicle_est)
    T_gt = _check_stack("T_map_vehicle_gt", T_map_vehicle_gt)
    if len(T_est) != len(T_gt):
        raise ValueError(f"pose_errors: {len(T_est)} estimates for {len(T_gt)} ground truths")
    T_gt_est = transforms.invert(T_gt) @ T_est
    heading = np.degrees(np.arctan2(T_gt_est[:, 1, 0], T_gt_est[:, 0, 0]))
    return {
        "along_track_m": T_gt_est[:, 0, 3].copy(),
        "lateral_m": T_gt_est[:, 1, 3].copy(),
        "vertical_m": T_gt_est[:, 2, 3].copy(),
        "heading_deg": heading,
        "translation_m": np.hypot(T_gt_est[:, 0, 3], T_gt_est[:, 1, 3]),
    }


def success_mask(errors: dict[str, np.ndarray], localized: np.ndarray, criteria: SuccessCriteria) -> np.ndarray:
    """Frames that were localized and whose planar and heading errors are within `criteria`."""
    localized = np.asarray(localized, dtype=bool)
    with np.errstate(invalid="ignore"):
        good = (errors["translation_m"] <= criteria.max_translation_error_m) & (
            np.abs(errors["heading_deg"]) <= criteria.max_heading_error_deg
        )
    return localized & good


def statistics(values: np.ndarray) -> dict[str, float | int]:
    """count, rmse, mean |x|, median |x|, p95 |x|, max |x| of the finite values (NaN where there are none)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return {
            "count": 0,
            "rmse": float("nan"),
            "mean_abs": float("nan"),
            "median_abs": float("nan"),
            "p95_abs": float("nan"),
            "max_abs": float("nan"),
        }
    magnitude = np.abs(values)
    return {
        "count": len(values),
        "rmse": float(np.sqrt(np.mean(values**2))),
        "mean_abs": float(magnitude.mean()),
        "median_abs": float(np.median(magnitude)),
        "p95_abs": float(np.percentile(magnitude, 95)),
        "max_abs": float(magnitude.max()),
    }
