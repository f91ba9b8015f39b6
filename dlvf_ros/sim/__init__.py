"""Synthetic teach-and-repeat world: procedural terrain, time-of-day lighting, CPU stereo rendering (moderngl/EGL).

Typical use::

    from dlvf_ros.sim import (SimConfig, generate_world, teach_trajectory, repeat_trajectory, lighting_preset,
                              StereoRenderer, render_run)
    cfg = SimConfig()                                  # cfg.world.style: "drawn" (from the seed), "classic", ...
    world = generate_world(seed=3, config=cfg.world)   # world.style: the members it drew
    teach = teach_trajectory(world, cfg.trajectory, cfg.odometry, hour=12.5)        # run 0
    repeat = repeat_trajectory(world, 1, cfg.trajectory, cfg.odometry, hour=23.5)   # run 1
    with StereoRenderer(world, rig, cfg.render) as renderer:                         # one per world and rig
        for frame in render_run(world, repeat, lighting_preset("night"), renderer=renderer):
            frame.left, frame.right, frame.depth_left_m, frame.T_world_vehicle, frame.T_odom_vehicle

Modules: config (typed settings), style (families of appearance, held-out members, `draw_style`), world (terrain,
trail, clutter, exact `terrain_height`), textures and meshes (the members' surfaces and objects), lighting (presets,
any hour, sky and headlight members), camera (camera members), trajectory and odometry (runs), renderer (GL, one
context per process), frames (`SimFrame`, `render_run`), contact_sheet (PNGs of places or styles x lightings), cli
(`dlvf sim`: sim_cli). The robot in the loop (sim_node, `dlvf sim --live`): vehicle (unicycle driven by velocity
commands, the scripted teach drive), live (`LiveSimulator`: world, vehicle, odometry and renderer in sim time),
lockstep (what a lock-step simulation waits for).
"""

from dlvf_ros.sim.config import OdometryConfig, RenderConfig, SimConfig, TrajectoryConfig, WorldConfig
from dlvf_ros.sim.frames import SimFrame, render_run
from dlvf_ros.sim.lighting import PRESETS, Lighting, lighting_for_hour, lighting_preset
from dlvf_ros.sim.renderer import StereoImages, StereoRenderer, gl_context, projection_matrix
from dlvf_ros.sim.style import HELD_OUT, Style, draw_style, parse_style
from dlvf_ros.sim.trajectory import (
    Trajectory,
    pose_on_path,
    repeat_trajectory,
    teach_trajectory,
    vehicle_pose_on_terrain,
)
from dlvf_ros.sim.world import World, generate_world

__all__ = [
    "HELD_OUT",
    "PRESETS",
    "Lighting",
    "OdometryConfig",
    "RenderConfig",
    "SimConfig",
    "SimFrame",
    "StereoImages",
    "StereoRenderer",
    "Style",
    "Trajectory",
    "TrajectoryConfig",
    "World",
    "WorldConfig",
    "draw_style",
    "generate_world",
    "gl_context",
    "lighting_for_hour",
    "lighting_preset",
    "parse_style",
    "pose_on_path",
    "projection_matrix",
    "render_run",
    "repeat_trajectory",
    "teach_trajectory",
    "vehicle_pose_on_terrain",
]
