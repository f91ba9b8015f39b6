"""What launch/*.launch.py share: the node's launch arguments and the node action that passes them on.

Every launch file declares `use_sim_time`, `params_file` (default: config/<node>.yaml of the package share directory,
found by `dlvf_ros.package_share`), `namespace`, `model` and `map` (`COMMON_ARGUMENTS`), and starts its node
(teach_node or localizer_node) with the parameter file plus `use_sim_time`, `map_path` and `model` from those
arguments (an empty `model`: the shipped model, for the learned backend). `launch` and `launch_ros` are imported
inside the functions: they exist on a robot with ROS 2 installed, not in the pip environment (test/test_launch_files.py
reads this module there).
"""

from __future__ import annotations

COMMON_ARGUMENTS = ("use_sim_time", "params_file", "namespace", "model", "map")


def node_arguments(
    node_name: str,
    *,
    map_description: str,
    model_description: str,
    use_sim_time: str = "false",
    use_sim_time_description: str = "use /clock (bag replay)",
    namespace_description: str = "namespace of the node and its topics",
) -> list:
    """DeclareLaunchArgument actions of `COMMON_ARGUMENTS` for `node_name` (only `map` has no default)."""
    from launch.actions import DeclareLaunchArgument

    from dlvf_ros.package_share import package_share_directory

    default_params = str(package_share_directory() / "config" / f"{node_name}.yaml")
    return [
        DeclareLaunchArgument("use_sim_time", default_value=use_sim_time, description=use_sim_time_description),
        DeclareLaunchArgument("params_file", default_value=default_params, description=f"{node_name} parameter file"),
        DeclareLaunchArgument("namespace", default_value="", description=namespace_description),
        DeclareLaunchArgument("model", default_value="", description=model_description),
        DeclareLaunchArgument("map", description=map_description),
    ]


def node_action(node_name: str):
    """The launch_ros Node running `node_name` (executable and node name) with the arguments of `node_arguments`."""
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue

    return Node(
        package="dlvf_ros",
        executable=node_name,
        name=node_name,
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
    )
