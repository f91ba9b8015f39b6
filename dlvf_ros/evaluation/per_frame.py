"""Per-frame mode, scored: each repeat frame against its ground-truth-nearest teach keyframe.

The frames are localized by `dlvf_ros.localization.per_frame.PerFrameLocalizer` (the Localizer's matching, RANSAC and
refinement; no odometry, no submap, no gate) and scored by `evaluate.score_frames` like the through-the-nodes result.
Two sources of frames and keyframes:
- `evaluate_bag_per_frame` (`dlvf evaluate --per-frame`): a repeat bag against the teach map it was replayed on: the
  keyframes' stored features, the keyframe nearest to the frame's ground-truth position (the map's T_world_keyframe,
  the bag's /ground_truth/pose at the image stamp);
- `evaluate_dataset_per_frame` (`dlvf test`): a UTIAS-layout dataset: each later run against each earlier one, the
  metrically closest vertex of the earlier run within `max_edges` pose-graph edges, features computed at the test
  image size.
The errors are those of T_keyframe_vehicle; with a map, poses are reported in the map frame through the keyframe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from dlvf_ros.evaluation import metrics
from dlvf_ros.evaluation.evaluate import GroundTruth, RunEvaluation, score_frames
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.interpolation import interpolate_poses
from dlvf_ros.localization.frontend import StereoFeatures
from dlvf_ros.localization.per_frame import PerFrameLocalizer


def _localize_frame(localizer: PerFrameLocalizer, current: StereoFeatures, keyframe: StereoFeatures):
    """(T_keyframe_vehicle or NaN, inliers, ms for features + stereo + pose)."""
    result = localizer.localize(current, keyframe)
    elapsed_ms = sum(current.timings_ms.get(stage, 0.0) for stage in ("features", "stereo")) + result.localize_ms
    T = result.T_keyframe_vehicle if result.T_keyframe_vehicle is not None else np.full((4, 4), np.nan)
    return T, result.num_inliers, elapsed_ms


def evaluate_bag_per_frame(
    frames: Iterable[tuple[int, np.ndarray, np.ndarray]],
    ground_truth: GroundTruth,
    keyframe: Callable[[int], StereoFeatures],
    localizer: PerFrameLocalizer,
    criteria: metrics.SuccessCriteria,
    max_ground_truth_gap_s: float,
    n_images: int,
    name: str,
    lighting: str,
) -> RunEvaluation:
    """Per-frame mode over a repeat run's (stamp_ns, left RGB, right RGB) frames against a map whose keyframe
    features `keyframe(id)` returns; frames without ground truth are counted but not localized."""
    stamps, T_est, T_gt, inliers, elapsed = [], [], [], [], []
    for stamp_ns, left, right in frames:
        stamps.append(int(stamp_ns))
        T_world, valid = interpolate_poses(
            ground_truth.stamp_ns,
            ground_truth.T_world_vehicle,
            np.array([stamp_ns]),
            int(max_ground_truth_gap_s * 1e9),
        )
        if not valid[0]:
            T_est.append(np.full((4, 4), np.nan))
            T_gt.append(np.full((4, 4), np.nan))
            inliers.append(0)
            elapsed.append(np.nan)
            continue
        k = int(metrics.nearest_keyframes(T_world, ground_truth.T_world_keyframe)[0])
        T_keyframe_vehicle_gt = transforms.invert(ground_truth.T_world_keyframe[k]) @ T_world[0]
        T_keyframe_vehicle, count, ms = _localize_frame(localizer, localizer.frame_features(left, right), keyframe(k))
        T_est.append(ground_truth.T_map_keyframe[k] @ T_keyframe_vehicle)
        T_gt.append(ground_truth.T_map_keyframe[k] @ T_keyframe_vehicle_gt)
        inliers.append(count)
        elapsed.append(ms)
    T_map_vehicle_est, T_map_vehicle_gt = np.array(T_est).reshape(-1, 4, 4), np.array(T_gt).reshape(-1, 4, 4)
    return score_frames(
        name,
        lighting,
        n_images,
        np.array(stamps, dtype=np.int64),
        np.all(np.isfinite(T_map_vehicle_est), axis=(1, 2)),
        np.full(len(stamps), ""),
        np.array(inliers, dtype=np.int64),
        np.array(elapsed, dtype=np.float64),
        T_map_vehicle_est,
        T_map_vehicle_gt,
        criteria,
    )


@dataclass
class DatasetFrame:
    """One frame of `dlvf test`: live vertex (run, pose) localized against map vertex (map_run, map_pose)."""

    run: int
    pose: int
    map_run: int
    map_pose: int
    stamp_ns: int  # the live frame's stamp (times.txt), else its pose id


def evaluate_dataset_per_frame(
    dataset,
    features: Callable[[tuple[int, int], bool], StereoFeatures],
    localizer: PerFrameLocalizer,
    runs: list[int],
    criteria: metrics.SuccessCriteria,
    frame_stride: int = 1,
    max_edges: int = 8,
    progress: Callable[[list], Iterable] | None = None,
    map_run: int | None = None,
) -> tuple[list[RunEvaluation], list[DatasetFrame]]:
    """Each later run of `runs` against each earlier one (with `map_run`: every other run against that one) in a
    `UtiasDataset` (every `frame_stride`-th vertex, against the closest vertex within `max_edges` edges);
    `features(vertex, current)` gives a vertex's stereo features at the test size, as the frame to localize
    (`current`: `PerFrameLocalizer.frame_features`) or as the keyframe. Returns one `RunEvaluation` per run pair
    (named "run->map_run", errors in the map vertex's vehicle frame) and the frames in the same order."""
    if len(runs) < 2:
        raise ValueError(f"dlvf test: need at least two runs to localize one against another, got {runs}")
    missing = sorted(set(runs) - set(dataset.run_ids))
    if missing:
        raise ValueError(f"dlvf test: runs {missing} are not in {dataset.root}; available: {dataset.run_ids}")
    runs = sorted(runs)
    if map_run is not None and map_run not in runs:
        raise ValueError(f"dlvf test: map run {map_run} is not among the runs to test {runs}; add it or drop it")
    pairs = (
        [(run, map_run) for run in runs if run != map_run]
        if map_run is not None
        else [(run, earlier) for i, run in enumerate(runs) for earlier in runs[:i]]
    )
    jobs = [(vertex, reference) for run, reference in pairs for vertex in dataset.vertices(run)[::frame_stride]]
    by_pair: dict[tuple[int, int], list] = {}
    for vertex, reference in progress(jobs) if progress else jobs:
        try:
            map_vertex, T_vertex_map = dataset.closest_vertex(vertex, reference, max_edges)
        except ValueError:
            continue
        T_keyframe_vehicle, count, ms = _localize_frame(localizer, features(vertex, True), features(map_vertex, False))
        stamps = dataset.stamps_ns(vertex[0])
        frame = DatasetFrame(
            vertex[0], vertex[1], map_vertex[0], map_vertex[1], (stamps or {}).get(vertex[1], vertex[1])
        )
        by_pair.setdefault((vertex[0], reference), []).append(
            (frame, T_keyframe_vehicle, transforms.invert(T_vertex_map), count, ms)
        )
    if not by_pair:
        raise ValueError(f"dlvf test: no frame of runs {runs} has a vertex of an earlier run within {max_edges} edges")
    evaluations, frames = [], []
    for (run, reference), rows in by_pair.items():
        frames += [row[0] for row in rows]
        evaluations.append(
            score_frames(
                f"{run}->{reference}",
                dataset.run_info(run).lighting or "unknown",
                len(rows),
                np.array([row[0].stamp_ns for row in rows], dtype=np.int64),
                np.array([np.all(np.isfinite(row[1])) for row in rows]),
                np.full(len(rows), ""),
                np.array([row[3] for row in rows], dtype=np.int64),
                np.array([row[4] for row in rows], dtype=np.float64),
                np.stack([row[1] for row in rows]),
                np.stack([row[2] for row in rows]),
                criteria,
            )
        )
    return evaluations, frames
