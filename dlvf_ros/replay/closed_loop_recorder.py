"""Records a closed-loop run: the localizer's outputs (as `dlvf_ros.replay.recorder.OutputRecorder`: poses.jsonl,
frame_status.jsonl, diagnostics.jsonl, which also holds the simulator's run status), plus
    ground_truth.jsonl  sim_node's `ground_truth/pose`: stamp_ns, T_world_vehicle (16, row-major)
    tracker.jsonl       path_tracker_node's `path_tracker/status`: stamp_ns, level, message, values {key: str}
(`dlvf_ros.evaluation.closed_loop` reads them). The latest run status and tracker mode, and how long the tracker has
not driven, are kept for the owner.
"""

from __future__ import annotations

from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped

from dlvf_ros.control.path_tracker import TrackerMode
from dlvf_ros.evaluation import closed_loop, records
from dlvf_ros.replay.recorder import OutputRecorder
from dlvf_ros.ros import conversions
from dlvf_ros.ros.path_tracker_node import STATUS_TOPIC
from dlvf_ros.ros.sim_node import NODE_NAME as SIM_NODE
from dlvf_ros.ros.sim_node import RUN_STATUS

DRIVING = {TrackerMode.ALIGNING.value, TrackerMode.TRACKING.value, TrackerMode.DEAD_RECKONING.value}


class ClosedLoopRecorder(OutputRecorder):
    """See the module docstring; spun by its owner."""

    def __init__(self, out_dir: str | Path, context=None) -> None:
        super().__init__(out_dir, node_name="dlvf_closed_loop_recorder", context=context)
        self.ground_truth = records.JsonlWriter(Path(out_dir) / closed_loop.GROUND_TRUTH_FILE)
        self.tracker = records.JsonlWriter(Path(out_dir) / closed_loop.TRACKER_FILE)
        self.run_status: dict[str, str] = {}  # the simulator's latest run status values
        self.tracker_mode = ""
        self._driving_ns: int | None = None  # stamp of the tracker's latest command while driving (or its first)
        self._tracker_ns: int | None = None  # stamp of its latest command
        self.create_subscription(PoseStamped, "/ground_truth/pose", self._on_ground_truth, 100)
        self.create_subscription(DiagnosticArray, "/" + STATUS_TOPIC, self._on_tracker, 100)

    def _on_ground_truth(self, msg: PoseStamped) -> None:
        stamp_ns, _, T_world_vehicle = conversions.pose_stamped_to_matrix(msg)
        self.ground_truth.write({"stamp_ns": stamp_ns, "T_world_vehicle": T_world_vehicle.reshape(-1).tolist()})

    def _on_tracker(self, msg: DiagnosticArray) -> None:
        stamp_ns = conversions.stamp_to_ns(msg.header.stamp)
        for status in msg.status:
            self.tracker_mode = status.message
            if self._driving_ns is None or status.message in DRIVING:
                self._driving_ns = stamp_ns
            self._tracker_ns = stamp_ns
            self.tracker.write(
                {
                    "stamp_ns": stamp_ns,
                    "level": status.level[0] if isinstance(status.level, bytes) else int(status.level),
                    "message": status.message,
                    "values": {kv.key: kv.value for kv in status.values},
                }
            )

    def tracker_stalled_s(self) -> float:
        """Sim seconds since the tracker last drove (or since its first command)."""
        if self._tracker_ns is None or self._driving_ns is None:
            return 0.0
        return (self._tracker_ns - self._driving_ns) * 1e-9

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        super()._on_diagnostics(msg)
        for status in msg.status:
            if status.name.endswith(f"{SIM_NODE}: {RUN_STATUS}"):
                self.run_status = {kv.key: kv.value for kv in status.values}

    def close(self) -> None:
        super().close()
        self.ground_truth.close()
        self.tracker.close()
