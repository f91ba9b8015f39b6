"""`render_run` yields one SimFrame per trajectory frame, with ground truth, odometry and depth."""

import numpy as np
import pytest
from sim_worlds import TINY_WORLD

from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.sim import (
    RenderConfig,
    SimFrame,
    StereoRenderer,
    TrajectoryConfig,
    generate_world,
    lighting_preset,
    render_run,
    repeat_trajectory,
)

RIG = StereoRig().scaled(96, 72)


def test_render_run_yields_frames_of_the_trajectory():
    world = generate_world(8, TINY_WORLD)
    run = repeat_trajectory(world, 2, TrajectoryConfig(spacing_m=1.0), hour=23.5)
    frames = list(render_run(world, run, lighting_preset("night"), RIG, RenderConfig(shadow_map_size=512)))
    assert len(frames) == len(run) >= 2
    for pose_id, frame in enumerate(frames):
        assert isinstance(frame, SimFrame) and frame.pose_id == pose_id
        assert frame.stamp_ns == run.stamps_ns[pose_id]
        np.testing.assert_array_equal(frame.T_world_vehicle, run.T_world_vehicle[pose_id])
        np.testing.assert_array_equal(frame.T_odom_vehicle, run.T_odom_vehicle[pose_id])
        assert frame.left.shape == frame.right.shape == (72, 96, 3) and frame.left.dtype == np.uint8
        assert frame.depth_left_m.shape == (72, 96) and frame.depth_left_m.dtype == np.float32
        assert frame.left.flags.writeable
    assert not np.array_equal(frames[0].left, frames[1].left)

    other = generate_world(9, TINY_WORLD)
    with StereoRenderer(other, RIG) as renderer, pytest.raises(ValueError, match="different world"):
        next(render_run(world, run, lighting_preset("noon"), renderer=renderer))
