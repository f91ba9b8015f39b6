"""Replay a recorded run through the localizer: bag_player plays the bag with /clock, localizer_node runs on sim time.

    ros2 launch dlvf_ros replay.launch.py bag:=/data/bags/run_000003 map:=/data/maps/site_a model:=/data/dlvf.pt

Arguments: use_sim_time (default true: the node follows the bag's /clock), params_file (localizer_node parameters,
default the package's config/localizer_node.yaml), namespace (the node's namespace; the bag's stereo, odometry and
ground-truth topics are remapped into it), model, map, bag (rosbag2 directory), rate (playback speed).
To record the outputs for `dlvf evaluate`, use `dlvf replay` instead (same nodes, plus a recorder).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

BAG_TOPICS = ("/stereo/left/image_raw", "/stereo/right/image_raw", "/stereo/left/camera_info",
              "/stereo/right/camera_info", "/odom", "/ground_truth/pose")


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution([FindPackageShare("dlvf_ros"), "config", "localizer_node.yaml"])
    namespace = LaunchConfiguration("namespace")
    return LaunchDescription([
        DeclareLaunchArgument("use_sim_time", default_value="true", description="use the bag's /clock"),
        DeclareLaunchArgument("params_file", default_value=default_params, description="localizer_node parameter file"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the localizer and its topics"),
        DeclareLaunchArgument("model", default_value="",
                              description="exported feature model (.pt) the map was built with"),
        DeclareLaunchArgument("map", description="teach map store directory"),
        DeclareLaunchArgument("bag", description="rosbag2 bag of the run to replay"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback speed factor"),
        Node(
            package="dlvf_ros",
            executable="localizer_node",
            name="localizer_node",
            namespace=namespace,
            output="screen",
            emulate_tty=True,
            parameters=[
                LaunchConfiguration("params_file"),
                {
                    "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
                    "map_path": ParameterValue(LaunchConfiguration("map"), value_type=str),
                    "model": ParameterValue(LaunchConfiguration("model"), value_type=str),
                },
            ],
        ),
        Node(
            package="dlvf_ros",
            executable="bag_player",
            name="bag_player",
            output="screen",
            arguments=[LaunchConfiguration("bag"), "--rate", LaunchConfiguration("rate"),
                       "--wait-for", "/stereo/left/image_raw"],
            remappings=[(topic, [namespace, topic]) for topic in BAG_TOPICS],
        ),
    ])
