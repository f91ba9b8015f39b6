"""Teach a path: teach_node turns stereo + odometry into a keyframe map store.

    ros2 launch dlvf_ros teach.launch.py map:=/data/maps/site_a model:=/data/models/dlvf.pt
    ros2 launch dlvf_ros teach.launch.py map:=/data/maps/site_a params_file:=/my/teach.yaml namespace:=robot1

Arguments: use_sim_time (bag replay with /clock), params_file (teach_node parameters, default the package's
config/teach_node.yaml), namespace, model (exported feature model for the learned backend; empty: the one shipped
with the package), map (output map store directory), rviz (start RViz2), and the input topics left_image, right_image,
left_info, right_info (rectified stereo and its CameraInfo, default stereo/{left,right}/{image_rect,camera_info})
and odom, e.g. left_image:=/camera/left/image_rect. Ctrl-C finalises the map.
"""

from dlvf_ros.ros.launch_arguments import node_action, node_arguments, rviz_action
from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *node_arguments("teach_node"),
            node_action("teach_node"),
            rviz_action(),
        ]
    )
