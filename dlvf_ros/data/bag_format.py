"""What a stereo run bag holds: topic names and frame ids, the frame type the reader yields, the typestores.

Topic names are those of docs/conventions.md. Bags are rosbag2 (mcap or sqlite3) written and read with `rosbags`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

STORAGES = ("mcap", "sqlite3")
DISTROS = ("kilted", "jazzy")


@dataclasses.dataclass(frozen=True)
class BagTopics:
    """Topic names and frame ids of a stereo run bag (defaults: docs/conventions.md)."""

    left_image: str = "/stereo/left/image_raw"
    right_image: str = "/stereo/right/image_raw"
    left_info: str = "/stereo/left/camera_info"
    right_info: str = "/stereo/right/camera_info"
    odom: str = "/odom"
    ground_truth: str = "/ground_truth/pose"
    tf_static: str = "/tf_static"
    left_frame: str = "camera_left_optical"
    right_frame: str = "camera_right_optical"
    base_frame: str = "base_link"
    odom_frame: str = "odom"
    world_frame: str = "world"


@dataclasses.dataclass
class BagStereoFrame:
    """One stereo pair from a bag; poses interpolated at `stamp_ns` (None where the bag has no data near it)."""

    stamp_ns: int
    left: np.ndarray  # (H, W, 3) uint8 RGB
    right: np.ndarray  # (H, W, 3) uint8 RGB
    T_odom_vehicle: np.ndarray | None
    T_world_vehicle: np.ndarray | None


def typestore_for(distro: str = "kilted"):
    """rosbags typestore of a ROS 2 distro (message definitions and RIHS01 hashes)."""
    from rosbags.typesys import Stores, get_typestore

    if distro not in DISTROS:
        raise ValueError(f"unsupported ROS 2 distro {distro!r} for bags; supported: {DISTROS}")
    return get_typestore(Stores.ROS2_KILTED if distro == "kilted" else Stores.ROS2_JAZZY)
