"""Mutual-nearest-neighbour matching per metric, checked against known correspondences."""

import numpy as np
import pytest

from dlvf_ros.matching.descriptor_matching import MatchingConfig, match_descriptors, mutual_nearest


def _zncc_normalise(x):
    x = x - x.mean(1, keepdims=True)
    return x / x.std(1, keepdims=True)


def test_zncc_recovers_a_permutation_and_rejects_unrelated():
    rng = np.random.default_rng(0)
    a = _zncc_normalise(rng.normal(size=(200, 256)))
    perm = rng.permutation(200)
    b = _zncc_normalise(a[perm] + 0.3 * rng.normal(size=(200, 256)))
    matches = match_descriptors(a, b, "zncc")
    assert len(matches) == 200
    assert np.all(perm[matches.index_b] == matches.index_a)
    assert np.all((matches.quality > 0.75) & (matches.quality <= 1.0))
    unrelated = _zncc_normalise(rng.normal(size=(200, 256)))
    assert len(match_descriptors(a, unrelated, "zncc", MatchingConfig(zncc_min=0.5))) == 0


def test_cosine_on_unit_descriptors_threshold_and_quality():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(100, 64))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    perm = rng.permutation(100)
    b = a[perm] + 0.05 * rng.normal(size=(100, 64))
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    matches = match_descriptors(a, b, "cosine")
    assert len(matches) == 100 and np.all(perm[matches.index_b] == matches.index_a)
    cosine = np.sum(a[matches.index_a] * b[matches.index_b], axis=1)
    np.testing.assert_allclose(matches.quality, 0.5 * (1 + cosine), atol=1e-5)
    # the threshold applies to the cosine itself (no division by the descriptor length, unlike zncc)
    threshold = float(np.median(cosine))
    kept = match_descriptors(a, b, "cosine", MatchingConfig(cosine_min=threshold))
    assert set(kept.index_a) == set(matches.index_a[cosine >= threshold])
    with pytest.raises(ValueError, match="cosine_min"):
        MatchingConfig(cosine_min=1.5)


def test_hamming_distance_threshold_and_mutuality():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, size=(100, 32), dtype=np.uint8)
    b = a.copy()
    flips = rng.integers(0, 32, size=100)
    b[np.arange(100), flips] ^= 0b00000111  # 3 bits differ per descriptor
    matches = match_descriptors(a, b, "hamming", MatchingConfig(hamming_max=3))
    assert len(matches) == 100 and np.all(matches.index_a == matches.index_b)
    assert np.allclose(matches.quality, 1 - 3 / 256)
    assert len(match_descriptors(a, b, "hamming", MatchingConfig(hamming_max=2))) == 0
    # duplicated target: a[0] -> both b copies; mutual check keeps at most one pair per target
    dup = match_descriptors(a[:1], np.vstack([a[:1], a[:1]]), "hamming")
    assert len(dup) == 1


def test_l2_ratio_test_drops_ambiguous_matches():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(50, 128)).astype(np.float32)
    b = a + 0.01 * rng.normal(size=a.shape).astype(np.float32)
    ambiguous = np.vstack([b, a[:10] + 0.011 * rng.normal(size=(10, 128)).astype(np.float32)])
    matches = match_descriptors(a, ambiguous, "l2", MatchingConfig(lowe_ratio=0.8))
    assert set(matches.index_a) == set(range(10, 50))
    assert np.all(matches.index_a == matches.index_b)


def test_allowed_pairs_tell_apart_descriptors_that_alias():
    """Each descriptor of b appears twice in a: an exact decoy and a noisy true one. Unrestricted, the decoys win;
    restricted to the allowed pairs (e.g. near a predicted position), the true ones are matched, and a row with no
    allowed pair gets no match. The same holds for the binary metric."""
    rng = np.random.default_rng(5)
    b = _zncc_normalise(rng.normal(size=(50, 64)))
    a = np.vstack([b, _zncc_normalise(b + 0.3 * rng.normal(size=b.shape))])  # rows 0-49 decoys, 50-99 true
    assert np.all(match_descriptors(a, b, "zncc").index_a < 50)
    allowed = np.zeros((100, 50), bool)
    allowed[50:, :] = np.eye(50, dtype=bool)
    allowed[99, 49] = False
    matches = match_descriptors(a, b, "zncc", allowed=allowed)
    assert np.array_equal(matches.index_a, np.arange(50, 99)) and np.array_equal(matches.index_b, np.arange(49))
    binary = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    flipped = binary.copy()
    flipped[:, 0] ^= np.uint8(0b111)  # 3 bits off
    assert np.all(match_descriptors(np.vstack([binary, flipped]), binary, "hamming").index_a < 50)
    matches = match_descriptors(np.vstack([binary, flipped]), binary, "hamming", allowed=allowed)
    assert np.array_equal(matches.index_a, np.arange(50, 99))
    with pytest.raises(ValueError, match="allowed has shape"):
        match_descriptors(a, b, "zncc", allowed=allowed[:10])


def test_mutual_check_is_the_first_row_of_least_cost_in_each_column():
    """The column side of the mutual check equals numpy's argmin over the columns, ties (integer Hamming costs, rows
    of inf outside the allowed pairs) included: a column's first row of least cost is its only mutual partner."""
    rng = np.random.default_rng(7)
    for cost in (
        rng.normal(size=(120, 90)).astype(np.float32),
        rng.integers(0, 12, size=(120, 90)).astype(np.float32),
        np.where(rng.random((120, 90)) < 0.9, np.inf, rng.integers(0, 5, size=(120, 90))).astype(np.float32),
    ):
        best_b, mutual = mutual_nearest(cost)
        np.testing.assert_array_equal(best_b, np.argmin(cost, axis=1))
        np.testing.assert_array_equal(mutual, np.argmin(cost, axis=0)[best_b] == np.arange(len(cost)))


def test_matching_errors_and_empty_inputs():
    a = np.zeros((5, 8), np.float32)
    assert len(match_descriptors(a, np.zeros((0, 8), np.float32), "zncc")) == 0
    with pytest.raises(ValueError, match="do not agree"):
        match_descriptors(a, np.zeros((5, 9), np.float32), "zncc")
    with pytest.raises(ValueError, match="unknown metric"):
        match_descriptors(a, a, "manhattan")
    with pytest.raises(ValueError, match="uint8"):
        match_descriptors(a, a, "hamming")
    with pytest.raises(ValueError, match="zncc_min"):
        MatchingConfig(zncc_min=2.0)
