"""Teach a path: teach_node turns stereo + odometry into a keyframe map store.

    ros2 launch dlvf_ros teach.launch.py map:=/data/maps/site_a model:=/data/models/dlvf.pt
    ros2 launch dlvf_ros teach.launch.py map:=/data/maps/site_a params_file:=/my/teach.yaml namespace:=robot1

Arguments: use_sim_time (bag replay with /clock), params_file (teach_node parameters, default the package's
config/teach_node.yaml), namespace, model (exported feature model; empty = the `backend` parameter's classical
features), map (output map store directory). Ctrl-C finalises the map.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution([FindPackageShare("dlvf_ros"), "config", "teach_node.yaml"])
    return LaunchDescription([
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
        DeclareLaunchArgument("params_file", default_value=default_params, description="teach_node parameter file"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("model", default_value="", description="exported feature model (.pt); empty: classical"),
        DeclareLaunchArgument("map", description="map store directory to create"),
        Node(
            package="dlvf_ros",
            executable="teach_node",
            name="teach_node",
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
