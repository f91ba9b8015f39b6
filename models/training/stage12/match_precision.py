"""How precise a backend's matches are, per lighting: each repeat frame against its ground-truth-nearest teach vertex
as `dlvf test` does it (a model at its input size, the other backends at the camera's size; the per-frame SGBM;
mutual nearest neighbours), each match's keyframe point moved into the current camera by the true pose and
projected; its distance from the current keypoint, in the camera's own pixels (512x384).

Usage: python models/training/stage12/match_precision.py BACKEND WORLD [WORLD ...], BACKEND a model file (.pt) or
xfeat, orb or sift; WORLD a UTIAS-layout world. Prints, per world and lighting, the medians over frames of: matches,
matches within 3.2 and 6.4 camera px of the truth (2 and 4 px at 320x240), and the pose's inliers.
"""

import sys

import numpy as np

from dlvf_ros.data.utias import UtiasDataset
from dlvf_ros.features.backends import FeatureBackend, make_backend
from dlvf_ros.geometry import transforms
from dlvf_ros.localization.frontend import StereoFeatures, StereoFrontend
from dlvf_ros.localization.keyframe_pose import match_keyframe
from dlvf_ros.localization.per_frame import PerFrameLocalizer
from dlvf_ros.training.checkpoint_backend import load_backend
from dlvf_ros.training.config import PerFrameConfig
from dlvf_ros.training.disparity_cache import resized_rgb

THRESHOLDS_PX = (3.2, 6.4)  # camera px: 2 and 4 px at 320x240


def print_world(backend: FeatureBackend, model_size: tuple[int, int] | None, world: str) -> None:
    """One line per repeat run of `world`: lighting, frames, and the medians of the module docstring."""
    dataset = UtiasDataset(world)
    width, height = model_size or (dataset.rig.width, dataset.rig.height)
    config = PerFrameConfig().localizer_config(width)
    frontend = StereoFrontend(backend, dataset.rig.scaled(width, height), config.stereo)
    localizer = PerFrameLocalizer(frontend, config)
    T_vehicle_camera = frontend.rig.T_vehicle_camera
    to_camera_px = dataset.rig.width / width
    cache: dict[tuple[int, int], StereoFeatures] = {}

    def features(vertex: tuple[int, int]) -> StereoFeatures:
        if vertex not in cache:  # a teach vertex is the nearest of a frame in every repeat run
            left, right = (resized_rgb(dataset.root, vertex, side, width, height) for side in ("left", "right"))
            cache[vertex] = frontend.process(left, right)
        return cache[vertex]

    for run in dataset.repeat_run_ids:
        rows = []
        for vertex in dataset.vertices(run):
            teach_vertex, T_vertex_teach = dataset.closest_vertex(vertex, 0)
            current, keyframe = features(vertex), features(teach_vertex)
            matches = match_keyframe(current.subset_valid(), keyframe, backend.descriptor_metric, config.matching)
            T_current_keyframe = transforms.invert(T_vehicle_camera) @ T_vertex_teach @ T_vehicle_camera
            true_uv, _ = frontend.rig.project(transforms.transform_points(T_current_keyframe, matches.tgt))
            keypoint_uv, _ = frontend.rig.project(matches.src)
            error_px = to_camera_px * np.linalg.norm(true_uv - keypoint_uv, axis=1)
            inliers = localizer.localize(current, keyframe).num_inliers
            rows.append((len(matches), *((error_px < t).sum() for t in THRESHOLDS_PX), inliers))
        medians = np.median(np.array(rows), axis=0)
        lighting = dataset.run_info(run).lighting
        print(f"{dataset.root.name} {lighting} {len(rows)} | " + ", ".join(f"{m:.0f}" for m in medians), flush=True)


def main(backend_name: str, worlds: list[str]) -> None:
    backend, model_size = (
        load_backend(backend_name) if backend_name.endswith(".pt") else (make_backend(backend_name), None)
    )
    print("world lighting frames | medians: matches, within 3.2 px, within 6.4 px (camera px), inliers")
    for world in worlds:
        print_world(backend, model_size, world)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
