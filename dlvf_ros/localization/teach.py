"""Teach: pick keyframes along the taught path and store their stereo features in a map store.

A frame becomes a keyframe when it is the first one, or when odometry has moved `keyframe_distance_m` or turned
`keyframe_angle_deg` since the last keyframe. The keyframe pose T_map_keyframe is the teach run's T_odom_vehicle
(the map frame is the teach odometry frame). A frame with fewer than `min_valid_points` stereo points is skipped
and the next frame is tried instead. A frame that cannot be used (stamp not after the previous frame's, a pose that
is not rigid, images that do not fit the rig) raises `FrameRejected` with the reason, before any state changes: the
caller skips and counts it. The same `Teacher` serves `dlvf teach` (a bag) and the ROS teach node (frames one at a
time).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dlvf_ros.config import check_settings, setting
from dlvf_ros.features.backends import FeatureBackend
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.localization.frontend import StereoConfig, StereoFrontend
from dlvf_ros.localization.map_format import RIGID_TOLERANCE, Keyframe
from dlvf_ros.localization.map_store import MapWriter


class FrameRejected(ValueError):
    """A teach frame that cannot be used; `reason` is a short label for counting (the message says more)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class TeachConfig:
    """Keyframe spacing (m, deg), the minimum stereo points per keyframe, image storage and stereo settings."""

    keyframe_distance_m: float = setting(1.0, "odometry distance (m) between keyframes", (0.001, 1000.0))
    keyframe_angle_deg: float = setting(10.0, "odometry rotation (deg) between keyframes", (0.001, 360.0))
    min_valid_points: int = setting(
        20, "a frame with fewer stereo points is skipped, the next one tried", (3, 1_000_000)
    )
    store_images: bool = setting(True, "store the keyframe stereo images (needed by `dlvf map reextract`)")
    stereo: StereoConfig = field(default_factory=StereoConfig)  # recorded in the manifest; repeat must use the same

    def __post_init__(self) -> None:
        check_settings(self)


# Slack on the keyframe thresholds: a move of exactly keyframe_distance_m can come out a few ulp short after pose
# conversions (quaternion <-> matrix), and whether it then counted would depend on the CPU's rounding
ROUNDING_SLACK = 1e-9  # m and deg


def needs_keyframe(T_odom_last_keyframe: np.ndarray | None, T_odom_vehicle: np.ndarray, config: TeachConfig) -> bool:
    """True for the first frame, or once the vehicle moved/turned enough since the last keyframe."""
    if T_odom_last_keyframe is None:
        return True
    motion = transforms.invert(T_odom_last_keyframe) @ T_odom_vehicle
    return bool(
        np.linalg.norm(motion[:3, 3]) >= config.keyframe_distance_m - ROUNDING_SLACK
        or np.rad2deg(transforms.rotation_angle(motion[:3, :3])) >= config.keyframe_angle_deg - ROUNDING_SLACK
    )


class Teacher:
    """Consumes teach frames in time order and appends keyframes to a map store."""

    def __init__(self, writer: MapWriter, frontend: StereoFrontend, config: TeachConfig | None = None) -> None:
        self.writer = writer
        self.frontend = frontend
        self.config = config or TeachConfig()
        self.frames_seen = 0
        self.frames_skipped_few_points = 0
        self._T_odom_last_keyframe: np.ndarray | None = None
        self._last_stamp_ns: int | None = None

    @classmethod
    def create(
        cls,
        out: str | Path,
        backend: FeatureBackend,
        rig: StereoRig,
        config: TeachConfig | None = None,
        overwrite: bool = False,
    ) -> Teacher:
        """A teacher writing a new map at `out`."""
        config = config or TeachConfig()
        writer = MapWriter.create(out, backend, rig, teach_parameters=asdict(config), overwrite=overwrite)
        return cls(writer, StereoFrontend(backend, rig, config.stereo), config)

    @property
    def num_keyframes(self) -> int:
        return len(self.writer.entries)

    def add_frame(
        self,
        stamp_ns: int,
        left_rgb: np.ndarray,
        right_rgb: np.ndarray,
        T_odom_vehicle: np.ndarray,
        T_world_vehicle: np.ndarray | None = None,
    ) -> Keyframe | None:
        """Offer one frame; returns the keyframe stored from it, or None if it was not needed (or too bare)."""
        T_odom_vehicle = np.asarray(T_odom_vehicle, np.float64)
        if not transforms.is_rigid(T_odom_vehicle, tol=RIGID_TOLERANCE):
            raise FrameRejected(
                "bad odometry", "Teacher.add_frame: T_odom_vehicle must be a finite rigid 4x4 transform; check odometry"
            )
        if T_world_vehicle is not None and not transforms.is_rigid(np.asarray(T_world_vehicle), RIGID_TOLERANCE):
            raise FrameRejected(
                "bad ground truth", "Teacher.add_frame: T_world_vehicle must be a finite rigid 4x4 transform or None"
            )
        if self._last_stamp_ns is not None and stamp_ns <= self._last_stamp_ns:
            duplicate = stamp_ns == self._last_stamp_ns
            raise FrameRejected(
                "duplicate stamp" if duplicate else "out-of-order stamp",
                f"Teacher.add_frame: stamp_ns {stamp_ns} {'repeats' if duplicate else 'is earlier than'} the previous "
                f"frame's {self._last_stamp_ns}; teach frames must come in time order",
            )
        try:
            self.frontend.check_images(left_rgb, right_rgb)
        except ValueError as exc:
            raise FrameRejected("bad image", f"Teacher.add_frame: {exc}") from exc
        if not needs_keyframe(self._T_odom_last_keyframe, T_odom_vehicle, self.config):
            self._count_frame(stamp_ns)
            return None
        frame = self.frontend.process(left_rgb, right_rgb)
        if int(frame.valid.sum()) < self.config.min_valid_points:
            self._count_frame(stamp_ns)
            self.frames_skipped_few_points += 1
            return None
        keyframe = Keyframe(
            keyframe_id=self.num_keyframes,
            stamp_ns=int(stamp_ns),
            T_map_keyframe=T_odom_vehicle,
            keypoints=frame.features.keypoints,
            descriptors=frame.features.descriptors,
            scores=frame.features.scores,
            points_camera=frame.points_camera,
            valid=frame.valid,
            T_world_keyframe=None if T_world_vehicle is None else np.asarray(T_world_vehicle, np.float64),
        )
        images = (left_rgb, right_rgb) if self.config.store_images else (None, None)
        self.writer.add(keyframe, *images)
        self._count_frame(stamp_ns)
        self._T_odom_last_keyframe = T_odom_vehicle
        return keyframe

    def _count_frame(self, stamp_ns: int) -> None:
        self._last_stamp_ns = int(stamp_ns)
        self.frames_seen += 1
