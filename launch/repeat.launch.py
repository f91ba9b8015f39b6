"""Repeat a taught path: localizer_node localizes live stereo against the teach map.

    ros2 launch dlvf_ros repeat.launch.py map:=/data/maps/site_a model:=/data/models/dlvf.pt

Arguments: use_sim_time, params_file (localizer_node parameters, default the package's config/localizer_node.yaml),
namespace, model (exported feature model; empty: the backend the map was built with, classical only), map (the
teach map store). Outputs /localization/pose, map -> odom on /tf, /localization/path and /diagnostics.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution([FindPackageShare("dlvf_ros"), "config", "localizer_node.yaml"])
    return LaunchDescription([
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
        DeclareLaunchArgument("params_file", default_value=default_params, description="localizer_node parameter file"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("model", default_value="",
                              description="exported feature model (.pt) the map was built with"),
        DeclareLaunchArgument("map", description="teach map store directory"),
        Node(
            package="dlvf_ros",
            executable="localizer_node",
            name="localizer_node",
            namespace=LaunchConfiguration("namespace"),
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
    ])
