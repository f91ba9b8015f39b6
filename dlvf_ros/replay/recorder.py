"""Records a localizer's outputs to a replay directory (see `dlvf_ros.evaluation.records` for the format).

An rclpy node (spun by its owner) subscribing `localization/pose` (PoseWithCovarianceStamped) and /diagnostics;
every pose and every DiagnosticStatus becomes one JSON line, flushed as it arrives.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from rclpy.node import Node

from dlvf_ros.evaluation import records
from dlvf_ros.localization.frame_record import FRAME_STAMP_KEY
from dlvf_ros.ros import conversions


def _level(level) -> int:
    return level[0] if isinstance(level, (bytes, bytearray)) else int(level)


class OutputRecorder(Node):
    """Writes poses.jsonl and diagnostics.jsonl under `out_dir`; counts per-frame statuses for progress."""

    def __init__(
        self,
        out_dir: str | Path,
        pose_topic: str = "/localization/pose",
        node_name: str = "dlvf_replay_recorder",
        context=None,
    ) -> None:
        super().__init__(node_name, context=context)
        self.poses = records.JsonlWriter(Path(out_dir) / records.POSES_FILE)
        self.diagnostics = records.JsonlWriter(Path(out_dir) / records.DIAGNOSTICS_FILE)
        self.frame_statuses = 0
        self.last_frame_status_monotonic: float | None = None
        self.last_summary: dict[str, str] = {}
        self.last_problem = ""  # the node's latest warning or error (summary message or last_error)
        self.create_subscription(PoseWithCovarianceStamped, pose_topic, self._on_pose, 100)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 100)

    def _on_pose(self, msg: PoseWithCovarianceStamped) -> None:
        T_map_vehicle = conversions.pose_to_matrix(msg.pose.pose)
        covariance = np.asarray(msg.pose.covariance, dtype=np.float64).reshape(6, 6)
        self.poses.write(
            records.pose_record(conversions.stamp_to_ns(msg.header.stamp), T_map_vehicle, covariance, time.time_ns())
        )

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        stamp_ns = conversions.stamp_to_ns(msg.header.stamp)
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            self.diagnostics.write(
                {
                    "stamp_ns": stamp_ns,
                    "name": status.name,
                    "level": _level(status.level),
                    "message": status.message,
                    "hardware_id": status.hardware_id,
                    "values": values,
                    "received_ns": time.time_ns(),
                }
            )
            if FRAME_STAMP_KEY in values:
                self.frame_statuses += 1
                self.last_frame_status_monotonic = time.monotonic()
            elif status.name.endswith(": summary"):
                self.last_summary = values
                if _level(status.level) != 0:
                    self.last_problem = status.message
                elif values.get("last_error"):
                    self.last_problem = values["last_error"]

    def close(self) -> None:
        self.poses.close()
        self.diagnostics.close()
