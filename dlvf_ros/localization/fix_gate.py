"""What a fix must pass before the localizer publishes it: for a path tracker no fix is better than a wrong one.

1. Innovation gate (tracking: the last fix propagated by odometry predicts the pose, while the distance driven since
   it is within the health's `max_dead_reckoning_m`, LOST by frame count included). The planar innovation
   nu = (x, y, heading) of the fix against the prediction, in the map frame, with S = P_predicted + R_fix over those
   components (ROS covariance order x, y, rz; P grown with distance and time since the fix): the fix passes when
   nu^T S^-1 nu <= `max_mahalanobis2`, the chi-square test a Kalman filter gates its measurements with (3 degrees of
   freedom; 16.27 is p = 0.001). A wrong keyframe, or matches that agree on a wrong pose, give a fix
   centimetres-confident and metres away: refused.
2. Confirmation (no prediction: start-up, or beyond odometry's reach). A pose searched for in the whole map needs
   `min_inliers_without_prediction` inliers (a weak pose somewhere among all keyframes is too often a chance
   alignment) and is held back until the next frame's pose passes the innovation gate against it, propagated by
   odometry: two views from two places must agree. Near a start-up prior (an initial pose, e.g. /initialpose, or the
   initial keyframe with its sigmas) each of the two needs only `min_inliers_with_prior` inliers, must also pass the
   innovation gate against the prior, and the two must not be explained by "standing on a keyframe": a robot parked
   at its start sees one view, whose "standing on a keyframe" explanation two frames confirm as well as the true one
   (closed-loop dusk started 0.9 m off so). So either the later pose agrees with the earlier propagated by odometry
   and would not without the motion odometry measured between them, or both lie at least
   `stationary_confirmation_m` from every keyframe, where that explanation puts no pose (closed loop at night, parked
   0.3 m and 5 deg off the path's start: confirmed by its first two frames). A robot parked on a keyframe gets its
   first fix once it moves: the path tracker creeps ahead when no fix has come after `start_wait_s`. While LOST,
   a pose that disagrees with the prediction takes this path too: the prediction may be a wrong fix followed by
   odometry, which the innovation gate alone would keep for the whole odometry reach.
3. Taught path (always), with the keyframe spacing s (median distance between consecutive keyframes):
   - a fix whose nearest keyframe is the first or the last must not lie more than `end_reach_spacings` x s beyond it
     along the path (a partial map: frames past its end get no fix);
   - the fix must lie within `keyframe_reach_spacings` x s of a keyframe it was matched against, facing within
     `max_keyframe_angle_deg` of it, so that the matched keyframes' views overlap the current one.
4. Submap agreement (without a prediction): when the pose comes from a submap of several keyframes, a second
   keyframe must give at least `min_inliers_second_keyframe` of its inliers. True matches of a view to keyframes 1 m
   apart agree on one pose; "the same image place" matches of a self-similar view (night: the headlight-lit ground)
   explain it as standing on one keyframe, which the others contradict; a prior metres wide or the confirmation
   cannot tell them from a true pose, whatever their number of inliers (SIFT in the evening: 99 inliers from one
   keyframe, 0.92 m off, confirmed by the next frame near the start-up prior).
   - At the start, motion tells them apart: a "standing on the keyframe" pose stays on its keyframe while the vehicle
     moves, a true one moves with it. A one-keyframe pose supported by the keyframe nearest the start-up prior, the
     vehicle within the prior's 1-sigma position uncertainty of it, may be confirmed as rule 2 confirms near a prior
     (by a pose further on that moves with odometry from it, or, off every keyframe, by the next frame).
     A robot parked at night on its path's start matches its own keyframe only (closed loop at 320x240, 0.3 m and
     5 deg off the path: 70 inliers from keyframe 0, none from keyframes 1 and 2, the pose right to 1 cm).
   - Only there: a view matched to the keyframe one spacing off, all along the path, moves with the vehicle too
     (SIFT at night on the held-out-style world: 18 wrong fixes 1.3 m off when any keyframe could confirm so).
   - While tracking the rule is not applied: at night the near, lit ground that the current view shares with the
     next keyframes is seen there at another scale, so true poses often have the support of one keyframe only
     (measured on the held-out-style world's night repeat: 44 of 80 frames fixed with 3 outside 0.25 m / 2 deg
     without the rule, 15 with it and the same 3), and the innovation gate refused every pose off by metres.
5. Precision (always, last): the 1-sigma planar position and heading uncertainty of the fix's covariance, which
   holds the fit's own uncertainty and its disagreement with the odometry prediction, must be within
   `max_position_sigma_m` and `max_heading_sigma_deg`. A fit on a few near, lit points at night can be centimetre-right
   and degrees-wrong in heading; a pose known no better than a path tracker needs is no fix (measured on the
   held-out-style world's night repeat: the three fixes outside 2 deg had 2.1-3.5 deg sigma).
Distances are planar (x, y of the map frame): the path is driven on the ground and z carries odometry drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlvf_ros.config import check_settings, setting
from dlvf_ros.geometry import transforms
from dlvf_ros.localization.covariance import PLANAR_INDEX, planar_position_std_m


@dataclass
class FixGateConfig:
    """Innovation gate (squared Mahalanobis distance, 3 DOF), taught-path reach (in keyframe spacings, deg) and the
    inlier bars of a pose without a prediction and of a submap's second keyframe."""

    max_mahalanobis2: float = setting(
        16.27,
        "publish a fix only if its squared Mahalanobis distance (x, y, heading) to the odometry prediction is at most "
        "this (chi-square, 3 DOF; 16.27: p = 0.001)",
        (0.01, 1e6),
    )
    end_reach_spacings: float = setting(
        1.0, "refuse fixes more than this many keyframe spacings beyond the first / last keyframe", (0.01, 1000.0)
    )
    keyframe_reach_spacings: float = setting(
        2.0,
        "refuse fixes more than this many keyframe spacings from the keyframes they were matched against",
        (0.01, 1000.0),
    )
    max_keyframe_angle_deg: float = setting(
        45.0, "refuse fixes facing more than this (deg) away from the keyframes they were matched against", (0.1, 180.0)
    )
    min_inliers_without_prediction: int = setting(
        40,
        "start-up and LOST (no prediction to gate against): inliers a pose needs to be held or to confirm",
        (3, 1_000_000),
    )
    min_inliers_with_prior: int = setting(
        15,
        "start-up near a prior (an initial pose or keyframe): inliers a pose needs to be held or to confirm; it must "
        "also pass the innovation gate against the prior",
        (3, 1_000_000),
    )
    stationary_confirmation_m: float = setting(
        0.15,
        "start-up near a prior: two frames of a standing vehicle confirm a pose at least this far (m, planar) from "
        "every keyframe; nearer one, 'standing on the keyframe' explains it too and the confirmation must span motion",
        (0.001, 1000.0),
    )
    min_inliers_second_keyframe: int = setting(
        3,
        "refuse a pose unless a second keyframe of its submap gives at least this many of its inliers",
        (0, 1_000_000),
    )

    max_position_sigma_m: float = setting(
        0.25, "refuse a pose whose 1-sigma planar position uncertainty (m) exceeds this", (0.001, 1000.0)
    )
    max_heading_sigma_deg: float = setting(
        2.0, "refuse a pose whose 1-sigma heading uncertainty (deg) exceeds this", (0.01, 180.0)
    )

    def __post_init__(self) -> None:
        check_settings(self)


def planar_innovation(T_map_predicted: np.ndarray, T_map_fix: np.ndarray) -> np.ndarray:
    """(x m, y m, heading rad) of the fix minus the prediction, in the map frame (heading wrapped to (-pi, pi])."""
    heading = transforms.yaw_of(T_map_fix) - transforms.yaw_of(T_map_predicted)
    return np.array(
        [
            T_map_fix[0, 3] - T_map_predicted[0, 3],
            T_map_fix[1, 3] - T_map_predicted[1, 3],
            np.arctan2(np.sin(heading), np.cos(heading)),
        ]
    )


def mahalanobis2(innovation: np.ndarray, covariance_predicted: np.ndarray, covariance_fix: np.ndarray) -> float:
    """nu^T S^-1 nu with S the sum of the two ROS covariances' (x, y, rz) blocks."""
    block = np.ix_(PLANAR_INDEX, PLANAR_INDEX)
    S = covariance_predicted[block] + covariance_fix[block]
    return float(innovation @ np.linalg.solve(S, innovation))


def submap_refusal(inliers_per_keyframe: dict[int, int], config: FixGateConfig) -> str:
    """Why a pose whose inliers came from these submap keyframes is refused (rule 4); "" if it is not."""
    if len(inliers_per_keyframe) < 2:
        return ""
    (first, most), (_, second) = sorted(inliers_per_keyframe.items(), key=lambda item: -item[1])[:2]
    if second >= config.min_inliers_second_keyframe:
        return ""
    return (
        f"{most} inliers from keyframe {first} alone, at most {second} from the other keyframes of its submap "
        f"(needs {config.min_inliers_second_keyframe}): they contradict it"
    )


def precision_refusal(covariance: np.ndarray, config: FixGateConfig) -> str:
    """Why a pose with this 6x6 ROS covariance (m^2, rad^2) is too uncertain to publish (rule 5); "" if it is not."""
    sigma_m = planar_position_std_m(covariance)
    sigma_deg = float(np.degrees(np.sqrt(max(covariance[5, 5], 0.0))))
    if sigma_m <= config.max_position_sigma_m and sigma_deg <= config.max_heading_sigma_deg:
        return ""
    return (
        f"too uncertain: 1-sigma {sigma_m:.2f} m, {sigma_deg:.1f} deg (limits {config.max_position_sigma_m} m, "
        f"{config.max_heading_sigma_deg} deg)"
    )


class TaughtPath:
    """The map's keyframes seen from above: where along the taught path a fix may lie (rule 3 of the module
    docstring)."""

    def __init__(self, T_map_keyframe: np.ndarray, config: FixGateConfig) -> None:
        T_map_keyframe = np.asarray(T_map_keyframe, np.float64).reshape(-1, 4, 4)
        if len(T_map_keyframe) == 0:
            raise ValueError("TaughtPath: the map has no keyframes")
        self.config = config
        self.positions_m = T_map_keyframe[:, :2, 3]
        self.headings_rad = np.arctan2(T_map_keyframe[:, 1, 0], T_map_keyframe[:, 0, 0])
        steps = np.linalg.norm(np.diff(self.positions_m, axis=0), axis=1)
        steps = steps[steps > 1e-3]
        self.spacing_m = float(np.median(steps)) if len(steps) else 1.0  # one keyframe: the teach default

    def nearest_keyframe(self, T_map_vehicle: np.ndarray) -> int:
        """Index of the keyframe nearest (planar) to the vehicle."""
        return int(np.argmin(self._distances_m(T_map_vehicle)))

    def keyframe_distance_m(self, T_map_vehicle: np.ndarray) -> float:
        """Planar distance (m) from the vehicle to the nearest keyframe."""
        return float(np.min(self._distances_m(T_map_vehicle)))

    def _distances_m(self, T_map_vehicle: np.ndarray) -> np.ndarray:
        return np.linalg.norm(self.positions_m - T_map_vehicle[:2, 3], axis=1)

    def refusal(self, T_map_vehicle: np.ndarray, matched_keyframes: list[int]) -> str:
        """Why a fix at T_map_vehicle, computed from `matched_keyframes`, is off the taught path; "" if it is not."""
        cfg = self.config
        position = T_map_vehicle[:2, 3]
        distance = self._distances_m(T_map_vehicle)
        nearest = int(np.argmin(distance))
        heading = self.headings_rad[nearest]
        along_m = float((position - self.positions_m[nearest]) @ np.array([np.cos(heading), np.sin(heading)]))
        end_reach_m = cfg.end_reach_spacings * self.spacing_m
        last = len(self.positions_m) - 1
        if nearest == last and along_m > end_reach_m:
            return (
                f"fix {along_m:.2f} m beyond the last keyframe ({last}) of the taught path (reach {end_reach_m:.2f} m)"
            )
        if nearest == 0 and along_m < -end_reach_m:
            return f"fix {-along_m:.2f} m before the first keyframe of the taught path (reach {end_reach_m:.2f} m)"
        members = np.asarray(matched_keyframes, dtype=np.int64)
        closest = int(members[np.argmin(distance[members])])
        keyframe_reach_m = cfg.keyframe_reach_spacings * self.spacing_m
        if distance[closest] > keyframe_reach_m:
            return (
                f"fix {distance[closest]:.2f} m from the nearest keyframe it was matched against ({closest}; "
                f"reach {keyframe_reach_m:.2f} m): their views do not overlap"
            )
        turn = transforms.yaw_of(T_map_vehicle) - self.headings_rad[closest]
        turn_deg = float(np.degrees(abs(np.arctan2(np.sin(turn), np.cos(turn)))))
        if turn_deg > cfg.max_keyframe_angle_deg:
            return (
                f"fix faces {turn_deg:.0f} deg away from keyframe {closest} it was matched against "
                f"(at most {cfg.max_keyframe_angle_deg:.0f} deg)"
            )
        return ""
