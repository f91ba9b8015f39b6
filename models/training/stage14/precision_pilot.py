"""Stage 14 pilot (validation worlds only): how far matches land from the truth before and after moving each match's
current keypoint to the best descriptor correlation within +-R network px (the prototype of
`dlvf_ros/matching/refinement.py`, on the eager stage-11 network's encoder maps).

Usage: R=4 TEMPS=0.0,0.02 python models/training/stage14/precision_pilot.py WORLD [WORLD ...]; TEMPS are softmax
temperatures, 0.0 the argmax. Prints per lighting, raw and per temperature: the fractions of matches within 3.2 and
6.4 camera px of the truth and the median error (camera px). Output: pilot.txt.
"""

import os
import sys

import numpy as np
import torch

from dlvf_ros.data.utias import UtiasDataset
from dlvf_ros.features.checkpoint import TrainingCheckpoint
from dlvf_ros.features.sampling import sample_descriptors
from dlvf_ros.geometry import transforms
from dlvf_ros.localization.frontend import StereoFrontend
from dlvf_ros.matching.descriptor_matching import match_descriptors
from dlvf_ros.training.checkpoint_backend import load_backend
from dlvf_ros.training.config import PerFrameConfig
from dlvf_ros.training.disparity_cache import resized_rgb

R = int(os.environ.get("R", 4))
dv, du = np.meshgrid(np.arange(-R, R + 1), np.arange(-R, R + 1), indexing="ij")
OFF = np.stack([du.ravel(), dv.ravel()], 1).astype(np.float32)
TEMPS = [float(t) for t in os.environ.get("TEMPS", "0.0,0.02,0.05,0.1").split(",")]


def print_world(net, backend, width: int, height: int, world: str) -> None:
    ds = UtiasDataset(world)
    config = PerFrameConfig().localizer_config(width)
    fe = StereoFrontend(backend, ds.rig.scaled(width, height), config.stereo)
    T_vc = fe.rig.T_vehicle_camera
    scale = ds.rig.width / width
    cache = {}

    def feats(v):
        if v not in cache:
            left, right = (resized_rgb(ds.root, v, s, width, height) for s in ("left", "right"))
            cache[v] = (fe.process(left, right).subset_valid(), left)
        return cache[v]

    for run in ds.repeat_run_ids:
        errs = {t: [] for t in ["raw", *TEMPS]}
        for v in ds.vertices(run):
            tv, T_v_t = ds.closest_vertex(v, 0)
            (cur, left), (kf, _) = feats(v), feats(tv)
            m = match_descriptors(
                cur.features.descriptors, kf.features.descriptors, backend.descriptor_metric, config.matching
            )
            T_c_k = transforms.invert(T_vc) @ T_v_t @ T_vc
            true_uv, _ = fe.rig.project(transforms.transform_points(T_c_k, kf.points_camera[m.index_b]))
            kp = cur.features.keypoints[m.index_a].astype(np.float32)
            errs["raw"].append(np.linalg.norm(true_uv - kp, axis=1))
            with torch.no_grad():
                img = torch.from_numpy(left).permute(2, 0, 1)[None].float() / 255.0
                maps = net.encoder(img)
                pts = (kp[:, None, :] + OFF[None]).reshape(1, -1, 2)
                d = sample_descriptors(maps, torch.from_numpy(pts), (height, width))[0].reshape(len(kp), len(OFF), -1)
                dk = torch.from_numpy(kf.features.descriptors[m.index_b]).float()
                corr = (d * dk[:, None, :]).mean(-1).numpy()  # [M, K] ZNCC
            for t in TEMPS:
                if t == 0.0:
                    best = OFF[corr.argmax(1)]
                else:
                    w = np.exp((corr - corr.max(1, keepdims=True)) / t)
                    best = (w / w.sum(1, keepdims=True)) @ OFF
                errs[t].append(np.linalg.norm(true_uv - (kp + best), axis=1))
        out = []
        for k, e in errs.items():
            e = np.concatenate(e) * scale
            out.append(f"{k}: {np.mean(e < 3.2):.2f}/{np.mean(e < 6.4):.2f}/{np.median(e):.1f}")
        print(ds.root.name, ds.run_info(run).lighting, " | ".join(out), flush=True)


if __name__ == "__main__":
    torch.set_num_threads(2)
    network = TrainingCheckpoint.load("models/training/stage11/best.pt").network()
    learned, (model_width, model_height) = load_backend("models/dlvf_m8_c8_240x320.pt")
    for path in sys.argv[1:]:
        print_world(network, learned, model_width, model_height, path)
