"""Vectorised mutual-nearest-neighbour descriptor matching for localization.

Metrics: "zncc" (learned descriptors, zero mean and unit std over channels, so dot / C is a ZNCC in [-1, 1]; a pair
must reach `zncc_min`), "cosine" (unit-length descriptors such as XFeat's, so dot is the cosine similarity; a pair
must reach `cosine_min`), "hamming" (ORB bytes; distance at most `hamming_max` bits), "l2" (SIFT; Lowe's ratio
`lowe_ratio` between the best and second-best distance, checked both ways). Each match carries a quality in [0, 1]
(higher is better) used to weight RANSAC sampling and the pose refinement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlvf_ros.config import check_settings, setting


@dataclass
class MatchingConfig:
    """Thresholds per metric."""

    zncc_min: float = setting(0.5, "learned features: lowest ZNCC of a descriptor match", (-1.0, 1.0))
    cosine_min: float = setting(0.5, "XFeat: lowest cosine similarity of a descriptor match", (-1.0, 1.0))
    hamming_max: int = setting(64, "ORB: largest Hamming distance (bits) of a descriptor match", (0, 256))
    lowe_ratio: float = setting(0.8, "SIFT: Lowe ratio test threshold", (0.01, 1.0))
    # off: on 2 cores it costs the tracking localizer 3-7x ORB's frame time (models/training/stage14/RULE.md)
    refine_radius: int = setting(
        0,
        "learned features: each match's current keypoint moves to where the keyframe's descriptor correlates best "
        "within +- this many network pixels (sub-pixel); 0: off (dlvf_ros.matching.refinement)",
        (0, 16),
    )
    refine_temperature: float = setting(
        0.02, "learned features: softmax temperature (ZNCC units) of the match refinement's weighted mean", (1e-4, 10.0)
    )

    def __post_init__(self) -> None:
        check_settings(self)

    @property
    def refines(self) -> bool:
        """Whether match refinement is on (`refine_radius` > 0)."""
        return self.refine_radius > 0


@dataclass(frozen=True)
class DescriptorMatches:
    """Matches between sets a and b: `index_a`, `index_b` (M,) int64 and `quality` (M,) float32 in [0, 1]."""

    index_a: np.ndarray
    index_b: np.ndarray
    quality: np.ndarray

    def __len__(self) -> int:
        return len(self.index_a)


def _dot_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) @ b.astype(np.float32).T


def _hamming_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Na, Nb) bit distances of uint8 descriptors via one matrix product: |a| + |b| - 2 a.b on unpacked bits."""
    bits_a = np.unpackbits(a, axis=1).astype(np.float32)
    bits_b = np.unpackbits(b, axis=1).astype(np.float32)
    return bits_a.sum(1)[:, None] + bits_b.sum(1)[None, :] - 2.0 * (bits_a @ bits_b.T)


def _l2_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    b = b.astype(np.float32)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(squared, 0.0))


def _ratio_ok(distance: np.ndarray, axis: int, ratio: float) -> np.ndarray:
    """Per row (axis=1) or column (axis=0): best distance < ratio * second best (True when only one candidate)."""
    if distance.shape[axis] < 2:
        return np.ones(distance.shape[1 - axis], dtype=bool)
    two = np.partition(distance, 1, axis=axis).take([0, 1], axis=axis)
    best, second = (two[:, 0], two[:, 1]) if axis == 1 else (two[0], two[1])
    return best < ratio * second


def mutual_nearest(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(best_b (Na,): each row's first column of least cost, mutual (Na,): whether the row is also its best column's
    first row of least cost), the same as `cost.argmin(axis=0)[best_b] == rows`. numpy's argmin over axis 0 walks
    the columns with a stride (~2 ms for 1100 x 950, a third of a learned frame's matching); the column minima come
    from a vectorised min instead, and only columns where rows tie (Hamming distances, guided matching's inf) look
    for the first of them."""
    rows = np.arange(len(cost))
    best_b = np.argmin(cost, axis=1)
    at_column_min = cost == cost.min(axis=0)
    mutual = at_column_min[rows, best_b]
    tied = np.flatnonzero(at_column_min.sum(axis=0) > 1)
    if len(tied):
        first_row = np.full(cost.shape[1], -1)
        first_row[tied] = np.argmax(at_column_min[:, tied], axis=0)
        mutual &= (first_row[best_b] < 0) | (first_row[best_b] == rows)
    return best_b, mutual


def match_descriptors(
    descriptors_a: np.ndarray,
    descriptors_b: np.ndarray,
    metric: str,
    config: MatchingConfig | None = None,
    allowed: np.ndarray | None = None,
) -> DescriptorMatches:
    """Mutual nearest neighbours between (Na, C) and (Nb, C) descriptors under `metric`, thresholded per metric;
    with `allowed` ((Na, Nb) bool), only among the allowed pairs (e.g. near a predicted position)."""
    config = config or MatchingConfig()
    if descriptors_a.ndim != 2 or descriptors_b.ndim != 2 or descriptors_a.shape[1] != descriptors_b.shape[1]:
        raise ValueError(
            f"match_descriptors: descriptor shapes {descriptors_a.shape} and {descriptors_b.shape} do not agree; "
            "both must be (N, C) with the same C (same feature backend)"
        )
    empty = DescriptorMatches(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    if len(descriptors_a) == 0 or len(descriptors_b) == 0:
        return empty
    if metric == "zncc":
        cost = -_dot_similarity(descriptors_a, descriptors_b) / np.float32(descriptors_a.shape[1])
    elif metric == "cosine":
        cost = -_dot_similarity(descriptors_a, descriptors_b)
    elif metric == "hamming":
        if descriptors_a.dtype != np.uint8 or descriptors_b.dtype != np.uint8:
            raise ValueError("match_descriptors: the hamming metric needs uint8 (packed binary) descriptors")
        cost = _hamming_distance(descriptors_a, descriptors_b)
    elif metric == "l2":
        cost = _l2_distance(descriptors_a, descriptors_b)
    else:
        raise ValueError(f"match_descriptors: unknown metric {metric!r}; expected 'zncc', 'cosine', 'hamming' or 'l2'")

    if allowed is not None:
        if allowed.shape != cost.shape:
            raise ValueError(f"match_descriptors: allowed has shape {allowed.shape}, expected {cost.shape}")
        cost = np.where(allowed, cost.astype(np.float32), np.float32(np.inf))
    index_a = np.arange(len(descriptors_a))
    best_b, mutual = mutual_nearest(cost)
    best_cost = cost[index_a, best_b]
    mutual &= np.isfinite(best_cost)  # a row with no allowed pair has none
    if metric in ("zncc", "cosine"):
        keep = mutual & (-best_cost >= (config.zncc_min if metric == "zncc" else config.cosine_min))
        quality = 0.5 * (1.0 - best_cost)
    elif metric == "hamming":
        keep = mutual & (best_cost <= config.hamming_max)
        quality = 1.0 - best_cost / (8.0 * descriptors_a.shape[1])
    else:
        keep = mutual & _ratio_ok(cost, 1, config.lowe_ratio) & _ratio_ok(cost, 0, config.lowe_ratio)[best_b]
        second = np.partition(cost, 1, axis=1)[:, 1] if cost.shape[1] > 1 else np.full(len(cost), np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            quality = np.where(second > 0, 1.0 - best_cost / second, 1.0)
    if not keep.any():
        return empty
    return DescriptorMatches(
        index_a[keep].astype(np.int64),
        best_b[keep].astype(np.int64),
        np.clip(quality[keep], 0.0, 1.0).astype(np.float32),
    )
