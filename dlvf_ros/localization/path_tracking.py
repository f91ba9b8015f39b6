"""Where the vehicle is relative to the taught path: what a VT&R path tracker steers by.

The taught path is the polyline through the teach vertices (map keyframes, in id order), measured in the map's
ground plane (x, y). `TaughtPath.locate(T_map_vehicle)` projects the vehicle onto the nearest segment and gives
- `vertex_id`: the nearest teach vertex along the path (the segment end closer to the projection; VT&R's "trunk"),
- `T_vertex_vehicle`: the vehicle in that vertex's frame, with the pose covariance rotated into the vertex frame,
- `progress_m`: arc length (m) from vertex 0 to the projection (negative before the first vertex, beyond the path's
  length past the last: the end segments are extended),
- `cross_track_m`: signed distance (m) from the path, + when the vehicle is left of the direction of travel,
- `heading_error_rad`: vehicle yaw minus the path's yaw at the projection, in (-pi, pi], + counter-clockwise.
A `near_vertex` hint (the localizer's matched keyframe, or the previous answer) restricts the search to the path
within `hint_window_m` of arc length around it, so a path that loops back on itself is not confused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlvf_ros.geometry import transforms


@dataclass(frozen=True)
class PathPosition:
    """The vehicle relative to the taught path (see the module docstring for each field's meaning)."""

    vertex_id: int
    T_vertex_vehicle: np.ndarray  # 4x4
    covariance: np.ndarray | None  # 6x6 (x, y, z, rx, ry, rz) in the vertex frame, m^2 / rad^2; None: unknown
    progress_m: float
    cross_track_m: float
    heading_error_rad: float


def wrap_angle(angle_rad: float) -> float:
    """`angle_rad` wrapped into (-pi, pi]."""
    wrapped = float(np.arctan2(np.sin(angle_rad), np.cos(angle_rad)))
    return np.pi if wrapped == -np.pi else wrapped


def rotate_covariance(covariance: np.ndarray, R_b_a: np.ndarray) -> np.ndarray:
    """A 6x6 pose covariance (x, y, z, rx, ry, rz) about frame a's axes re-expressed about frame b's axes."""
    B = np.zeros((6, 6))
    B[:3, :3] = B[3:, 3:] = R_b_a
    return B @ np.asarray(covariance, dtype=np.float64) @ B.T


class TaughtPath:
    """The teach vertices' poses `T_map_vertex` (K, 4, 4), in path order; see the module docstring."""

    def __init__(self, T_map_vertex: np.ndarray, hint_window_m: float = 20.0) -> None:
        T_map_vertex = np.asarray(T_map_vertex, dtype=np.float64)
        if T_map_vertex.ndim != 3 or T_map_vertex.shape[1:] != (4, 4) or len(T_map_vertex) == 0:
            raise ValueError(f"TaughtPath: expected a (K, 4, 4) stack of K >= 1 poses, got shape {T_map_vertex.shape}")
        if not hint_window_m > 0:
            raise ValueError(f"TaughtPath: hint_window_m must be > 0, got {hint_window_m}")
        self.T_map_vertex = T_map_vertex
        self.hint_window_m = float(hint_window_m)
        self._xy = T_map_vertex[:, :2, 3]
        self._segment = np.diff(self._xy, axis=0)  # (K-1, 2)
        self._length = np.linalg.norm(self._segment, axis=1)
        self.vertex_progress_m = np.concatenate([[0.0], np.cumsum(self._length)])  # (K,) arc length at each vertex

    def __len__(self) -> int:
        return len(self.T_map_vertex)

    @property
    def length_m(self) -> float:
        return float(self.vertex_progress_m[-1])

    def locate(
        self, T_map_vehicle: np.ndarray, covariance: np.ndarray | None = None, near_vertex: int | None = None
    ) -> PathPosition:
        """The vehicle at `T_map_vehicle` (with its map-frame pose `covariance`, or None) relative to the path."""
        T_map_vehicle = np.asarray(T_map_vehicle, dtype=np.float64)
        point = T_map_vehicle[:2, 3]
        vehicle_yaw = transforms.yaw_of(T_map_vehicle)
        if len(self) == 1:  # a one-vertex path runs along the vertex's heading
            vertex, foot, path_yaw = 0, self._xy[0], self._yaw(0)
        else:
            segment, t = self._nearest_segment(point, near_vertex)
            foot = self._xy[segment] + t * self._segment[segment]
            progress = float(self.vertex_progress_m[segment] + t * self._length[segment])
            vertex = segment if t < 0.5 else segment + 1
            # a zero-length segment (two vertices at one place) has the vertex's own heading
            path_yaw = (
                float(np.arctan2(self._segment[segment][1], self._segment[segment][0]))
                if self._length[segment] > 0
                else self._yaw(segment)
            )
        direction = np.array([np.cos(path_yaw), np.sin(path_yaw)])
        offset = point - foot
        if len(self) == 1:
            progress = float(np.dot(direction, offset))
        cross_track = float(direction[0] * offset[1] - direction[1] * offset[0])
        T_map_vertex = self.T_map_vertex[vertex]
        R_vertex_map = T_map_vertex[:3, :3].T
        return PathPosition(
            vertex_id=int(vertex),
            T_vertex_vehicle=transforms.invert(T_map_vertex) @ T_map_vehicle,
            covariance=None if covariance is None else rotate_covariance(covariance, R_vertex_map),
            progress_m=progress,
            cross_track_m=cross_track,
            heading_error_rad=wrap_angle(vehicle_yaw - path_yaw),
        )

    def _yaw(self, vertex: int) -> float:
        return transforms.yaw_of(self.T_map_vertex[vertex])

    def _nearest_segment(self, point: np.ndarray, near_vertex: int | None) -> tuple[int, float]:
        """(segment index, position t along it: 0 at its start vertex, 1 at its end; < 0 / > 1 only on the first /
        last segment) of the segment nearest `point` among those allowed by the hint."""
        squared = np.maximum(self._length**2, 1e-18)
        t = np.einsum("ij,ij->i", point - self._xy[:-1], self._segment) / squared
        t[1:] = np.maximum(t[1:], 0.0)
        t[:-1] = np.minimum(t[:-1], 1.0)
        feet = self._xy[:-1] + t[:, None] * self._segment
        distance = np.linalg.norm(point - feet, axis=1)
        if near_vertex is not None and 0 <= near_vertex < len(self):
            hint = self.vertex_progress_m[near_vertex]
            outside = (self.vertex_progress_m[1:] < hint - self.hint_window_m) | (
                self.vertex_progress_m[:-1] > hint + self.hint_window_m
            )
            distance = np.where(outside, np.inf, distance)
        segment = int(np.argmin(distance))
        return segment, float(t[segment])
