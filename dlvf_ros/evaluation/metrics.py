"""Localization errors against ground truth: along-track, lateral, heading; success, wrong fixes; statistics.

Ground truth in the map frame. The map frame is the teach pass's odometry frame, which drifts against the simulator's
`world`. So the ground-truth pose of the repeat vehicle is taken relative to the nearest teach keyframe (by world
position) and placed in the map through that keyframe:
`T_map_vehicle_gt = T_map_keyframe @ inv(T_world_keyframe) @ T_world_vehicle`.
Errors are those of the estimate seen from the true vehicle frame,
`T_gt_est = inv(T_map_vehicle_gt) @ T_map_vehicle_est`:
x is along-track (m, + ahead), y lateral (m, + left), yaw the heading error (rad, + counter-clockwise).
`SuccessCriteria` is the one definition of success (and of a wrong fix) for `dlvf test`, `dlvf evaluate`, the demo and
the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlvf_ros.geometry import transforms


@dataclass(frozen=True)
class SuccessCriteria:
    """A frame succeeds when it was localized with at least `min_inliers` inliers, its planar position error within
    `max_translation_error_m` and its heading error within `max_heading_error_deg` (bounds inclusive). A localized
    frame outside the error bounds is a wrong fix. Presets: `SUCCESS` (the default), `STRICT`."""

    max_translation_error_m: float = 0.25
    max_heading_error_deg: float = 2.0
    min_inliers: int = 10

    def __post_init__(self) -> None:
        for name in ("max_translation_error_m", "max_heading_error_deg"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SuccessCriteria.{name} must be > 0, got {getattr(self, name)}")
        if self.min_inliers < 0:
            raise ValueError(f"SuccessCriteria.min_inliers must be >= 0, got {self.min_inliers}")

    def describe(self) -> str:
        return (
            f"< {self.max_translation_error_m:g} m and {self.max_heading_error_deg:g} deg with >= {self.min_inliers} "
            "inliers"
        )


SUCCESS = SuccessCriteria(max_translation_error_m=0.25, max_heading_error_deg=2.0, min_inliers=10)
STRICT = SuccessCriteria(max_translation_error_m=0.10, max_heading_error_deg=0.5, min_inliers=10)


def nearest_keyframes(T_world_vehicle: np.ndarray, T_world_keyframe: np.ndarray) -> np.ndarray:
    """(N,) index of the keyframe closest in world position (m) to each vehicle pose."""
    T_world_vehicle = transforms.check_stack("T_world_vehicle", T_world_vehicle)
    T_world_keyframe = transforms.check_stack("T_world_keyframe", T_world_keyframe)
    if len(T_world_keyframe) == 0:
        raise ValueError("nearest_keyframes: the map has no keyframes with ground truth")
    d = np.linalg.norm(T_world_vehicle[:, None, :3, 3] - T_world_keyframe[None, :, :3, 3], axis=2)
    return np.argmin(d, axis=1)


def ground_truth_in_map(
    T_world_vehicle: np.ndarray, T_map_keyframe: np.ndarray, T_world_keyframe: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """True vehicle poses in the map frame through the nearest keyframe: ((N, 4, 4) T_map_vehicle, (N,) index)."""
    T_map_keyframe = transforms.check_stack("T_map_keyframe", T_map_keyframe)
    if len(T_map_keyframe) != len(T_world_keyframe):
        raise ValueError(
            f"ground_truth_in_map: {len(T_map_keyframe)} map poses for {len(T_world_keyframe)} ground truths"
        )
    index = nearest_keyframes(T_world_vehicle, T_world_keyframe)
    T_map_world = T_map_keyframe[index] @ transforms.invert(np.asarray(T_world_keyframe)[index])
    return T_map_world @ T_world_vehicle, index


def pose_errors(T_map_vehicle_est: np.ndarray, T_map_vehicle_gt: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pose errors: along_track_m, lateral_m, vertical_m, heading_deg (signed), translation_m (planar)."""
    T_est = transforms.check_stack("T_map_vehicle_est", T_map_vehicle_est)
    T_gt = transforms.check_stack("T_map_vehicle_gt", T_map_vehicle_gt)
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


def errors_in_sigmas(
    xy_error_m: np.ndarray, heading_error_deg: np.ndarray, covariance: np.ndarray
) -> dict[str, np.ndarray]:
    """How many published standard deviations each estimate is off: `position` = the planar error `xy_error_m`
    (N, 2; estimate minus truth in the map frame) as a Mahalanobis distance under the (x, y) block of its ROS
    covariance (consistent: 95 % below 2.45), `heading` = |heading error| (`pose_errors`' heading_deg) / the yaw
    standard deviation (consistent: 95 % below 1.96). `covariance`: (N, 6, 6), map frame."""
    xy = np.asarray(xy_error_m, dtype=np.float64)
    covariance = np.asarray(covariance, dtype=np.float64)
    block = covariance[:, :2, :2]
    definite = np.linalg.det(block) > 0  # a degenerate published covariance claims certainty: inf sigmas
    position = np.full(len(xy), np.inf)
    if definite.any():
        solved = np.linalg.solve(block[definite], xy[definite][..., None])[..., 0]
        position[definite] = np.sqrt(np.einsum("ni,ni->n", xy[definite], solved))
    with np.errstate(divide="ignore", invalid="ignore"):
        heading = np.abs(np.radians(heading_error_deg)) / np.sqrt(covariance[:, 5, 5])
    return {"position": position, "heading": np.where(np.isnan(heading), np.inf, heading)}


def within_bounds(errors: dict[str, np.ndarray], criteria: SuccessCriteria) -> np.ndarray:
    """Frames whose planar and heading errors are within `criteria`'s bounds (False where the errors are NaN)."""
    with np.errstate(invalid="ignore"):
        return (errors["translation_m"] <= criteria.max_translation_error_m) & (
            np.abs(errors["heading_deg"]) <= criteria.max_heading_error_deg
        )


def success_mask(
    errors: dict[str, np.ndarray], localized: np.ndarray, inliers: np.ndarray, criteria: SuccessCriteria
) -> np.ndarray:
    """Frames localized with at least `criteria.min_inliers` inliers and errors within its bounds."""
    enough = np.asarray(inliers) >= criteria.min_inliers
    return np.asarray(localized, dtype=bool) & enough & within_bounds(errors, criteria)


def wrong_fix_mask(errors: dict[str, np.ndarray], localized: np.ndarray, criteria: SuccessCriteria) -> np.ndarray:
    """Localized frames with ground truth whose error exceeds `criteria`'s bounds: poses given out confidently
    and wrong, the failure a path tracker cannot see."""
    known = np.isfinite(errors["translation_m"]) & np.isfinite(errors["heading_deg"])
    return np.asarray(localized, dtype=bool) & known & ~within_bounds(errors, criteria)


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
