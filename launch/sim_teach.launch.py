"""Teach in simulation: sim_node drives the trail centreline of a simulated world while teach_node builds the map.

    ros2 launch dlvf_ros sim_teach.launch.py map:=/tmp/sim_map lighting:=noon

Arguments: those of teach.launch.py (use_sim_time defaults to true: sim_node publishes /clock) and the simulated
world's seed, style, lighting, path_length, image_width, image_height, camera_rate and clock (lockstep: sim time
waits for teach_node to answer each frame; realtime). The run ends at the path's end; Ctrl-C then finalises the map.
`dlvf closed-loop` runs this pass and the repeats as processes and scores them.
"""

from dlvf_ros.ros.launch_arguments import node_action, node_arguments, rviz_action
from dlvf_ros.ros.sim_launch import sim_action, sim_arguments
from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *node_arguments(
                "teach_node", use_sim_time="true", use_sim_time_description="use /clock (sim_node publishes it)"
            ),
            *sim_arguments(lighting="noon"),
            node_action("teach_node"),
            sim_action("teach"),
            rviz_action(),
        ]
    )
