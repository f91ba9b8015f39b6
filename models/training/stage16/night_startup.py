"""Does the tracking localizer fall for world 100's tile alias at night? (analysis after the choices; nothing
selected). Teaches a map from the noon run (the learned model, odometry = ground truth, so the map frame is the
world frame), then starts the `Localizer` afresh at night pose K and feeds it 12 frames with ground-truth odometry:
once with the start-up prior of the keyframe nearest K (`initial_keyframe_id`, default sigmas), once with no prior
(a search of the whole map). Prints each frame's fix: translation error (m, planar) and heading error (deg), "!" when
outside the success bound (0.25 m, 2 deg), "-" for no fix.

Usage: python models/training/stage16/night_startup.py WORLD MAP_DIR K1,K2,... Output for world 100, starts at
0 and 26-36 (the poses with the alias, `night_modes.txt`): `night_startup.txt`.
"""

import sys
from pathlib import Path

import numpy as np

from dlvf_ros.data.utias import UtiasDataset
from dlvf_ros.evaluation.metrics import SUCCESS, nearest_keyframes, pose_errors
from dlvf_ros.features.backends import make_backend
from dlvf_ros.localization.frontend import StereoFrontend
from dlvf_ros.localization.localizer import Localizer, LocalizerConfig
from dlvf_ros.localization.map_store import MapStore
from dlvf_ros.localization.teach import Teacher

FRAMES = 12


def teach(dataset: UtiasDataset, backend, map_dir: Path) -> MapStore:
    if not map_dir.exists():
        teacher = Teacher.create(map_dir, backend, dataset.rig)
        stamps = dataset.stamps_ns(0)
        assert stamps is not None
        for vertex in dataset.vertices(0):
            T_world_vehicle = dataset.T_world_vehicle(vertex)
            teacher.add_frame(stamps[vertex[1]], *dataset.load_stereo(vertex), T_world_vehicle, T_world_vehicle)
    return MapStore.open(map_dir)


def fix_text(T_map_vehicle: np.ndarray, T_world_vehicle: np.ndarray) -> str:
    errors = pose_errors(T_map_vehicle[None], T_world_vehicle[None])
    translation, heading = float(errors["translation_m"][0]), float(errors["heading_deg"][0])
    wrong = translation > SUCCESS.max_translation_error_m or abs(heading) > SUCCESS.max_heading_error_deg
    return f"{translation:.2f}/{heading:+.1f}" + ("!" if wrong else "")


def main(world: str, map_dir: str, starts: list[int]) -> None:
    dataset = UtiasDataset(world)
    backend = make_backend("learned", "models/dlvf_m8_c8_240x320.pt")
    store = teach(dataset, backend, Path(map_dir))
    T_map_keyframes = np.array([entry.T_map_keyframe for entry in store.entries])  # = T_world_keyframe
    night = next(run for run in dataset.repeat_run_ids if dataset.run_info(run).lighting == "night")
    vertices, stamps = dataset.vertices(night), dataset.stamps_ns(night)
    assert stamps is not None
    print(f"{len(store)} keyframes; per frame 'pose:translation m/heading deg' of the fix, '-' no fix")
    for prior in (True, False):
        for start in starts:
            nearest = int(nearest_keyframes(dataset.T_world_vehicle(vertices[start])[None], T_map_keyframes)[0])
            config = LocalizerConfig(initial_keyframe_id=nearest if prior else None)
            localizer = Localizer(store, StereoFrontend(backend, store.rig, config.stereo), config)
            cells = []
            for vertex in vertices[start : start + FRAMES]:
                T_world_vehicle = dataset.T_world_vehicle(vertex)
                result = localizer.process(stamps[vertex[1]], *dataset.load_stereo(vertex), T_world_vehicle)
                text = fix_text(result.T_map_vehicle, T_world_vehicle) if result.fixed else "-"
                cells.append(f"{vertex[1]}:{text}")
            label = f"prior keyframe {nearest}" if prior else "no prior"
            print(f"start {start} ({label}): {' '.join(cells)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3].split(",")])
