"""path_tracker_node: drives the taught path by the localizer's output (wiring around
`dlvf_ros.control.path_tracker.PathTracker`).

Inputs: the taught path `localization/path` (nav_msgs/Path in `map`, transient local; pose k is teach vertex k), the
localizer's path-tracker output (`localization/vertex_odometry` + `localization/tracking_status` under
`localizer_namespace`, paired by `dlvf_ros.tracker_client.TrackerClient`) and odometry on `odom`
(nav_msgs/Odometry, odom -> base_link). Never ground truth.
Outputs: one geometry_msgs/Twist on `cmd_vel` (linear.x m/s, angular.z rad/s) per odometry message, zero until the
path arrived and then, until the first good fix, the start-up wait and creep straight ahead (`tracker.start_wait_s`,
`tracker.start_creep_m`), and
the tracker's state per command on `path_tracker/status` (DiagnosticArray, one status: mode, progress_m,
cross_track_m, heading_error_rad, distance_since_good_m, linear_mps, angular_rad_s; level OK while aligning, tracking or
finished, WARN when dead reckoning or waiting, ERROR when stopped without fixes).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node

from dlvf_ros.config import setting
from dlvf_ros.control.path_tracker import PathTracker, PathTrackerConfig, TrackerCommand, TrackerMode
from dlvf_ros.localization.path_tracking import TaughtPath, rotate_covariance
from dlvf_ros.ros import conversions
from dlvf_ros.ros.node_base import LATCHED_QOS
from dlvf_ros.ros.node_main import StartupError, run_node
from dlvf_ros.ros.node_parameters import ParameterSpec, node_parameter_specs, read_node_configs
from dlvf_ros.tracker_client import TrackerClient, TrackingUpdate, format_number

NODE_NAME = "path_tracker_node"
STATUS_TOPIC = "path_tracker/status"
ODOMETRY_QUEUE_DEPTH = 50
LEVELS = {
    TrackerMode.WAITING: DiagnosticStatus.WARN,
    TrackerMode.ALIGNING: DiagnosticStatus.OK,
    TrackerMode.TRACKING: DiagnosticStatus.OK,
    TrackerMode.DEAD_RECKONING: DiagnosticStatus.WARN,
    TrackerMode.STOPPED: DiagnosticStatus.ERROR,
    TrackerMode.FINISHED: DiagnosticStatus.OK,
}


@dataclass
class PathTrackerNodeConfig:
    """Node-level settings (the controller's are `tracker.*`)."""

    localizer_namespace: str = setting("", "namespace of localizer_node's path-tracker output topics ('': none)")
    map_frame: str = setting("map", "frame of the taught path")
    odom_frame: str = setting("odom", "frame_id the odometry must carry")


PARAMETERS = ((PathTrackerNodeConfig, ""), (PathTrackerConfig, "tracker."))


def parameter_specs() -> list[ParameterSpec]:
    """Every parameter of path_tracker_node with its default, description and range (from the config dataclasses)."""
    return node_parameter_specs(PARAMETERS)


class PathTrackerNode(Node):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        try:
            self.cfg, self.tracker_config = read_node_configs(self, NODE_NAME, PARAMETERS)
        except ValueError as exc:
            raise StartupError(f"{NODE_NAME}: {exc}") from exc
        self.tracker: PathTracker | None = None
        self._T_map_vertex: np.ndarray | None = None
        self.cmd_pub = self.create_publisher(Twist, "cmd_vel", 10)
        self.status_pub = self.create_publisher(DiagnosticArray, STATUS_TOPIC, 10)
        self.create_subscription(Path, "localization/path", self._on_path, LATCHED_QOS)
        self.create_subscription(Odometry, "odom", self._on_odometry, ODOMETRY_QUEUE_DEPTH)
        self.client = TrackerClient(on_update=self._on_update)
        self.client.attach(self, self.cfg.localizer_namespace)

    def _on_path(self, msg: Path) -> None:
        if msg.header.frame_id.lstrip("/") != self.cfg.map_frame:
            self.get_logger().error(
                f"taught path in frame {msg.header.frame_id!r}, expected map_frame {self.cfg.map_frame!r}; ignored"
            )
            return
        if not msg.poses:
            return
        T_map_vertex = np.stack([conversions.pose_to_matrix(p.pose) for p in msg.poses])
        if self._T_map_vertex is not None and np.array_equal(T_map_vertex, self._T_map_vertex):
            return
        self._T_map_vertex = T_map_vertex
        self.tracker = PathTracker(TaughtPath(T_map_vertex), self.tracker_config)
        self.get_logger().info(f"taught path: {len(T_map_vertex)} vertices, {self.tracker.path.length_m:.2f} m")

    def _on_update(self, update: TrackingUpdate) -> None:
        tracker, path_vertices = self.tracker, self._T_map_vertex
        if tracker is None or path_vertices is None:
            return
        T_map_vehicle = covariance = None
        pose = update.pose
        if pose is not None and 0 <= pose.vertex_id < len(path_vertices):
            T_map_vertex = path_vertices[pose.vertex_id]
            T_map_vehicle = T_map_vertex @ pose.T_vertex_vehicle
            covariance = rotate_covariance(pose.covariance, T_map_vertex[:3, :3])
        elif pose is not None:
            self.get_logger().error(
                f"vertex {pose.vertex_id} is not on the taught path ({len(path_vertices)} vertices): a map other "
                "than the localizer's? update ignored",
                throttle_duration_sec=5.0,
            )
        tracker.localize(update.stamp_ns, update.localized, T_map_vehicle, covariance)

    def _on_odometry(self, msg: Odometry) -> None:
        stamp_ns, T_odom_vehicle = conversions.odometry_to_matrix(msg)
        wrong_frame = msg.header.frame_id.lstrip("/") != self.cfg.odom_frame
        if wrong_frame:
            self.get_logger().error(
                f"odometry in frame {msg.header.frame_id!r}, expected odom_frame {self.cfg.odom_frame!r}: standing",
                throttle_duration_sec=5.0,
            )
        if wrong_frame or self.tracker is None:
            command = TrackerCommand(stamp_ns, 0.0, 0.0, TrackerMode.WAITING, None, None, None, 0.0)
        else:
            previous = self.tracker.mode
            command = self.tracker.command(stamp_ns, T_odom_vehicle)
            if command.mode != previous:
                self.get_logger().info(f"{previous.value} -> {command.mode.value} at {stamp_ns * 1e-9:.3f} s")
        twist = Twist()
        twist.linear.x = command.linear_mps
        twist.angular.z = command.angular_rad_s
        self.cmd_pub.publish(twist)
        self._publish_status(command)

    def _publish_status(self, command: TrackerCommand) -> None:
        values = {
            "mode": command.mode.value,
            "progress_m": format_number(command.progress_m),
            "cross_track_m": format_number(command.cross_track_m),
            "heading_error_rad": format_number(command.heading_error_rad),
            "distance_since_good_m": format_number(command.distance_since_good_m),
            "linear_mps": format_number(command.linear_mps),
            "angular_rad_s": format_number(command.angular_rad_s),
        }
        array = DiagnosticArray()
        array.header.stamp = conversions.ns_to_stamp(command.stamp_ns)
        array.status = [
            DiagnosticStatus(
                level=LEVELS[command.mode],
                name=f"{self.get_name()}: tracker",
                message=command.mode.value,
                hardware_id=self.get_name(),
                values=[KeyValue(key=k, value=v) for k, v in values.items()],
            )
        ]
        self.status_pub.publish(array)

    def close(self) -> None:
        """Stand still: a zero command on the way out."""
        self.cmd_pub.publish(Twist())


def main(argv: list[str] | None = None) -> int:
    return run_node(PathTrackerNode, NODE_NAME, argv)


if __name__ == "__main__":
    sys.exit(main())
