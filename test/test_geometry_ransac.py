"""Vectorised RANSAC: recovery with 60 % outliers, determinism, weighted sampling, failures."""

import numpy as np
import pytest
import torch

from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.ransac import RansacConfig, ransac_rigid

torch.set_num_threads(2)


def make_problem(n=300, outlier_ratio=0.6, noise_m=0.05, seed=0):
    rng = np.random.default_rng(seed)
    T_tgt_src = transforms.from_xyz_rpy(1.5, -0.4, 0.1, 0.02, -0.03, 0.3)
    src = np.column_stack([rng.uniform(-8, 8, n), rng.uniform(-2, 2, n), rng.uniform(2, 30, n)])
    tgt = transforms.transform_points(T_tgt_src, src) + rng.normal(scale=noise_m, size=(n, 3))
    outliers = rng.random(n) < outlier_ratio
    tgt[outliers] = np.column_stack([rng.uniform(-8, 8, n), rng.uniform(-2, 2, n), rng.uniform(2, 30, n)])[outliers]
    return T_tgt_src, src, tgt, outliers


def test_recovers_transform_with_60_percent_outliers():
    T_tgt_src, src, tgt, outliers = make_problem()
    config = RansacConfig(inlier_threshold_m=0.5, weighted_sampling=False, iterations=2048)
    result = ransac_rigid(src, tgt, config=config)
    assert result.success
    error = transforms.invert(T_tgt_src) @ result.T_tgt_src
    assert np.linalg.norm(error[:3, 3]) < 0.05 and transforms.rotation_angle(error[:3, :3]) < np.deg2rad(0.3)
    true_inliers = ~outliers
    assert result.num_inliers == int(result.inliers.sum())
    # nearly every true inlier found; random outliers that happen to fall within 0.5 m are rare
    assert (result.inliers & true_inliers).sum() >= 0.97 * true_inliers.sum()
    assert (result.inliers & outliers).sum() <= 0.02 * outliers.sum()


def test_same_seed_same_result_and_torch_inputs_accepted():
    _, src, tgt, _ = make_problem(seed=3)
    config = RansacConfig(inlier_threshold_m=0.5)
    a = ransac_rigid(src, tgt, config=config)
    b = ransac_rigid(torch.tensor(src), torch.tensor(tgt), config=config)
    assert np.array_equal(a.T_tgt_src, b.T_tgt_src) and np.array_equal(a.inliers, b.inliers)


def test_weighted_sampling_finds_the_model_when_uniform_sampling_cannot():
    # 85 % outliers: 16 uniform hypotheses almost never draw 6 inliers; the weights point at the inliers
    T_tgt_src, src, tgt, outliers = make_problem(n=400, outlier_ratio=0.85, seed=5)
    weights = np.where(outliers, 0.05, 1.0)
    base = {"inlier_threshold_m": 0.5, "iterations": 16, "hypotheses_per_round": 16}
    uniform = ransac_rigid(src, tgt, weights, RansacConfig(weighted_sampling=False, **base))
    weighted = ransac_rigid(src, tgt, weights, RansacConfig(weighted_sampling=True, **base))
    assert weighted.success and weighted.num_inliers >= 0.95 * (~outliers).sum()
    assert uniform.num_inliers < 0.5 * weighted.num_inliers
    error = transforms.invert(T_tgt_src) @ weighted.T_tgt_src
    assert np.linalg.norm(error[:3, 3]) < 0.05


def test_early_stop_on_clean_data():
    T_tgt_src, src, tgt, _ = make_problem(outlier_ratio=0.0)
    result = ransac_rigid(src, tgt, config=RansacConfig(inlier_threshold_m=0.5))
    assert result.success and result.hypotheses == RansacConfig().hypotheses_per_round
    assert result.num_inliers == len(src)


def test_too_few_usable_matches_fail_without_exception():
    _, src, tgt, _ = make_problem(n=20, outlier_ratio=0.0)
    weights = np.zeros(20)
    weights[:4] = 1.0
    result = ransac_rigid(src, tgt, weights)
    assert not result.success and result.num_inliers == 0 and np.array_equal(result.T_tgt_src, np.eye(4))
    src[5:] = np.nan  # non-finite points are unusable too
    assert not ransac_rigid(src, tgt).success


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="points_src"):
        ransac_rigid(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="weights"):
        ransac_rigid(np.zeros((5, 3)), np.zeros((5, 3)), -np.ones(5))
    with pytest.raises(ValueError, match="sample_size"):
        RansacConfig(sample_size=2)


def test_adaptive_stop_draws_only_the_hypotheses_the_confidence_needs():
    from dlvf_ros.geometry.ransac import _hypotheses_needed

    # one all-inlier 3-point sample at inlier ratio 0.5 with 99 %: log(0.01) / log(1 - 0.125) = 34.5 draws
    assert _hypotheses_needed(0.5, 3, 0.99) == pytest.approx(np.log(0.01) / np.log(0.875))
    assert _hypotheses_needed(0.5, 3, 1.0) == np.inf and _hypotheses_needed(0.0, 3, 0.99) == np.inf
    T_tgt_src, src, tgt, outliers = make_problem(outlier_ratio=0.45, seed=4)  # below the 60 % early stop
    base = {"inlier_threshold_m": 0.5, "weighted_sampling": False}
    exhaustive = ransac_rigid(src, tgt, config=RansacConfig(**base))
    adaptive = ransac_rigid(src, tgt, config=RansacConfig(confidence=0.999, **base))
    # 55 % inliers, 6-point samples: 0.55^6 = 2.8 %, 0.999 needs 245 draws: two rounds of 128 instead of four
    assert exhaustive.hypotheses == 512 and adaptive.hypotheses == 256
    for result in (exhaustive, adaptive):
        error = transforms.invert(T_tgt_src) @ result.T_tgt_src
        assert np.linalg.norm(error[:3, 3]) < 0.05 and (result.inliers & outliers).sum() <= 0.02 * outliers.sum()
    with pytest.raises(ValueError, match="confidence"):
        RansacConfig(confidence=0.0)


def test_zero_weight_matches_are_never_sampled():
    T_tgt_src, src, tgt, outliers = make_problem(n=200, outlier_ratio=0.5, seed=6)
    weights = np.where(outliers, 0.0, 1.0)  # only the inliers may be drawn: every hypothesis is right
    result = ransac_rigid(src, tgt, weights, RansacConfig(inlier_threshold_m=0.5, iterations=8, hypotheses_per_round=8))
    assert result.success and result.num_inliers == (~outliers).sum() and not (result.inliers & outliers).any()
