"""What the simulated robot's launch files (sim_teach, sim_repeat) add to `launch_arguments`: the simulated world's
arguments (`SIM_ARGUMENTS`, declared by `sim_arguments`), sim_node (`sim_action`) and path_tracker_node
(`path_tracker_action`). `launch` and `launch_ros` are imported inside the functions, as in `launch_arguments`.
"""

from __future__ import annotations

from dlvf_ros.ros.launch_arguments import INPUT_TOPICS, package_node

SIM_ARGUMENTS = ("seed", "style", "lighting", "path_length", "image_width", "image_height", "camera_rate", "clock")


def sim_arguments(lighting: str) -> list:
    """DeclareLaunchArgument actions of `SIM_ARGUMENTS` (the world, the lighting, the camera and the clock)."""
    from launch.actions import DeclareLaunchArgument

    return [
        DeclareLaunchArgument("seed", default_value="100", description="world seed"),
        DeclareLaunchArgument("style", default_value="demo", description="world style (demo: held-out members)"),
        DeclareLaunchArgument("lighting", default_value=lighting, description="lighting preset or hour"),
        DeclareLaunchArgument("path_length", default_value="25.0", description="taught path length (m)"),
        DeclareLaunchArgument("image_width", default_value="320", description="image width (px, 4:3)"),
        DeclareLaunchArgument("image_height", default_value="240", description="image height (px)"),
        DeclareLaunchArgument("camera_rate", default_value="5.0", description="stereo frames per sim second"),
        DeclareLaunchArgument("clock", default_value="lockstep", description="lockstep or realtime"),
    ]


def sim_action(mode: str):
    """sim_node in `mode` (teach: drives the centreline; repeat: by cmd_vel) with the `sim_arguments`."""
    from launch.substitutions import LaunchConfiguration
    from launch_ros.parameter_descriptions import ParameterValue

    from dlvf_ros.package_share import package_share_directory

    return package_node(
        "sim_node",
        parameters=[
            str(package_share_directory() / "config" / "sim_node.yaml"),
            {
                "mode": mode,
                "run_id": 0 if mode == "teach" else 1,
                "seed": ParameterValue(LaunchConfiguration("seed"), value_type=int),
                "style": ParameterValue(LaunchConfiguration("style"), value_type=str),
                "lighting": ParameterValue(LaunchConfiguration("lighting"), value_type=str),
                "path_length_m": ParameterValue(LaunchConfiguration("path_length"), value_type=float),
                "image_width": ParameterValue(LaunchConfiguration("image_width"), value_type=int),
                "image_height": ParameterValue(LaunchConfiguration("image_height"), value_type=int),
                "camera_rate_hz": ParameterValue(LaunchConfiguration("camera_rate"), value_type=float),
                "clock": ParameterValue(LaunchConfiguration("clock"), value_type=str),
            },
        ],
    )


def path_tracker_action():
    """path_tracker_node with the package's config/path_tracker_node.yaml, on the node's `odom` input argument."""
    from launch.substitutions import LaunchConfiguration
    from launch_ros.parameter_descriptions import ParameterValue

    from dlvf_ros.package_share import package_share_directory

    return package_node(
        "path_tracker_node",
        parameters=[
            str(package_share_directory() / "config" / "path_tracker_node.yaml"),
            {"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)},
        ],
        remappings=[(INPUT_TOPICS["odom"], LaunchConfiguration("odom"))],
    )
