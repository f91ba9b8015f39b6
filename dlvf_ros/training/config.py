"""Typed configs of the three training stages: `dlvf dataset`, `dlvf train`, `dlvf test`.

Defaults are the reference method's values (Gridseth and Barfoot, RA-L 2022) unless noted; YAML copies live in config/.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from dlvf_ros.evaluation.metrics import SUCCESS, SuccessCriteria
from dlvf_ros.geometry.ransac import RansacConfig
from dlvf_ros.geometry.stereo_matching import SgbmConfig
from dlvf_ros.localization.frontend import StereoConfig
from dlvf_ros.localization.localizer import LocalizerConfig, localizer_ransac
from dlvf_ros.localization.refine import RefineConfig
from dlvf_ros.matching.descriptor_matching import MatchingConfig
from dlvf_ros.training.augment import AugmentConfig


def _check_positive(config: object, *names: str) -> None:
    """Refuse `config` unless each of its fields `names` is > 0."""
    for name in names:
        if not getattr(config, name) > 0:
            raise ValueError(f"{type(config).__name__}.{name} must be > 0, got {getattr(config, name)}")


def _check_non_negative(config: object, *names: str) -> None:
    """Refuse `config` unless each of its fields `names` is >= 0."""
    for name in names:
        if not getattr(config, name) >= 0:
            raise ValueError(f"{type(config).__name__}.{name} must be >= 0, got {getattr(config, name)}")


def _check_image_size(owner: str, width: int, height: int) -> None:
    if width <= 0 or height <= 0 or width % 16 or height % 16:
        raise ValueError(
            f"{owner}: image_width and image_height must be positive multiples of 16 (the keypoint cell), got "
            f"{width}x{height}; e.g. 320x240 or 512x384"
        )


# --- dataset -----------------------------------------------------------------------------------------------------
@dataclass
class SplitConfig:
    """Run-disjoint splits. `by: run` lists run ids (the same ids in every dataset root); `by: world` lists root
    indices (0-based, in --data order), so whole synthetic worlds are held out. All three lists empty: automatic,
    a seeded shuffle of the runs (or roots) cut by `fractions` (train, validation, test)."""

    by: Literal["run", "world"] = "run"
    train: list[int] = field(default_factory=list)
    validation: list[int] = field(default_factory=list)
    test: list[int] = field(default_factory=list)
    fractions: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])

    def __post_init__(self) -> None:
        if len(self.fractions) != 3 or any(f < 0 for f in self.fractions) or sum(self.fractions) <= 0:
            raise ValueError(
                "SplitConfig.fractions: expected 3 non-negative numbers (train, validation, test), "
                f"got {self.fractions}"
            )
        explicit = [set(self.train), set(self.validation), set(self.test)]
        if any(explicit) and not explicit[0]:
            raise ValueError("SplitConfig: explicit splits need a train list (validation and test may be empty)")
        overlap = (explicit[0] & explicit[1]) | (explicit[0] & explicit[2]) | (explicit[1] & explicit[2])
        if overlap:
            raise ValueError(f"SplitConfig: splits must be disjoint; {sorted(overlap)} appear in more than one")

    @property
    def automatic(self) -> bool:
        return not (self.train or self.validation or self.test)


@dataclass
class DatasetConfig:
    """Cross-run training pairs: a random vertex and a neighbour within `max_edges` pose-graph edges in another run
    of the same split; images resized to image_width x image_height (the training resolution; disparity is cached
    at this size)."""

    seed: int = 0
    max_edges: int = 4
    train_pairs: int = 100_000
    validation_pairs: int = 20_000
    test_pairs: int = 20_000
    image_width: int = 320  # CPU-friendly; the reference trains at 512 x 384
    image_height: int = 240
    anchor_run: int | None = None  # every pair's target in this run (the teach run); None: any two runs
    split: SplitConfig = field(default_factory=SplitConfig)
    sgbm: SgbmConfig = field(default_factory=SgbmConfig)

    def __post_init__(self) -> None:
        _check_positive(self, "max_edges")
        _check_non_negative(self, "train_pairs", "validation_pairs", "test_pairs")
        _check_image_size("DatasetConfig", self.image_width, self.image_height)


# --- training ----------------------------------------------------------------------------------------------------
@dataclass
class SoftMatchConfig:
    """Soft matching: "dense" (every target pixel) or "sparse" (target keypoints); softmax temperature."""

    mode: Literal["dense", "sparse"] = "dense"
    temperature: float = 0.01
    chunk_size: int = 128  # source keypoints per dense chunk (memory ~ chunk_size x H x W floats per pair)

    def __post_init__(self) -> None:
        _check_positive(self, "temperature", "chunk_size")


@dataclass
class PipelineConfig:
    """The differentiable pose pipeline: matching, ground-truth outlier rejection, inlier requirement."""

    matching: SoftMatchConfig = field(default_factory=SoftMatchConfig)
    outlier_threshold_m: float = 3.0  # planar error against the GT-transformed source point
    min_inliers: int = 6  # per batch element; fewer and the element is skipped (counted)

    def __post_init__(self) -> None:
        _check_positive(self, "outlier_threshold_m")
        if self.min_inliers < 3:
            raise ValueError(f"PipelineConfig.min_inliers must be >= 3 (a rigid transform), got {self.min_inliers}")


@dataclass
class LossConfig:
    """Pose loss on log(T_est T_gt^-1): planar (x, y, heading) or full 6-DOF; plus the planar keypoint loss; plus
    (ours, off in the reference: weight 0) an InfoNCE descriptor loss on ground-truth correspondences, a keypoint
    repeatability loss and a score (match reliability) loss; `pose_scale` balances the pose loss against them."""

    pose: Literal["planar", "full"] = "planar"
    planar_weights: list[float] = field(default_factory=lambda: [1.0, 50.0, 10.0])  # x, y, heading
    full_weights: list[float] = field(default_factory=lambda: [1.0, 50.0, 50.0, 10.0, 10.0, 10.0])  # rho, phi (ours)
    keypoint_weight: float = 2.5
    pose_from_epoch: int = 4  # epochs are numbered from 0; before this only the keypoint loss trains
    descriptor_weight: float = 0.0
    descriptor_temperature: float = 0.05  # on ZNCC in [-1, 1]
    descriptor_exclusion_px: float = 8.0  # target keypoints this close to the true pixel are not negatives
    pose_scale: float = 1.0  # (ours) multiplies the whole pose loss; 1 = the reference
    repeatability_weight: float = 0.0  # (ours) keypoints of both views on the same scene point, px^2
    repeatability_max_px: float = 4.0  # projected keypoints farther than this from any keypoint are not pulled
    score_weight: float = 0.0  # (ours) scores predict whether a keypoint's nearest-neighbour match is right

    def __post_init__(self) -> None:
        if len(self.planar_weights) != 3 or len(self.full_weights) != 6:
            raise ValueError("LossConfig: planar_weights needs 3 numbers (x, y, heading), full_weights 6 (rho, phi)")
        extra_weights = [self.keypoint_weight, self.descriptor_weight, self.pose_scale, self.repeatability_weight]
        if min(self.planar_weights + self.full_weights + extra_weights + [self.score_weight]) < 0:
            raise ValueError("LossConfig: loss weights must be >= 0")
        _check_positive(self, "descriptor_temperature", "repeatability_max_px")
        _check_non_negative(self, "descriptor_exclusion_px")


@dataclass
class TrainConfig:
    """Training: Adam, gradient clipping, samples drawn per epoch, early stopping, DDP under torchrun."""

    seed: int = 0
    model: dict = field(default_factory=dict)  # FeatureNet options (m, cell, temperature); {} = its defaults
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # (ours) photometric; off in the reference
    epochs: int = 200  # at most; early stopping usually ends training first
    batch_size: int = 3  # per process
    learning_rate: float = 1e-4
    grad_clip_norm: float = 2.0
    train_samples_per_epoch: int = 10_000  # drawn at random from the training pairs each epoch (all processes)
    validation_samples_per_epoch: int = 2_500  # the same fixed validation subset every epoch
    early_stopping_patience: int = 50  # epochs without a better validation loss
    num_workers: int = 0  # DataLoader worker processes per training process
    torch_threads: int = 2  # intra-op threads per process
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self) -> None:
        _check_positive(
            self,
            "epochs",
            "batch_size",
            "learning_rate",
            "grad_clip_norm",
            "train_samples_per_epoch",
            "validation_samples_per_epoch",
            "early_stopping_patience",
            "torch_threads",
        )
        _check_non_negative(self, "num_workers")


# --- test ----------------------------------------------------------------------------------------------------------
@dataclass
class PerFrameConfig:
    """`dlvf test`, the per-frame mode: which frames, at which image size, localized with which settings, scored how.

    Each later run of `runs` is localized against each earlier one (or, with `map_run`, every other run against that
    one: the teach run), every `frame_stride`-th vertex, against the
    metrically closest vertex of the earlier run within `max_edges` pose-graph edges, by the localizer's own matching,
    RANSAC and refinement: `matching`, `ransac`, `refine` and `min_matches` are `LocalizerConfig`'s settings of the
    same names and defaults; `sgbm` is for images `sgbm_width` px wide (the reference's 48 disparities at 320 x 240):
    at another test width its disparity range scales with the width (`sgbm_for_width`), so that every backend gets
    depth down to the same distance whatever size it is tested at (XFeat, ORB and SIFT at the camera's size).
    `success` is the success criteria; strict success is always `evaluation.metrics.STRICT`.
    """

    runs: list[int] = field(default_factory=list)  # run ids to test; [] = the dataset's test split or all runs
    map_run: int | None = None  # localize every other run against this one only (e.g. the teach run); None: all pairs
    frame_stride: int = 1  # use every n-th vertex of a run
    max_edges: int = 8  # search radius (pose-graph edges) for the metrically closest vertex of the earlier run
    image_width: int | None = None  # network input size; None = the checkpoint's training size, else native
    image_height: int | None = None
    success: SuccessCriteria = field(default_factory=lambda: SUCCESS)
    sgbm: SgbmConfig = field(default_factory=SgbmConfig)
    sgbm_width: int | None = 320  # px: the image width `sgbm` is for; None: `sgbm` as given at any width
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    ransac: RansacConfig = field(default_factory=localizer_ransac)  # its seed seeds every frame's sampling
    refine: RefineConfig = field(default_factory=RefineConfig)
    min_matches: int = 12
    torch_threads: int = 2

    def __post_init__(self) -> None:
        _check_positive(self, "frame_stride", "max_edges", "torch_threads")
        if self.sgbm_width is not None:
            _check_positive(self, "sgbm_width")
        if (self.image_width is None) != (self.image_height is None):
            raise ValueError("PerFrameConfig: set both image_width and image_height, or neither")
        if self.image_width is not None and self.image_height is not None:
            _check_image_size("PerFrameConfig", self.image_width, self.image_height)
        self.localizer_config()  # refuses min_matches below ransac.min_inliers

    def sgbm_for_width(self, image_width: int) -> SgbmConfig:
        """`sgbm` for a test image `image_width` px wide: the disparity range (and the minimum disparity) scaled
        from `sgbm_width`, the range rounded up to a multiple of 16 (by default 48 at 320 px, 80 at 512 px)."""
        if self.sgbm_width is None:
            return self.sgbm
        scale = image_width / self.sgbm_width
        return replace(
            self.sgbm,
            min_disparity=round(self.sgbm.min_disparity * scale),
            num_disparities=16 * math.ceil(self.sgbm.num_disparities * scale / 16),
        )

    def localizer_config(self, image_width: int | None = None) -> LocalizerConfig:
        """The `LocalizerConfig` of the per-frame mode on images `image_width` px wide (None: `sgbm` as given): dense
        SGBM stereo at the test size, like the training disparities (the fields it does not use keep their defaults).
        """
        sgbm = self.sgbm if image_width is None else self.sgbm_for_width(image_width)
        return LocalizerConfig(
            stereo=StereoConfig(method="sgbm", sgbm=sgbm),
            matching=self.matching,
            ransac=self.ransac,
            refine=self.refine,
            min_matches=self.min_matches,
        )
