"""Repeat in simulation, closed loop: path_tracker_node drives the simulated robot along the taught path by
localizer_node's output and odometry alone.

    ros2 launch dlvf_ros sim_repeat.launch.py map:=/tmp/sim_map lighting:=night

Arguments: those of repeat.launch.py (use_sim_time defaults to true: sim_node publishes /clock) and the simulated
world's seed, style, lighting, path_length, image_width, image_height, camera_rate and clock (lockstep: sim time
waits for the localizer's answer to each frame and the tracker's command for each odometry message; realtime). The
robot starts 0.3 m left of the path, turned 5 deg (sim_node's initial_lateral_m, initial_heading_deg), and stops at
the path's end; the localizer starts up around the first keyframe (`localizer.initial_keyframe_id` 0). Use the teach
pass's seed, style and path_length (sim_teach.launch.py).
"""

from dlvf_ros.ros.launch_arguments import node_action, node_arguments, rviz_action
from dlvf_ros.ros.sim_launch import path_tracker_action, sim_action, sim_arguments
from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *node_arguments(
                "localizer_node",
                map_description="teach map store directory (sim_teach.launch.py)",
                use_sim_time="true",
                use_sim_time_description="use /clock (sim_node publishes it)",
            ),
            *sim_arguments(lighting="night"),
            node_action("localizer_node", {"localizer.initial_keyframe_id": 0}),  # parked at the path's start
            path_tracker_action(),
            sim_action("repeat"),
            rviz_action(),
        ]
    )
