"""Repeat a taught path: localizer_node localizes live stereo against the teach map.

    ros2 launch dlvf_ros repeat.launch.py map:=/data/maps/site_a model:=/data/models/dlvf.pt

Arguments: use_sim_time, params_file (localizer_node parameters, default the package's config/localizer_node.yaml),
namespace, model (the exported feature model a learned map was built with; empty: the one shipped with the package),
map (the teach map store), rviz (start RViz2 with config/dlvf.rviz), and the input topics left_image, right_image,
left_info, right_info (rectified stereo and its CameraInfo, default stereo/{left,right}/{image_rect,camera_info})
and odom, e.g. left_image:=/camera/left/image_rect. Outputs /localization/pose, the path-tracker output
(/localization/vertex_odometry, /localization/tracking_status), map -> odom on /tf, /localization/path, the
per-frame results (/localization/frame_status) and the ~1 Hz health summary on /diagnostics (docs/conventions.md).
"""

from dlvf_ros.ros.launch_arguments import node_action, node_arguments, rviz_action
from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *node_arguments("localizer_node"),
            node_action("localizer_node"),
            rviz_action(),
        ]
    )
