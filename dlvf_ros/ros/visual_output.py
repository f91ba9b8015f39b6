"""What localizer_node shows a person in RViz: the health as text beside the vehicle, and the per-frame match image.

`health_marker` is a visualization_msgs/Marker (TEXT_VIEW_FACING, map frame, above the vehicle, coloured by state);
`match_image_message` draws the frame (`dlvf_ros.localization.match_image`) and wraps it as an rgb8 Image stamped
with the image time in the left camera's frame.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker

from dlvf_ros.localization.match_image import STATE_COLOURS, draw_match_image
from dlvf_ros.ros import conversions

TEXT_HEIGHT_M = 0.4
TEXT_ABOVE_M = 1.5


def health_marker(stamp_ns: int, map_frame: str, T_map_vehicle: np.ndarray, state: str, text: str) -> Marker:
    """The health text ("STATE\\ntext") floating above the vehicle at `T_map_vehicle`."""
    marker = Marker(
        header=conversions.make_header(stamp_ns, map_frame),
        ns="dlvf_health",
        id=0,
        type=Marker.TEXT_VIEW_FACING,
        action=Marker.ADD,
        text=f"{state}\n{text}",
    )
    position = np.asarray(T_map_vehicle, dtype=np.float64)[:3, 3]
    marker.pose.position.x, marker.pose.position.y = float(position[0]), float(position[1])
    marker.pose.position.z = float(position[2]) + TEXT_ABOVE_M
    marker.pose.orientation.w = 1.0
    marker.scale.z = TEXT_HEIGHT_M
    r, g, b = STATE_COLOURS.get(state, (200, 200, 200))
    marker.color.r, marker.color.g, marker.color.b, marker.color.a = r / 255.0, g / 255.0, b / 255.0, 1.0
    return marker


def match_image_message(
    stamp_ns: int,
    frame_id: str,
    left_rgb: np.ndarray,
    keypoints_uv: np.ndarray,
    inliers_uv: np.ndarray,
    state: str,
    lines: list[str],
) -> Image:
    """The match image (see `draw_match_image`) as an rgb8 sensor_msgs/Image."""
    image = draw_match_image(left_rgb, keypoints_uv, inliers_uv, state, lines)
    return conversions.array_to_image(image, "rgb8", stamp_ns, frame_id)
