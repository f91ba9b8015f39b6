"""SE(3) / SO(3) helpers on 4x4 float64 numpy matrices.

`T_a_b` maps points in frame b to frame a (`p_a = T_a_b @ p_b`). Quaternions are (x, y, z, w) as in ROS.
Every module uses these; do not re-implement them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def make_transform(rotation: npt.ArrayLike, translation: npt.ArrayLike) -> np.ndarray:
    """4x4 transform from a 3x3 rotation and a 3-vector translation (metres)."""
    T = np.eye(4)
    T[:3, :3] = rotation
    T[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return T


def invert(T_a_b: np.ndarray) -> np.ndarray:
    """Exact inverse of a rigid transform: returns T_b_a. Works on (..., 4, 4) stacks."""
    T_a_b = np.asarray(T_a_b, dtype=np.float64)
    R_t = np.swapaxes(T_a_b[..., :3, :3], -1, -2)
    T_b_a = np.zeros_like(T_a_b)
    T_b_a[..., :3, :3] = R_t
    T_b_a[..., :3, 3] = -(R_t @ T_a_b[..., :3, 3:4])[..., 0]
    T_b_a[..., 3, 3] = 1.0
    return T_b_a


def transform_points(T_a_b: np.ndarray, points_b: np.ndarray) -> np.ndarray:
    """Map (N, 3) points in frame b to frame a."""
    points_b = np.asarray(points_b, dtype=np.float64)
    return points_b @ T_a_b[:3, :3].T + T_a_b[:3, 3]


def rot_x(angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def from_xyz_rpy(x: float, y: float, z: float, roll: float = 0.0, pitch: float = 0.0, yaw: float = 0.0) -> np.ndarray:
    """Transform from a translation (m) and roll/pitch/yaw (rad, R = Rz(yaw) Ry(pitch) Rx(roll), as in ROS)."""
    return make_transform(rot_z(yaw) @ rot_y(pitch) @ rot_x(roll), [x, y, z])


def so3_exp(phi: np.ndarray) -> np.ndarray:
    """Rotation matrix from an axis-angle vector (rad)."""
    phi = np.asarray(phi, dtype=np.float64).reshape(3)
    angle = np.linalg.norm(phi)
    K = np.array([[0.0, -phi[2], phi[1]], [phi[2], 0.0, -phi[0]], [-phi[1], phi[0], 0.0]])
    if angle < 1e-12:
        return np.eye(3) + K
    return np.eye(3) + np.sin(angle) / angle * K + (1.0 - np.cos(angle)) / angle**2 * (K @ K)


def so3_log(R: np.ndarray) -> np.ndarray:
    """Axis-angle vector (rad) of a rotation matrix; stable near 0 and pi."""
    q = quaternion_from_rotation(R)
    xyz, w = q[:3], q[3]
    if w < 0.0:
        xyz, w = -xyz, -w
    s = np.linalg.norm(xyz)
    if s < 1e-12:
        return 2.0 * xyz
    return 2.0 * np.arctan2(s, w) * xyz / s


def interpolate(T_a: np.ndarray, T_b: np.ndarray, alpha: float) -> np.ndarray:
    """Pose between T_a (alpha 0) and T_b (alpha 1): linear in translation, geodesic (slerp) in rotation."""
    R_ab = T_a[:3, :3].T @ T_b[:3, :3]
    R = T_a[:3, :3] @ so3_exp(alpha * so3_log(R_ab))
    return make_transform(R, (1.0 - alpha) * T_a[:3, 3] + alpha * T_b[:3, 3])


def rotation_angle(R: np.ndarray) -> float:
    """Magnitude (rad, in [0, pi]) of a rotation."""
    return float(np.linalg.norm(so3_log(R)))


def yaw_of(T: np.ndarray) -> float:
    """Heading (rad) of the x axis of a transform projected onto the xy plane."""
    return float(np.arctan2(T[1, 0], T[0, 0]))


def quaternion_from_rotation(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) with w >= 0 of a 3x3 rotation matrix."""
    R = np.asarray(R, dtype=np.float64)
    m = (
        np.array(
            [
                [R[0, 0] - R[1, 1] - R[2, 2], 0.0, 0.0, 0.0],
                [R[0, 1] + R[1, 0], R[1, 1] - R[0, 0] - R[2, 2], 0.0, 0.0],
                [R[0, 2] + R[2, 0], R[1, 2] + R[2, 1], R[2, 2] - R[0, 0] - R[1, 1], 0.0],
                [R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1], R[0, 0] + R[1, 1] + R[2, 2]],
            ]
        )
        / 3.0
    )
    eigenvalues, eigenvectors = np.linalg.eigh(m)
    q = eigenvectors[:, np.argmax(eigenvalues)]
    return q if q[3] >= 0.0 else -q


def rotation_from_quaternion(q_xyzw) -> np.ndarray:
    """3x3 rotation from a quaternion (x, y, z, w); normalises it first."""
    x, y, z, w = np.asarray(q_xyzw, dtype=np.float64) / np.linalg.norm(q_xyzw)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def se3_log(T: np.ndarray) -> np.ndarray:
    """6-vector (rho_x, rho_y, rho_z, phi_x, phi_y, phi_z) with T = exp(xi^)."""
    phi = so3_log(T[:3, :3])
    angle = np.linalg.norm(phi)
    K = np.array([[0.0, -phi[2], phi[1]], [phi[2], 0.0, -phi[0]], [-phi[1], phi[0], 0.0]])
    if angle < 1e-3:  # series form: the closed form cancels catastrophically for small angles
        coefficient = 1.0 / 12.0 + angle**2 / 720.0
    else:
        coefficient = (1.0 - angle * np.sin(angle) / (2.0 * (1.0 - np.cos(angle)))) / angle**2
    V_inv = np.eye(3) - 0.5 * K + coefficient * (K @ K)
    return np.concatenate([V_inv @ T[:3, 3], phi])


def body_twist(T_odom_a: np.ndarray, T_odom_b: np.ndarray, dt_s: float) -> np.ndarray:
    """(vx, vy, vz, wx, wy, wz) in the vehicle frame (m/s, rad/s): the constant twist moving from pose a to pose b
    in `dt_s` seconds."""
    if dt_s <= 0:
        raise ValueError(f"body_twist: time step must be positive, got {dt_s} s")
    return se3_log(invert(T_odom_a) @ T_odom_b) / dt_s


_LAST_ROW = np.array([0.0, 0.0, 0.0, 1.0])


def is_rigid(T: np.ndarray, tol: float = 1e-6) -> bool:
    """True if T is a finite 4x4 rigid transform (orthonormal rotation, det +1, last row 0 0 0 1).

    Elementwise `|a - b| <= tol + 1e-5 |b|` (np.allclose's test) without np.allclose's per-call overhead: map
    readers check thousands of poses."""
    T = np.asarray(T)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        return False
    R = T[:3, :3]
    identity = np.eye(3)
    det = (
        R[0, 0] * (R[1, 1] * R[2, 2] - R[1, 2] * R[2, 1])
        - R[0, 1] * (R[1, 0] * R[2, 2] - R[1, 2] * R[2, 0])
        + R[0, 2] * (R[1, 0] * R[2, 1] - R[1, 1] * R[2, 0])
    )
    return bool(
        np.all(np.abs(R @ R.T - identity) <= tol + 1e-5 * identity)
        and abs(det - 1.0) < tol
        and np.all(np.abs(T[3] - _LAST_ROW) <= tol + 1e-5 * _LAST_ROW)
    )


def check_stack(name: str, T: np.ndarray) -> np.ndarray:
    """`T` as a finite (N, 4, 4) float64 stack of transforms; ValueError naming `name` otherwise."""
    T = np.asarray(T, dtype=np.float64)
    if T.ndim != 3 or T.shape[1:] != (4, 4):
        raise ValueError(f"{name}: expected a (N, 4, 4) stack of transforms, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError(f"{name}: contains NaN or infinite entries")
    return T
