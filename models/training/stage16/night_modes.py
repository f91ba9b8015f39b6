"""Why world 100's night frames fail per frame (analysis after stage 14; nothing selected): for each night repeat
frame, as `dlvf test` localizes it with the shipped model and settings,
- the mutual matches, and how many of them the ground-truth pose explains within the refinement's final 2 px gate
  (stereo reprojection error (u, v, d) in the current frame, network px);
- how many the truth shifted by one trail-texture tile explains (0.9 m, the gravel tile of `sim/textures.py`, across
  or along the vehicle, the best of the four shifts), i.e. a competing consistent set;
- the error of RANSAC's start (3-D, 0.5 m tolerance) and the refined pose's inliers (0: no pose).

Usage: python models/training/stage16/night_modes.py WORLD [FIRST LAST] (pose ids, default all). Output for world
100, poses 18-42: `night_modes.txt`.
"""

import sys

import numpy as np

from dlvf_ros.data.utias import UtiasDataset
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.ransac import ransac_rigid
from dlvf_ros.localization.frontend import StereoFrontend
from dlvf_ros.localization.keyframe_pose import match_keyframe
from dlvf_ros.localization.per_frame import PerFrameLocalizer
from dlvf_ros.localization.refine import stereo_measurements
from dlvf_ros.training.checkpoint_backend import load_backend
from dlvf_ros.training.config import PerFrameConfig
from dlvf_ros.training.disparity_cache import resized_rgb

TILE_M = 0.9
GATE_PX = 2.0


def explained(T_cur_keyframe, matches, rig) -> int:
    """Matches whose keyframe point T_cur_keyframe puts within GATE_PX of the current (u, v, d) (optical frames)."""
    predicted = stereo_measurements(rig, transforms.transform_points(T_cur_keyframe, matches.tgt))
    return int((np.linalg.norm(predicted - stereo_measurements(rig, matches.src), axis=1) < GATE_PX).sum())


def pose_error(T, T_true) -> str:
    delta = transforms.invert(T_true) @ T
    angle = np.degrees(np.arccos(np.clip((np.trace(delta[:3, :3]) - 1) / 2, -1, 1)))
    return f"{np.linalg.norm(delta[:3, 3]):.2f} m {angle:.1f} deg"


def main(world: str, first: int, last: int) -> None:
    backend, size = load_backend("models/dlvf_m8_c8_240x320.pt")
    assert size is not None
    width, height = size
    dataset = UtiasDataset(world)
    config = PerFrameConfig().localizer_config(width)
    rig = dataset.rig.scaled(width, height)
    frontend = StereoFrontend(backend, rig, config.stereo)
    localizer = PerFrameLocalizer(frontend, config)
    T_vehicle_camera = rig.T_vehicle_camera
    shifts = [
        transforms.make_transform(np.eye(3), np.array(s))
        for s in TILE_M * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]])
    ]
    night = [run for run in dataset.repeat_run_ids if dataset.run_info(run).lighting == "night"]
    print(
        f"pose | matches | explained within {GATE_PX} px: truth / truth shifted one tile | RANSAC start error | "
        "refined inliers"
    )

    def features(vertex):
        return frontend.process(*(resized_rgb(dataset.root, vertex, s, width, height) for s in ("left", "right")))

    poses = [v for v in dataset.vertices(night[0]) if first <= v[1] <= last]
    for vertex, (teach_vertex, T_current_teach) in zip(poses, (dataset.closest_vertex(v, 0) for v in poses)):
        current, keyframe = features(vertex), features(teach_vertex)
        matches = match_keyframe(current.subset_valid(), keyframe, backend.descriptor_metric, config.matching)
        # optical frames: T_cur_keyframe = T_camera_vehicle T_current_teach T_vehicle_camera
        T_true = transforms.invert(T_vehicle_camera) @ T_current_teach @ T_vehicle_camera
        shifted = max(
            explained(transforms.invert(T_vehicle_camera) @ s @ T_current_teach @ T_vehicle_camera, matches, rig)
            for s in shifts
        )
        start = ransac_rigid(matches.src, matches.tgt, matches.weights, localizer.estimator.ransac)
        start_error = pose_error(transforms.invert(start.T_tgt_src), T_true) if start.success else "none"
        inliers = localizer.localize(current, keyframe).num_inliers
        print(
            f"{vertex[1]} | {len(matches)} | {explained(T_true, matches, rig)} / {shifted} | {start_error} | {inliers}",
            flush=True,
        )


if __name__ == "__main__":
    bounds = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (0, 10**9)
    main(sys.argv[1], *bounds)
