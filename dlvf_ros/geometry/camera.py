"""Rectified stereo rig: calibration, pixel <-> 3-D point maps, CameraInfo matrices.

Pixels use integer values at pixel centres (OpenCV convention). Points are in the left optical frame
(x right, y down, z forward), metres. `T_vehicle_camera` is the pose of the left optical frame on the vehicle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dlvf_ros.geometry import transforms

MIN_DEPTH_M = 0.1
MAX_DEPTH_M = 400.0


def default_T_vehicle_camera(height_m: float = 1.0, forward_m: float = 0.3, pitch_down_deg: float = 19.0) -> np.ndarray:
    """Left optical frame on the vehicle: `forward_m` ahead, `height_m` up, pitched down by `pitch_down_deg`.

    The optical axis (camera z) points along vehicle +x tilted down; camera x points to vehicle -y (right).
    """
    R_vehicle_optical = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    R = transforms.rot_y(np.deg2rad(pitch_down_deg)) @ R_vehicle_optical
    return transforms.make_transform(R, [forward_m, 0.0, height_m])


@dataclass
class StereoRig:
    """A rectified stereo pair with fx = fy = f (pixels) and baseline (m)."""

    width: int = 512
    height: int = 384
    f: float = 388.425
    cu: float = 253.502
    cv: float = 196.822
    baseline: float = 0.24
    T_vehicle_camera: np.ndarray = field(default_factory=default_T_vehicle_camera)

    def __post_init__(self) -> None:
        self.T_vehicle_camera = np.asarray(self.T_vehicle_camera, dtype=np.float64)
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"StereoRig: image size must be positive, got {self.width}x{self.height}")
        if not (self.f > 0 and self.baseline > 0):
            raise ValueError(f"StereoRig: f and baseline must be positive, got f={self.f}, baseline={self.baseline}")
        if not transforms.is_rigid(self.T_vehicle_camera):
            raise ValueError("StereoRig: T_vehicle_camera is not a rigid 4x4 transform")

    @property
    def K(self) -> np.ndarray:
        """3x3 intrinsic matrix of either (rectified) camera."""
        return np.array([[self.f, 0.0, self.cu], [0.0, self.f, self.cv], [0.0, 0.0, 1.0]])

    def projection_matrix(self, right: bool = False) -> np.ndarray:
        """3x4 CameraInfo P; the right camera has P[0, 3] = -f * baseline (ROS convention)."""
        P = np.hstack([self.K, np.zeros((3, 1))])
        if right:
            P[0, 3] = -self.f * self.baseline
        return P

    def scaled(self, width: int, height: int) -> StereoRig:
        """The same rig for images resized to width x height (pixel-centre convention preserved)."""
        sx, sy = width / self.width, height / self.height
        if abs(sx - sy) > 1e-3:
            raise ValueError(f"StereoRig.scaled: aspect ratio change {self.width}x{self.height} -> {width}x{height}")
        return StereoRig(
            width,
            height,
            self.f * sx,
            (self.cu + 0.5) * sx - 0.5,
            (self.cv + 0.5) * sy - 0.5,
            self.baseline,
            self.T_vehicle_camera.copy(),
        )

    def points_from_disparity(self, uv: np.ndarray, disparity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Triangulate (N, 2) left pixels with (N,) disparities (px) -> ((N, 3) points in metres, (N,) valid mask).

        Invalid points (non-positive disparity, depth outside [0.1, 400] m) are returned as zeros.
        """
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        d = np.asarray(disparity, dtype=np.float64).reshape(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = self.f * self.baseline / d
            valid = np.isfinite(z) & (d > 0) & (z >= MIN_DEPTH_M) & (z <= MAX_DEPTH_M)
            points = np.stack(
                [self.baseline * (uv[:, 0] - self.cu) / d, self.baseline * (uv[:, 1] - self.cv) / d, z], axis=1
            )
        points[~valid] = 0.0
        return points, valid

    def project(self, points_camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) left-camera points -> ((N, 2) left pixels, (N,) disparities in px)."""
        p = np.asarray(points_camera, dtype=np.float64).reshape(-1, 3)
        z = p[:, 2]
        uv = np.stack([self.f * p[:, 0] / z + self.cu, self.f * p[:, 1] / z + self.cv], axis=1)
        return uv, self.f * self.baseline / z

    def to_dict(self) -> dict:
        return {
            "width": int(self.width),
            "height": int(self.height),
            "f": float(self.f),
            "cu": float(self.cu),
            "cv": float(self.cv),
            "baseline": float(self.baseline),
            "T_vehicle_camera": [[float(x) for x in row] for row in self.T_vehicle_camera],
        }

    @classmethod
    def from_dict(cls, data: dict) -> StereoRig:
        known = {"width", "height", "f", "cu", "cv", "baseline", "T_vehicle_camera"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"StereoRig: unknown calibration keys {sorted(unknown)}; expected {sorted(known)}")
        return cls(**data)

    def matches(self, other: StereoRig, tol: float = 1e-3) -> bool:
        """True if two rigs describe the same calibration within `tol` (pixels, metres)."""
        a, b = self.to_dict(), other.to_dict()
        return (
            (a["width"], a["height"]) == (b["width"], b["height"])
            and all(abs(a[k] - b[k]) <= tol for k in ("f", "cu", "cv", "baseline"))
            and np.allclose(self.T_vehicle_camera, other.T_vehicle_camera, atol=tol)
        )
