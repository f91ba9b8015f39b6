"""What a stereo run bag holds: topic names, message types and frame ids, the frame type the reader yields, the
typestores, and the check of a bag's message-type strings against the installed ROS interface packages.

Topic names are those of docs/conventions.md. Bags are rosbag2 (mcap or sqlite3) written and read with `rosbags`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from pathlib import Path
from typing import Collection

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


# BagTopics field -> the message type a stereo run bag carries on that topic
TOPIC_TYPES = {
    "left_image": "sensor_msgs/msg/Image",
    "right_image": "sensor_msgs/msg/Image",
    "left_info": "sensor_msgs/msg/CameraInfo",
    "right_info": "sensor_msgs/msg/CameraInfo",
    "odom": "nav_msgs/msg/Odometry",
    "ground_truth": "geometry_msgs/msg/PoseStamped",
    "tf_static": "tf2_msgs/msg/TFMessage",
}
_MESSAGE_TYPE = re.compile(r"([a-z][a-z0-9_]*)/msg/([A-Z][A-Za-z0-9]*)")


class BagError(ValueError):
    """A bag cannot be read as a stereo run (missing, unreadable, corrupt, truncated, wrong topics or types)."""


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


def installed_interface_packages() -> set[str]:
    """ROS interface packages registered in the ament index of each AMENT_PREFIX_PATH entry and of this Python's
    prefix (where the pip-installed message packages register), found without importing anything."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    packages: set[str] = set()
    for prefix in prefixes:
        index = Path(prefix) / "share" / "ament_index" / "resource_index" / "rosidl_interfaces"
        if index.is_dir():
            packages.update(entry.name for entry in index.iterdir())
    return packages


def check_message_type(msgtype: str, known_packages: Collection[str], where: str) -> tuple[str, str]:
    """(package, name) of a bag's `package/msg/Name` type string, or BagError when the string is malformed or the
    package is not one of `known_packages`; call it before importing anything named by the string."""
    match = _MESSAGE_TYPE.fullmatch(msgtype)
    if match is None:
        raise BagError(f"{where}: message type {msgtype!r} is not of the form package/msg/Name")
    if match.group(1) not in known_packages:
        raise BagError(
            f"{where}: message type {msgtype} is not from an installed ROS interface package (installed: "
            f"{', '.join(sorted(known_packages)) or 'none'}); install {match.group(1)} or drop the topic"
        )
    return match.group(1), match.group(2)
