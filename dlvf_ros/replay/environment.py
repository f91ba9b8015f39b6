"""Environment variables for ROS 2 processes that must stay on this machine (tests, replay, the demo).

Shared-memory-only Fast DDS transport (large images arrive intact, nothing goes on the network), a private
log directory and a domain id of its own. Imports nothing from ROS, so it can run before rclpy is loaded.
"""

from __future__ import annotations

import os
import tempfile

SHM_ONLY_TRANSPORT = "SHM?max_msg_size=4MB&sockets_size=4MB"


def isolated_ros_environment(domain_id: int | None = None, log_dir: str | None = None) -> dict[str, str]:
    """Variables to add to `os.environ` (or a child's env) for a machine-local ROS 2 graph."""
    if domain_id is None:
        domain_id = 1 + os.getpid() % 100
    if not 0 <= domain_id <= 101:
        raise ValueError(f"ROS_DOMAIN_ID must be in [0, 101], got {domain_id}")
    return {
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_LOG_DIR": log_dir or tempfile.mkdtemp(prefix="dlvf-roslog-"),
        "FASTDDS_BUILTIN_TRANSPORTS": SHM_ONLY_TRANSPORT,
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
    }


def apply_isolated_ros_environment(domain_id: int | None = None) -> dict[str, str]:
    """Set the variables in this process (children inherit them); drops settings that would undo them."""
    os.environ.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)
    os.environ.pop("ROS_STATIC_PEERS", None)
    env = isolated_ros_environment(domain_id)
    os.environ.update(env)
    return env
