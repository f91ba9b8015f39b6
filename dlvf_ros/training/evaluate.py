"""`dlvf test` core: localize every frame of each later run against each earlier run, frame by frame.

For a later-run vertex (source, "live") the map frame is the metrically closest vertex of the earlier run (target)
found within `max_edges` pose-graph edges; the ground truth `T_target_source` comes from the pose graph. Both left
images give features at the test size (`StereoFrontend`: network features, SGBM disparity, 3-D points), matched
with "soft" sparse matching (the reference: per source keypoint a softmax at `temperature` over the ZNCC with the
target keypoints that have a 3-D point; matched point, ZNCC and score are softmax-weighted means; weight
0.5 (ZNCC + 1) s_src s_tgt) or "mutual" nearest neighbours; then RANSAC with weighted refinement, in vehicle frames.
Errors are those of `E = T_gt^-1 T_est` (the estimate seen from the true source frame): x, y, z (m), roll, pitch,
yaw (deg). A frame succeeds with >= `ransac.min_inliers` inliers and planar and heading errors within bounds.
"""

from __future__ import annotations

import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from dlvf_ros.data.utias import UtiasDataset
from dlvf_ros.evaluation.metrics import statistics
from dlvf_ros.features.backends import FeatureBackend, Features, LearnedBackend, check_image_rgb
from dlvf_ros.features.checkpoint import TrainingCheckpoint
from dlvf_ros.features.unet import FeatureNet
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.geometry.ransac import ransac_rigid
from dlvf_ros.localization.frontend import StereoConfig, StereoFeatures, StereoFrontend
from dlvf_ros.matching.descriptor_matching import MatchingConfig, match_descriptors
from dlvf_ros.training.config import TestConfig
from dlvf_ros.training.disparity_cache import resized_rgb

DOF = ("x_m", "y_m", "z_m", "roll_deg", "pitch_deg", "yaw_deg")


class NetworkBackend(FeatureBackend):
    """A FeatureNet in memory (from a training checkpoint, or untrained) as a feature backend; ZNCC descriptors."""

    name = "learned"
    descriptor_metric = "zncc"

    def __init__(self, network: FeatureNet, description: dict) -> None:
        self.network = network.eval()
        self.description = description

    def extract(self, image_rgb: np.ndarray) -> Features:
        image = (
            torch.from_numpy(np.ascontiguousarray(check_image_rgb(image_rgb))).permute(2, 0, 1)[None].float() / 255.0
        )
        with torch.inference_mode():
            out = self.network({"image": image})
        return Features(
            out["keypoints"][0].numpy().astype(np.float32),
            out["descriptors"][0].numpy().astype(np.float32),
            out["keypoint_scores"][0].numpy().astype(np.float32),
        )

    @property
    def descriptor_size(self) -> int:
        return self.network.descriptor_dim

    def signature(self) -> dict:
        return {"backend": self.name, **self.description}


def _is_exported_model(path: Path) -> bool:
    """True for a `dlvf export` TorchScript archive (it embeds extra/metadata.json); False for a checkpoint."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/extra/metadata.json") for name in archive.namelist())


def load_backend(model: str | Path | None) -> tuple[FeatureBackend, tuple[int, int] | None]:
    """Feature backend and its preferred (width, height): a `dlvf train` checkpoint (.pt), an exported model, or
    None for an untrained default FeatureNet (seeded, for comparisons)."""
    if model is None:
        torch.manual_seed(0)
        return NetworkBackend(FeatureNet(), {"model": "untrained FeatureNet (seed 0)"}), None
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(
            f"--model {path} does not exist; pass a checkpoint (checkpoints/best.pt) or an exported model"
        )
    if _is_exported_model(path):
        backend = LearnedBackend(path)
        return backend, (int(backend.metadata["input_width"]), int(backend.metadata["input_height"]))
    checkpoint = TrainingCheckpoint.load(path)
    size = tuple(checkpoint.image_size) if checkpoint.image_size is not None else None
    return NetworkBackend(checkpoint.network(), {"checkpoint": str(path), "epoch": checkpoint.epoch}), size


@dataclass
class FrameResult:
    """One localized frame: live (source) vertex in `run`, map (target) vertex in `map_run`."""

    run: int
    pose: int
    map_run: int
    map_pose: int
    lighting: str
    map_lighting: str
    matches: int
    inliers: int
    localized: bool
    success: bool
    errors: dict
    match_ms: float


def soft_sparse_matches(source: StereoFeatures, target: StereoFeatures, temperature: float) -> tuple[np.ndarray, ...]:
    """Reference soft matching on sparse features -> (points_src, points_tgt, weights) in the left optical frames."""
    src, tgt = source.subset_valid(), target.subset_valid()
    if len(src.valid) == 0 or len(tgt.valid) == 0:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0)
    zncc = src.features.descriptors.astype(np.float64) @ tgt.features.descriptors.T.astype(np.float64)
    zncc /= src.features.descriptors.shape[1]
    logits = (zncc + 1.0) / temperature
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    points_tgt = probabilities @ tgt.points_camera
    weights = (
        0.5 * ((probabilities * zncc).sum(axis=1) + 1.0) * src.features.scores * (probabilities @ tgt.features.scores)
    )
    return src.points_camera, points_tgt, np.clip(weights, 0.0, None)


def mutual_matches(source: StereoFeatures, target: StereoFeatures, zncc_min: float) -> tuple[np.ndarray, ...]:
    src, tgt = source.subset_valid(), target.subset_valid()
    matches = match_descriptors(
        src.features.descriptors, tgt.features.descriptors, "zncc", MatchingConfig(zncc_min=zncc_min)
    )
    weights = matches.quality * src.features.scores[matches.index_a] * tgt.features.scores[matches.index_b]
    return src.points_camera[matches.index_a], tgt.points_camera[matches.index_b], weights.astype(np.float64)


def error_components(T_est: np.ndarray, T_gt: np.ndarray) -> dict:
    """x, y, z (m) and roll, pitch, yaw (deg) of E = T_gt^-1 T_est, plus translation_m and rotation_deg."""
    E = transforms.invert(T_gt) @ T_est
    roll, pitch = np.arctan2(E[2, 1], E[2, 2]), -np.arcsin(np.clip(E[2, 0], -1.0, 1.0))
    return {
        "x_m": float(E[0, 3]),
        "y_m": float(E[1, 3]),
        "z_m": float(E[2, 3]),
        "roll_deg": float(np.degrees(roll)),
        "pitch_deg": float(np.degrees(pitch)),
        "yaw_deg": float(np.degrees(transforms.yaw_of(E))),
        "translation_m": float(np.linalg.norm(E[:3, 3])),
        "rotation_deg": float(np.degrees(transforms.rotation_angle(E[:3, :3]))),
    }


class RunEvaluator:
    """Features of every frame of the tested runs (computed once, cached), then localization run pair by run pair."""

    def __init__(
        self, dataset: UtiasDataset, backend: FeatureBackend, size: tuple[int, int], config: TestConfig
    ) -> None:
        self.dataset, self.config = dataset, config
        self.width, self.height = size
        self.rig: StereoRig = dataset.rig.scaled(self.width, self.height)
        # the reference: dense SGBM at the test size, as training's disparities
        self.frontend = StereoFrontend(backend, self.rig, StereoConfig(method="sgbm", sgbm=config.sgbm))
        self.features: dict[tuple[int, int], StereoFeatures] = {}
        self.extract_ms: list[float] = []

    def frame(self, vertex: tuple[int, int]) -> StereoFeatures:
        if vertex not in self.features:
            left = resized_rgb(self.dataset.root, vertex, "left", self.width, self.height)
            right = resized_rgb(self.dataset.root, vertex, "right", self.width, self.height)
            start = time.perf_counter()
            self.features[vertex] = self.frontend.process(left, right)
            self.extract_ms.append(1000 * (time.perf_counter() - start))
        return self.features[vertex]

    def localize(self, vertex: tuple[int, int], map_run: int, generator: torch.Generator) -> FrameResult | None:
        """Localize `vertex` against the closest vertex of `map_run`; None if no map vertex is within reach."""
        config = self.config
        try:
            map_vertex, T_source_target = self.dataset.closest_vertex(vertex, map_run, config.max_edges)
        except ValueError:
            return None
        T_gt = transforms.invert(T_source_target)  # T_target_source
        source, target = self.frame(vertex), self.frame(map_vertex)
        start = time.perf_counter()
        if config.matcher == "soft":
            points_src, points_tgt, weights = soft_sparse_matches(source, target, config.temperature)
        else:
            points_src, points_tgt, weights = mutual_matches(source, target, config.zncc_min)
        T_vehicle_camera = self.rig.T_vehicle_camera
        result = (
            ransac_rigid(
                transforms.transform_points(T_vehicle_camera, points_src),
                transforms.transform_points(T_vehicle_camera, points_tgt),
                weights,
                config.ransac,
                generator,
            )
            if len(weights)
            else None
        )
        match_ms = 1000 * (time.perf_counter() - start)
        localized = result is not None and result.success
        errors = error_components(result.T_tgt_src, T_gt) if localized else {}
        success = localized and (
            np.hypot(errors["x_m"], errors["y_m"]) <= config.max_translation_error_m
            and abs(errors["yaw_deg"]) <= config.max_heading_error_deg
        )
        info = self.dataset.run_info
        return FrameResult(
            vertex[0],
            vertex[1],
            map_vertex[0],
            map_vertex[1],
            info(vertex[0]).lighting or "unknown",
            info(map_run).lighting or "unknown",
            len(weights),
            int(result.num_inliers) if result else 0,
            bool(localized),
            bool(success),
            errors,
            match_ms,
        )


def summarize(frames: list[FrameResult], extract_ms: list[float]) -> dict:
    """Per-DOF RMSE over localized frames, success rate over all frames, inliers per run pair and lighting."""
    localized = [f for f in frames if f.localized]
    summary = {
        "frames": len(frames),
        "localized": len(localized),
        "success_rate": float(np.mean([f.success for f in frames])) if frames else float("nan"),
        "rmse": {key: statistics(np.array([f.errors[key] for f in localized]))["rmse"] for key in DOF},
        "translation_rmse_m": statistics(np.array([f.errors["translation_m"] for f in localized]))["rmse"],
        "rotation_rmse_deg": statistics(np.array([f.errors["rotation_deg"] for f in localized]))["rmse"],
        "inliers": statistics(np.array([f.inliers for f in frames], dtype=np.float64)),
        "runtime_ms": {
            "features_and_stereo_per_frame": statistics(np.array(extract_ms)),
            "matching_and_ransac_per_frame": statistics(np.array([f.match_ms for f in frames])),
        },
    }
    groups: dict[str, dict[str, list[FrameResult]]] = {"per_run_pair": {}, "per_lighting": {}}
    for f in frames:
        groups["per_run_pair"].setdefault(f"{f.run}->{f.map_run}", []).append(f)
        groups["per_lighting"].setdefault(f.lighting, []).append(f)
    for name, members in groups.items():
        summary[name] = {
            key: {
                "frames": len(group),
                "success_rate": float(np.mean([f.success for f in group])),
                "median_inliers": float(np.median([f.inliers for f in group])),
                "mean_inliers": float(np.mean([f.inliers for f in group])),
            }
            for key, group in members.items()
        }
    return summary


def evaluate(
    dataset: UtiasDataset,
    backend: FeatureBackend,
    size: tuple[int, int],
    runs: list[int],
    config: TestConfig,
    progress=None,
) -> tuple[dict, list[dict]]:
    """Localize each later run of `runs` against each earlier one -> (summary, per-frame rows)."""
    if len(runs) < 2:
        raise ValueError(f"dlvf test: need at least two runs to localize one against another, got {runs}")
    missing = sorted(set(runs) - set(dataset.run_ids))
    if missing:
        raise ValueError(f"dlvf test: runs {missing} are not in {dataset.root}; available: {dataset.run_ids}")
    torch.set_num_threads(config.torch_threads)
    evaluator = RunEvaluator(dataset, backend, size, config)
    generator = torch.Generator().manual_seed(config.ransac.seed)
    runs = sorted(runs)
    jobs = [
        (vertex, map_run)
        for i, run in enumerate(runs)
        for map_run in runs[:i]
        for vertex in dataset.vertices(run)[:: config.frame_stride]
    ]
    frames = []
    for vertex, map_run in progress(jobs) if progress else jobs:
        result = evaluator.localize(vertex, map_run, generator)
        if result is not None:
            frames.append(result)
    if not frames:
        raise ValueError(
            f"dlvf test: no frame of runs {runs} has a vertex of an earlier run within {config.max_edges} edges"
        )
    return summarize(frames, evaluator.extract_ms), [asdict(f) for f in frames]
