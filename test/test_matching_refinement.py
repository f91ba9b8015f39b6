"""Match refinement (`dlvf_ros.matching.refinement`): the search grid, sub-pixel recovery of a shifted point on a
synthetic descriptor field, and the cases that leave points as they are."""

import numpy as np

from dlvf_ros.matching.refinement import refine_points, search_offsets

CENTRES = np.random.default_rng(0).uniform(0, 64, size=(256, 2))


class BlobField:
    """Descriptors of a point: Gaussian bumps (sigma 1.5 px) around fixed centres, ZNCC-normalised, sampled at
    `pixel_scale` image pixels per descriptor pixel."""

    def __init__(self, pixel_scale: float = 1.0) -> None:
        self.pixel_scale = pixel_scale

    def __call__(self, points_px: np.ndarray) -> np.ndarray:
        d2 = np.sum((np.asarray(points_px)[:, None, :] - CENTRES[None]) ** 2, axis=2)
        raw = np.exp(-d2 / (2 * 1.5**2))
        raw = raw - raw.mean(axis=1, keepdims=True)
        return (raw / raw.std(axis=1, keepdims=True)).astype(np.float32)


def test_search_offsets_cover_the_square_row_major():
    offsets = search_offsets(1)
    assert offsets.tolist() == [[-1, -1], [0, -1], [1, -1], [-1, 0], [0, 0], [1, 0], [-1, 1], [0, 1], [1, 1]]
    assert len(search_offsets(4)) == 81


def test_a_shifted_point_moves_back_to_its_descriptor():
    field = BlobField()
    truth = np.array([[20.3, 30.6], [40.0, 25.2], [31.7, 44.1]])
    start = truth + np.array([[2.0, -1.0], [-3.0, 0.0], [1.0, 3.0]])
    refined = refine_points(field, start, field(truth), radius=4, temperature=0.002)
    assert np.abs(start - truth).max() >= 3.0
    assert np.linalg.norm(refined - truth, axis=1).max() < 0.6  # integer grid, softmax mean: sub-pixel


def test_the_radius_is_in_descriptor_pixels():
    field = BlobField(pixel_scale=2.0)  # a grid step is 2 image pixels: +-4 steps reach 8 px
    truth = np.array([[30.0, 30.0]])
    refined = refine_points(field, truth + [[6.0, 0.0]], field(truth), radius=4, temperature=0.002)
    assert np.linalg.norm(refined - truth) < 1.2


def test_radius_zero_and_no_points_leave_points_as_they_are():
    field = BlobField()
    start = np.array([[10.0, 12.0]])
    assert np.array_equal(refine_points(field, start, field(start + 3.0), radius=0, temperature=0.02), start)
    assert refine_points(field, np.zeros((0, 2)), np.zeros((0, 256), np.float32), 4, 0.02).shape == (0, 2)
