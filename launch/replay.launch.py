"""Replay a recorded run through the localizer: bag_player plays the bag with /clock, localizer_node runs on sim time.

    ros2 launch dlvf_ros replay.launch.py bag:=/data/bags/run_000003 map:=/data/maps/site_a model:=/data/dlvf.pt

Arguments: use_sim_time (default true: the node follows the bag's /clock), params_file (localizer_node parameters,
default the package's config/localizer_node.yaml), namespace (the node's namespace; the bag's stereo, odometry and
ground-truth topics are remapped into it), model, map, bag (rosbag2 directory), rate (playback speed), rviz, and the
node's input topics (default: the bag's names).
To record the outputs for `dlvf evaluate`, use `dlvf replay` instead (same nodes, plus a recorder).
"""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from dlvf_ros.data.bag_format import BagTopics
from dlvf_ros.ros.launch_arguments import node_action, node_arguments, rviz_action
from launch import LaunchDescription

# the bag's stereo, odometry and ground-truth topics (the names `dlvf sim --bags` writes), remapped into the namespace
_TOPICS = BagTopics()
BAG_TOPICS = (
    _TOPICS.left_image,
    _TOPICS.right_image,
    _TOPICS.left_info,
    _TOPICS.right_info,
    _TOPICS.odom,
    _TOPICS.ground_truth,
)


def generate_launch_description() -> LaunchDescription:
    namespace = LaunchConfiguration("namespace")
    return LaunchDescription(
        [
            *node_arguments(
                "localizer_node",
                use_sim_time="true",
                use_sim_time_description="use the bag's /clock",
                namespace_description="namespace of the localizer and its topics",
                # the bag's names, relative: they resolve in the namespace the bag is played into
                topics={
                    "left_image": _TOPICS.left_image.lstrip("/"),
                    "right_image": _TOPICS.right_image.lstrip("/"),
                    "left_info": _TOPICS.left_info.lstrip("/"),
                    "right_info": _TOPICS.right_info.lstrip("/"),
                    "odom": _TOPICS.odom.lstrip("/"),
                },
            ),
            DeclareLaunchArgument("bag", description="rosbag2 bag of the run to replay"),
            DeclareLaunchArgument("rate", default_value="1.0", description="playback speed factor"),
            node_action("localizer_node"),
            rviz_action(),
            Node(
                package="dlvf_ros",
                executable="bag_player",
                name="bag_player",
                output="screen",
                arguments=[
                    LaunchConfiguration("bag"),
                    "--rate",
                    LaunchConfiguration("rate"),
                    "--wait-for",
                    _TOPICS.left_image,
                ],
                remappings=[(topic, [namespace, topic]) for topic in BAG_TOPICS],
            ),
        ]
    )
