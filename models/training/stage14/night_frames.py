"""Why night frames fail per frame (analysis, after stage 14's choice): for each night repeat frame of WORLD, the
current frame's keypoints with a stereo point, the nearest teach keyframe's, the mutual matches and the pose's
inliers (0: no pose), as `dlvf test` computes them with the shipped model and settings.

Usage: python models/training/stage14/night_frames.py WORLD [FIRST LAST] (pose ids, default all). Output for world
100, poses 18-42: `night_frames.txt`.
"""

import sys

from dlvf_ros.data.utias import UtiasDataset
from dlvf_ros.localization.frontend import StereoFrontend
from dlvf_ros.localization.keyframe_pose import match_keyframe
from dlvf_ros.localization.per_frame import PerFrameLocalizer
from dlvf_ros.training.checkpoint_backend import load_backend
from dlvf_ros.training.config import PerFrameConfig
from dlvf_ros.training.disparity_cache import resized_rgb


def main(world: str, first: int, last: int) -> None:
    backend, size = load_backend("models/dlvf_m8_c8_240x320.pt")
    assert size is not None
    width, height = size
    dataset = UtiasDataset(world)
    config = PerFrameConfig().localizer_config(width)
    frontend = StereoFrontend(backend, dataset.rig.scaled(width, height), config.stereo)
    localizer = PerFrameLocalizer(frontend, config)
    night = [run for run in dataset.repeat_run_ids if dataset.run_info(run).lighting == "night"]
    print("pose | current: with stereo / keypoints | keyframe: with stereo | matches | inliers")
    for vertex in dataset.vertices(night[0]):
        if not first <= vertex[1] <= last:
            continue
        teach_vertex, _ = dataset.closest_vertex(vertex, 0)
        current, keyframe = (
            frontend.process(*(resized_rgb(dataset.root, v, side, width, height) for side in ("left", "right")))
            for v in (vertex, teach_vertex)
        )
        matches = match_keyframe(current.subset_valid(), keyframe, backend.descriptor_metric, config.matching)
        inliers = localizer.localize(current, keyframe).num_inliers
        print(
            f"{vertex[1]} | {int(current.valid.sum())} / {len(current.valid)} | {int(keyframe.valid.sum())} | "
            f"{len(matches)} | {inliers}"
        )


if __name__ == "__main__":
    bounds = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (0, 10**9)
    main(sys.argv[1], *bounds)
