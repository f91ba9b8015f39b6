"""Simulator frames of a run: `SimFrame` and `render_run`, the iterator that renders a trajectory under a lighting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

import numpy as np
from tqdm import tqdm

from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.sim.config import RenderConfig
from dlvf_ros.sim.lighting import Lighting
from dlvf_ros.sim.renderer import StereoRenderer
from dlvf_ros.sim.trajectory import Trajectory
from dlvf_ros.sim.world import World


@dataclass
class SimFrame:
    """One stereo frame of a run, with ground truth (the object `UtiasWriter` and `write_run_bag` accept)."""

    pose_id: int
    stamp_ns: int
    left: np.ndarray  # (H, W, 3) uint8 RGB, rectified
    right: np.ndarray
    depth_left_m: np.ndarray  # (H, W) float32 z in the left optical frame; inf where sky
    T_world_vehicle: np.ndarray  # 4x4 ground truth
    T_odom_vehicle: np.ndarray  # 4x4 wheel odometry of this run (drifts)


def vehicle_motion(trajectory: Trajectory, pose_id: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(linear m/s, angular rad/s) of the vehicle in its own frame at frame `pose_id`, from the step to the next
    frame (the last frame: from the previous one); None for a single-frame run."""
    if len(trajectory) < 2:
        return None
    a, b = (pose_id, pose_id + 1) if pose_id + 1 < len(trajectory) else (pose_id - 1, pose_id)
    dt_s = (trajectory.stamps_ns[b] - trajectory.stamps_ns[a]) * 1e-9
    step = transforms.invert(trajectory.T_world_vehicle[a]) @ trajectory.T_world_vehicle[b]
    return step[:3, 3] / dt_s, transforms.so3_log(step[:3, :3]) / dt_s


def render_run(
    world: World,
    trajectory: Trajectory,
    lighting: Lighting,
    rig: StereoRig | None = None,
    render_config: RenderConfig | None = None,
    renderer: StereoRenderer | None = None,
    progress: bool = False,
) -> Generator[SimFrame, None, None]:
    """Render every frame of `trajectory` under `lighting`, in order (pose ids 0..N-1), with the vehicle's motion
    (motion blur where the world's camera exposes long enough).

    Pass `renderer` to reuse GPU buffers across runs of the same world (its rig and config are used); otherwise a
    renderer for `rig` and `render_config` is made and released when the iterator finishes.
    """
    own = renderer is None
    if renderer is None:
        renderer = StereoRenderer(world, rig, render_config)
    elif renderer.world is not world:
        raise ValueError("render_run: the renderer was built for a different world")
    try:
        label = f"run {trajectory.run_id} ({lighting.name})"
        for pose_id in tqdm(range(len(trajectory)), desc=label, unit="frame", disable=not progress, leave=False):
            T_world_vehicle = trajectory.T_world_vehicle[pose_id]
            images = renderer.render(
                T_world_vehicle,
                lighting,
                noise_seed=trajectory.run_id * 1_000_003 + pose_id,
                motion_vehicle=vehicle_motion(trajectory, pose_id),
            )
            yield SimFrame(
                pose_id=pose_id,
                stamp_ns=int(trajectory.stamps_ns[pose_id]),
                left=images.left,
                right=images.right,
                depth_left_m=images.depth_left_m,
                T_world_vehicle=T_world_vehicle.copy(),
                T_odom_vehicle=trajectory.T_odom_vehicle[pose_id].copy(),
            )
    finally:
        if own:
            renderer.close()
