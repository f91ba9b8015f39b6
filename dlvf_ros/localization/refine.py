"""Pose refinement on stereo reprojection error, after RANSAC.

RANSAC aligns 3-D points, whose depth error grows with the square of the range: far points (trees, skyline) then
pull the translation. Here the keyframe's points q_i (left optical frame, m) are projected into the current stereo
pair and compared with the measured (u, v, d) of their matches (pixels): far points constrain rotation, near points
translation, each as much as its pixels allow. Gauss-Newton on T_cur_keyframe with a left perturbation
xi = (rho, phi), Huber-weighted residuals, match weights as priors; inliers are re-selected by residual norm.
The covariance is sigma^2 (J^T W J)^-1 with sigma the inlier residual RMS per component (floored at `min_sigma_px`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from dlvf_ros.config import check_settings, setting
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig


@dataclass
class RefineConfig:
    """Gauss-Newton stereo reprojection refinement (pixels)."""

    iterations: int = setting(10, "Gauss-Newton iterations of the stereo reprojection refinement", (2, 1000))
    # the first iteration uses the RANSAC inliers; the gate shrinks geometrically from the second to the last
    initial_threshold_px: float = setting(
        32.0, "refinement inlier gate (px) of the second iteration, shrinking to inlier_threshold_px", (0.01, 10_000.0)
    )
    inlier_threshold_px: float = setting(
        2.0, "final refinement inlier gate (px) on the (u, v, d) residual norm", (0.01, 1000.0)
    )
    huber_px: float = setting(1.0, "Huber loss width (px) of the refinement", (0.01, 1000.0))
    min_sigma_px: float = setting(
        0.3, "floor of the residual standard deviation (px) used for the covariance", (0.001, 100.0)
    )
    # Off by default: the pixel noise model is the same for every match, and classical detector responses are no
    # confidence (ORB: 5-8 cm instead of 0.2 m errors on the simulator); RANSAC may sample by the weights
    # (`RansacConfig.weighted_sampling`).
    weight_by_scores: bool = setting(
        False, "scale refinement residuals by the match weights (descriptor quality x scores)"
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.initial_threshold_px < self.inlier_threshold_px:
            raise ValueError("RefineConfig: initial_threshold_px must be >= inlier_threshold_px")


def scaled_refine_config(config: RefineConfig, scale: float) -> RefineConfig:
    """`config` with its pixel gates and noise floor multiplied by `scale` (keypoint pixels -> image pixels)."""
    return dataclasses.replace(
        config,
        initial_threshold_px=config.initial_threshold_px * scale,
        inlier_threshold_px=config.inlier_threshold_px * scale,
        huber_px=config.huber_px * scale,
        min_sigma_px=config.min_sigma_px * scale,
    )


@dataclass
class RefineResult:
    """T_cur_keyframe (left optical frames), inlier mask, count, inlier RMS (px), 6x6 covariance of xi."""

    T_cur_keyframe: np.ndarray
    inliers: np.ndarray
    num_inliers: int
    rms_px: float
    covariance: np.ndarray


def stereo_measurements(rig: StereoRig, points_camera: np.ndarray) -> np.ndarray:
    """(N, 3) left-camera points -> (N, 3) stereo measurements (u, v, d) in pixels."""
    uv, disparity = rig.project(points_camera)
    return np.column_stack([uv, disparity])


def _residuals(T: np.ndarray, points: np.ndarray, measured: np.ndarray, rig: StereoRig):
    """Predicted minus measured (u, v, d) (N, 3) px, the points in the current frame (N, 3) m, in front (N,)."""
    p = transforms.transform_points(T, points)
    z = np.maximum(p[:, 2], 1e-6)
    predicted = np.column_stack([rig.f * p[:, 0] / z + rig.cu, rig.f * p[:, 1] / z + rig.cv, rig.f * rig.baseline / z])
    return predicted - measured, p, p[:, 2] > 0.1


def _jacobians(p: np.ndarray, rig: StereoRig) -> np.ndarray:
    """d(u, v, d) / d xi (N, 3, 6) at current-frame points p (N, 3), xi = (rho, phi) perturbing on the left.

    The product of d(u, v, d) / dp = [[f/z, 0, -f x/z^2], [0, f/z, -f y/z^2], [0, 0, -f b/z^2]] and
    dp / dxi = [I, -[p]x], written out.
    """
    x, y, z = p[:, 0], p[:, 1], np.maximum(p[:, 2], 1e-6)
    a, c = rig.f / z, -rig.f * rig.baseline / z**2
    bx, by = -a * x / z, -a * y / z
    J = np.zeros((len(p), 3, 6))
    J[:, 0, 0] = J[:, 1, 1] = a
    J[:, 0, 2], J[:, 1, 2], J[:, 2, 2] = bx, by, c
    J[:, 0, 3], J[:, 0, 4], J[:, 0, 5] = bx * y, a * z - bx * x, -a * y
    J[:, 1, 3], J[:, 1, 4], J[:, 1, 5] = by * y - a * z, -by * x, a * x
    J[:, 2, 3], J[:, 2, 4] = c * y, -c * x
    return J


def refine_stereo_pose(
    T_cur_keyframe: np.ndarray,
    points_keyframe: np.ndarray,
    measured_cur: np.ndarray,
    weights: np.ndarray,
    initial_inliers: np.ndarray,
    rig: StereoRig,
    config: RefineConfig | None = None,
) -> RefineResult:
    """Refine T_cur_keyframe from keyframe points (N, 3) m and their matched current (u, v, d) (N, 3) px.

    The first iteration uses `initial_inliers` (RANSAC's); later ones gate residuals with a threshold shrinking
    from `initial_threshold_px` to `inlier_threshold_px`.
    """
    config = config or RefineConfig()
    T = np.asarray(T_cur_keyframe, np.float64).copy()
    weights = np.asarray(weights, np.float64)
    gates = np.geomspace(config.initial_threshold_px, config.inlier_threshold_px, config.iterations - 1)
    for iteration in range(config.iterations):
        residuals, p, in_front = _residuals(T, points_keyframe, measured_cur, rig)
        norms = np.linalg.norm(residuals, axis=1)
        inliers = in_front & (initial_inliers if iteration == 0 else norms < gates[iteration - 1])
        if inliers.sum() < 3:
            break
        robust = np.where(norms <= config.huber_px, 1.0, config.huber_px / np.maximum(norms, 1e-12))
        J = _jacobians(p[inliers], rig).reshape(-1, 6)  # the inliers' (u, v, d) rows; outliers weigh nothing
        weighted_J = J * np.repeat(weights[inliers] * robust[inliers], 3)[:, None]
        H = weighted_J.T @ J
        g = weighted_J.T @ residuals[inliers].reshape(-1)
        step = -np.linalg.solve(H + 1e-9 * np.eye(6), g)
        T = transforms.make_transform(transforms.so3_exp(step[3:]), step[:3]) @ T
    residuals, p, in_front = _residuals(T, points_keyframe, measured_cur, rig)
    inliers = in_front & (np.linalg.norm(residuals, axis=1) < config.inlier_threshold_px)
    count = int(inliers.sum())
    if count < 3:
        return RefineResult(T, inliers, count, float("inf"), np.full((6, 6), np.inf))
    rms = float(np.sqrt(np.mean(residuals[inliers] ** 2)))
    sigma2 = max(rms, config.min_sigma_px) ** 2
    J = _jacobians(p[inliers], rig).reshape(-1, 6)
    return RefineResult(T, inliers, count, rms, np.linalg.pinv(J.T @ J / sigma2))
