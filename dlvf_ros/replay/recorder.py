"""Records a localizer's outputs to a replay directory (see `dlvf_ros.evaluation.records` for the format).

An rclpy node (spun by its owner) subscribing `localization/pose` (PoseWithCovarianceStamped), the per-frame results
on `localization/frame_status` and the health summaries on /diagnostics; every pose and every DiagnosticStatus
becomes one JSON line, flushed as it arrives.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from dlvf_ros.evaluation import records
from dlvf_ros.localization.frame_record import FRAME_STATUS_DEPTH, FRAME_STATUS_TOPIC
from dlvf_ros.ros import conversions


def _level(level) -> int:
    return level[0] if isinstance(level, (bytes, bytearray)) else int(level)


def _status_records(msg: DiagnosticArray) -> list[dict]:
    """The statuses of a DiagnosticArray as records.jsonl lines (stamp_ns of the array, received now)."""
    stamp_ns = conversions.stamp_to_ns(msg.header.stamp)
    return [
        {
            "stamp_ns": stamp_ns,
            "name": status.name,
            "level": _level(status.level),
            "message": status.message,
            "hardware_id": status.hardware_id,
            "values": {kv.key: kv.value for kv in status.values},
            "received_ns": time.time_ns(),
        }
        for status in msg.status
    ]


class OutputRecorder(Node):
    """Writes poses.jsonl, frame_status.jsonl and diagnostics.jsonl under `out_dir`; counts the per-frame results
    for progress and keeps the node's latest health summary and problem."""

    def __init__(
        self,
        out_dir: str | Path,
        pose_topic: str = "/localization/pose",
        frame_status_topic: str = "/" + FRAME_STATUS_TOPIC,
        node_name: str = "dlvf_replay_recorder",
        context=None,
    ) -> None:
        super().__init__(node_name, context=context)
        self.poses = records.JsonlWriter(Path(out_dir) / records.POSES_FILE)
        self.frame_status = records.JsonlWriter(Path(out_dir) / records.FRAME_STATUS_FILE)
        self.diagnostics = records.JsonlWriter(Path(out_dir) / records.DIAGNOSTICS_FILE)
        self.last_frame_status_monotonic: float | None = None
        self.last_summary: dict[str, str] = {}
        self.last_problem = ""  # the node's latest warning or error (summary message or last_error)
        self.frame_errors = 0  # per-frame results that carry an error (bad input, a failed frame)
        self.create_subscription(PoseWithCovarianceStamped, pose_topic, self._on_pose, 100)
        frame_status_qos = QoSProfile(
            depth=FRAME_STATUS_DEPTH, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE
        )
        self.create_subscription(DiagnosticArray, frame_status_topic, self._on_frame_status, frame_status_qos)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 100)

    @property
    def frame_statuses(self) -> int:
        """Per-frame results recorded so far."""
        return self.frame_status.count

    def _on_pose(self, msg: PoseWithCovarianceStamped) -> None:
        T_map_vehicle = conversions.pose_to_matrix(msg.pose.pose)
        covariance = np.asarray(msg.pose.covariance, dtype=np.float64).reshape(6, 6)
        self.poses.write(
            records.pose_record(conversions.stamp_to_ns(msg.header.stamp), T_map_vehicle, covariance, time.time_ns())
        )

    def _on_frame_status(self, msg: DiagnosticArray) -> None:
        for record in _status_records(msg):
            self.frame_status.write(record)
            if record["values"].get("last_error"):
                self.frame_errors += 1
        self.last_frame_status_monotonic = time.monotonic()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for record in _status_records(msg):
            self.diagnostics.write(record)
            if record["name"].endswith(": summary"):
                self.last_summary = record["values"]
                if record["level"] != 0:
                    self.last_problem = record["message"]
                elif record["values"].get("last_error"):
                    self.last_problem = record["values"]["last_error"]

    def close(self) -> None:
        self.poses.close()
        self.frame_status.close()
        self.diagnostics.close()
