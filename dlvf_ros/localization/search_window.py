"""Which teach keyframes to try for the current frame.

Tracking (a previous fix exists): keyframes within a radius of the expected position (the last fix propagated by
odometry), nearest first. The radius grows with the distance driven since the last fix and is multiplied when the
health is DEGRADED. Searching globally (start-up without a prior, or beyond odometry's reach): every keyframe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlvf_ros.config import check_settings, setting


@dataclass
class WindowConfig:
    """Search window (metres) and how many keyframes go through matching / RANSAC."""

    radius_m: float = setting(3.0, "search radius (m) around the expected position right after a fix", (0.01, 10_000.0))
    growth_per_m: float = setting(
        0.2, "extra search radius (m) per metre driven on odometry since the last fix", (0.0, 100.0)
    )
    degraded_factor: float = setting(2.0, "search radius multiplier while DEGRADED", (1.0, 100.0))
    max_radius_m: float = setting(30.0, "largest search radius (m)", (0.01, 100_000.0))
    max_candidates: int = setting(
        3, "nearest keyframes matched while tracking: the local submap (the first is its reference)", (1, 10_000)
    )
    global_ransac_candidates: int = setting(
        5, "global search: keyframes with the most matches tried as submap references", (1, 10_000)
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.radius_m > self.max_radius_m:
            raise ValueError(f"WindowConfig: need radius_m <= max_radius_m, got {self.radius_m}, {self.max_radius_m}")


def search_radius_m(config: WindowConfig, distance_since_fix_m: float, degraded: bool) -> float:
    radius = config.radius_m + config.growth_per_m * distance_since_fix_m
    if degraded:
        radius *= config.degraded_factor
    return min(radius, config.max_radius_m)


def keyframes_in_window(
    positions_m: np.ndarray, expected_position_m: np.ndarray, radius_m: float, max_candidates: int
) -> np.ndarray:
    """Ids of the keyframes (positions (K, 3), map frame) within `radius_m` of the expected position, nearest first.

    The distance is planar (x, y): the teach map is driven on the ground and z carries odometry drift.
    """
    distance = np.linalg.norm(positions_m[:, :2] - np.asarray(expected_position_m)[:2], axis=1)
    order = np.argsort(distance, kind="stable")
    order = order[distance[order] <= radius_m]
    return order[:max_candidates]
