"""What launch/*.launch.py share: the node's launch arguments, the node action that passes them on, and
`package_node`, how every node of this package is started (in the `namespace` argument, output on the screen).

Every launch file declares `use_sim_time`, `params_file` (default: config/<node>.yaml of the package share directory,
found by `dlvf_ros.package_share`), `namespace`, `model`, `map`, `rviz` and the input topics `left_image`,
`right_image`, `left_info`, `right_info`, `odom` (`COMMON_ARGUMENTS`), and starts its node (teach_node or
localizer_node) with the parameter file plus `use_sim_time`, `map_path` and `model` from those arguments (an empty
`model`: the shipped model, for the learned backend) and its inputs remapped to the topic arguments (relative names
resolve in the namespace). `rviz:=true` also starts RViz2 with config/dlvf.rviz. The simulated robot's launch files
add theirs from `dlvf_ros.ros.sim_launch`. `launch` and `launch_ros` are
imported inside the functions: they exist on a robot with ROS 2 installed (and in the test environment with
../shared/ros2-wheels); test/test_launch_files.py also reads this module where they are not.
"""

from __future__ import annotations

from dlvf_ros.ros.stereo_input import TOPICS

COMMON_ARGUMENTS = (
    "use_sim_time",
    "params_file",
    "namespace",
    "model",
    "map",
    "rviz",
    "left_image",
    "right_image",
    "left_info",
    "right_info",
    "odom",
)
# the node's own input names: the default of each topic argument (no remapping)
INPUT_TOPICS = {
    "left_image": TOPICS[0],
    "right_image": TOPICS[1],
    "left_info": TOPICS[2],
    "right_info": TOPICS[3],
    "odom": "odom",
}

# what the `map` and `model` arguments are to each node
MAP_DESCRIPTIONS = {"teach_node": "map store directory to create", "localizer_node": "teach map store directory"}
MODEL_DESCRIPTIONS = {
    "teach_node": "exported feature model (.pt); empty: the shipped one",
    "localizer_node": "exported feature model (.pt) the map was built with",
}


def node_arguments(
    node_name: str,
    *,
    map_description: str | None = None,
    use_sim_time: str = "false",
    use_sim_time_description: str = "use /clock (bag replay)",
    namespace_description: str = "namespace of the node and its topics",
    topics: dict[str, str] | None = None,
) -> list:
    """DeclareLaunchArgument actions of `COMMON_ARGUMENTS` for `node_name` (only `map` has no default); `topics`
    overrides the default of topic arguments (`INPUT_TOPICS` keys), `map_description` the node's
    `MAP_DESCRIPTIONS` entry."""
    from launch.actions import DeclareLaunchArgument

    from dlvf_ros.package_share import package_share_directory

    default_params = str(package_share_directory() / "config" / f"{node_name}.yaml")
    topic = {**INPUT_TOPICS, **(topics or {})}
    return [
        DeclareLaunchArgument("use_sim_time", default_value=use_sim_time, description=use_sim_time_description),
        DeclareLaunchArgument("params_file", default_value=default_params, description=f"{node_name} parameter file"),
        DeclareLaunchArgument("namespace", default_value="", description=namespace_description),
        DeclareLaunchArgument("model", default_value="", description=MODEL_DESCRIPTIONS[node_name]),
        DeclareLaunchArgument("map", description=map_description or MAP_DESCRIPTIONS[node_name]),
        DeclareLaunchArgument("rviz", default_value="false", description="also start RViz2 with config/dlvf.rviz"),
        DeclareLaunchArgument("left_image", default_value=topic["left_image"], description="rectified left image"),
        DeclareLaunchArgument("right_image", default_value=topic["right_image"], description="rectified right image"),
        DeclareLaunchArgument("left_info", default_value=topic["left_info"], description="left CameraInfo"),
        DeclareLaunchArgument("right_info", default_value=topic["right_info"], description="right CameraInfo"),
        DeclareLaunchArgument("odom", default_value=topic["odom"], description="nav_msgs/Odometry (odom -> base_link)"),
    ]


def package_node(executable: str, *, parameters: list, remappings: list | None = None):
    """The launch_ros Node running this package's `executable` (also the node's name) in the `namespace` argument,
    its output on the screen, with `parameters` (files and dicts) and `remappings` ((from, to) pairs)."""
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    return Node(
        package="dlvf_ros",
        executable=executable,
        name=executable,
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=parameters,
        remappings=remappings,
    )


def node_action(node_name: str, parameters: dict | None = None):
    """`node_name` (teach_node or localizer_node) as a `package_node` with the arguments of `node_arguments` and
    `parameters` over the params_file's."""
    from launch.substitutions import LaunchConfiguration
    from launch_ros.parameter_descriptions import ParameterValue

    return package_node(
        node_name,
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
                "map_path": ParameterValue(LaunchConfiguration("map"), value_type=str),
                "model": ParameterValue(LaunchConfiguration("model"), value_type=str),
            },
            parameters or {},
        ],
        remappings=[
            (INPUT_TOPICS["left_image"], LaunchConfiguration("left_image")),
            (INPUT_TOPICS["right_image"], LaunchConfiguration("right_image")),
            (INPUT_TOPICS["left_info"], LaunchConfiguration("left_info")),
            (INPUT_TOPICS["right_info"], LaunchConfiguration("right_info")),
            (INPUT_TOPICS["odom"], LaunchConfiguration("odom")),
        ],
    )


def rviz_action():
    """RViz2 with the package's config/dlvf.rviz, started when the `rviz` argument is true."""
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from dlvf_ros.package_share import package_share_directory

    return Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        namespace=LaunchConfiguration("namespace"),
        arguments=["-d", str(package_share_directory() / "config" / "dlvf.rviz")],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
