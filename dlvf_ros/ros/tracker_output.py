"""The path-tracker output of localizer_node as messages (the layout is `dlvf_ros.tracker_client`'s, which parses it).

`tracking_messages` builds, from a `TrackingFrame`, one frame's nav_msgs/Odometry (vertex-relative pose; None when
the frame has no pose) and diagnostic_msgs/DiagnosticArray (tracking status), both stamped with the image time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry

from dlvf_ros import tracker_client as tc
from dlvf_ros.localization.health import HealthState
from dlvf_ros.localization.path_tracking import PathPosition
from dlvf_ros.ros import conversions

LEVELS = {
    HealthState.LOCALIZED: DiagnosticStatus.OK,
    HealthState.DEGRADED: DiagnosticStatus.WARN,
    HealthState.LOST: DiagnosticStatus.ERROR,
}


@dataclass(frozen=True)
class TrackingFrame:
    """What the path-tracker output says of one frame. `velocity`: (vx, vy, vz, wx, wy, wz) in the vehicle frame
    (m/s, rad/s), None when unknown (zeros are sent)."""

    stamp_ns: int
    state: HealthState
    reason: str
    fixed: bool
    inliers: int
    position: PathPosition | None
    velocity: np.ndarray | None


def tracking_messages(
    frame: TrackingFrame, vehicle_frame: str, node_name: str
) -> tuple[Odometry | None, DiagnosticArray]:
    """(vertex odometry or None, tracking status) of one frame."""
    stamp_ns, state, position = frame.stamp_ns, frame.state, frame.position
    odometry = None
    if position is not None:
        odometry = conversions.matrix_to_odometry(
            position.T_vertex_vehicle,
            stamp_ns,
            frame_id=tc.vertex_frame_id(position.vertex_id),
            child_frame_id=vehicle_frame,
            twist=frame.velocity,
            pose_covariance=position.covariance,
        )
    values = {
        tc.LOCALIZED_KEY: tc.format_flag(position is not None and state != HealthState.LOST),
        tc.STATE_KEY: state.value,
        tc.FIXED_KEY: tc.format_flag(frame.fixed),
        tc.INLIERS_KEY: str(int(frame.inliers)),
        tc.VERTEX_KEY: "" if position is None else str(position.vertex_id),
        tc.PROGRESS_KEY: tc.format_number(None if position is None else position.progress_m),
        tc.CROSS_TRACK_KEY: tc.format_number(None if position is None else position.cross_track_m),
        tc.HEADING_ERROR_KEY: tc.format_number(None if position is None else position.heading_error_rad),
    }
    status = DiagnosticArray(
        header=conversions.make_header(stamp_ns, ""),
        status=[
            DiagnosticStatus(
                level=LEVELS[state],
                name=f"{node_name}: tracking",
                message=frame.reason,
                hardware_id=node_name,
                values=[KeyValue(key=k, value=v) for k, v in values.items()],
            )
        ],
    )
    return odometry, status
