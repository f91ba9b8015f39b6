"""Stereo: SGBM on a real Middlebury pair with ground truth, disparity sampling, pixel -> 3-D -> pixel."""

import numpy as np
import pytest
import skimage.data

from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.geometry.stereo_matching import (
    SgbmConfig,
    disparity_sgbm,
    half_resolution,
    sample_disparity,
    zncc_disparity,
)


def test_sgbm_on_real_stereo_pair_matches_ground_truth():
    # Middlebury 2014 motorcycle (741 x 500): ground-truth disparity 7 to 60 px, inf where unknown
    left, right, truth = skimage.data.stereo_motorcycle()
    disparity = disparity_sgbm(left, right, SgbmConfig(num_disparities=64))  # reference parameters, wider range
    assert disparity.dtype == np.float32 and disparity.shape == truth.shape
    both = np.isfinite(disparity) & np.isfinite(truth)
    error = np.abs(disparity - truth)[both]
    assert both.mean() > 0.6  # measured 0.79
    assert np.median(error) < 0.5  # measured 0.20 px
    assert np.mean(error > 2.0) < 0.10  # measured 0.054


def test_sgbm_reference_defaults_and_invalid_pixels_are_nan():
    config = SgbmConfig()
    assert (config.num_disparities, config.block_size, config.p1, config.p2) == (48, 5, 200, 800)
    assert (config.uniqueness_ratio, config.speckle_window_size, config.speckle_range, config.pre_filter_cap) == (
        20,
        200,
        1,
        30,
    )
    rng = np.random.default_rng(0)
    texture = (rng.random((64, 160)) * 255).astype(np.uint8)
    texture = np.repeat(np.repeat(texture, 2, axis=0), 2, axis=1)[:96, :224]  # 2-px blobs, 96 x 224
    shift = 12
    left = np.repeat(texture[:, :, None], 3, axis=2)
    right = np.roll(left, -shift, axis=1)  # right pixel at u - 12 sees what left sees at u
    disparity = disparity_sgbm(left, right)
    assert np.isnan(disparity[:, : config.num_disparities]).all()  # no full search range at the left border
    core = disparity[8:-8, 64:-20]
    assert np.nanmedian(np.abs(core - shift)) < 0.25 and np.isfinite(core).mean() > 0.9


def test_sgbm_refuses_bad_images():
    with pytest.raises(ValueError, match="uint8"):
        disparity_sgbm(np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="differ in size"):
        disparity_sgbm(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 12, 3), np.uint8))
    with pytest.raises(ValueError, match="multiple of 16"):
        SgbmConfig(num_disparities=40)


def test_sample_disparity_bilinear_nearest_and_holes():
    disparity = np.arange(20, dtype=np.float32).reshape(4, 5)  # d = 5 v + u
    disparity[3, 4] = np.nan
    uv = np.array([[1.0, 1.0], [1.5, 2.25], [3.5, 2.5], [4.0, 2.0], [-0.1, 0.0], [2.0, 3.0], [4.0, 0.0]])
    bilinear = sample_disparity(disparity, uv)
    assert bilinear.dtype == np.float32
    assert np.allclose(bilinear[[0, 1, 3, 5, 6]], [6.0, 12.75, 14.0, 17.0, 4.0])
    assert np.isnan(bilinear[2])  # touches the NaN pixel
    assert np.isnan(bilinear[4])  # outside the image
    nearest = sample_disparity(disparity, np.array([[1.4, 2.6], [3.6, 2.6]]), mode="nearest")
    assert nearest[0] == 16.0 and np.isnan(nearest[1])
    with pytest.raises(ValueError, match="mode"):
        sample_disparity(disparity, uv, mode="cubic")


def test_pixel_to_point_to_pixel_round_trip_with_sampled_disparity():
    rig = StereoRig()
    rng = np.random.default_rng(0)
    uv = np.column_stack([rng.uniform(0, rig.width - 1, 50), rng.uniform(0, rig.height - 1, 50)])
    true_disparity = rng.uniform(1.0, 40.0, 50)
    # a smooth (planar) disparity map is reproduced exactly by bilinear sampling at sub-pixel points
    v, u = np.mgrid[0 : rig.height, 0 : rig.width]
    plane = (5.0 + 0.03 * u + 0.05 * v).astype(np.float32)
    sampled = sample_disparity(plane, uv)
    assert np.allclose(sampled, 5.0 + 0.03 * uv[:, 0] + 0.05 * uv[:, 1], atol=1e-4)
    for disparity in (true_disparity, sampled.astype(np.float64)):
        points, valid = rig.points_from_disparity(uv, disparity)
        assert valid.all()
        uv_back, disparity_back = rig.project(points)
        assert np.allclose(uv_back, uv, atol=1e-9) and np.allclose(disparity_back, disparity, atol=1e-9)


def waves(x, y, seed=0, count=60):
    """A smooth aperiodic texture (sum of random plane waves, zero mean, ~unit std) at any real (x, y)."""
    rng = np.random.default_rng(seed)
    out = np.zeros(np.broadcast(x, y).shape)
    for _ in range(count):
        frequency, angle, phase = rng.uniform(0.05, 0.9), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        out += np.sin(frequency * (np.cos(angle) * x + np.sin(angle) * y) + phase) / np.sqrt(count)
    return out


def grey(values):
    return np.clip(128 + 50 * values, 0, 255).astype(np.float32)


def planar_pair(height=192, width=256, seed=0):
    """Left/right float32 grey images of a textured plane with disparity d(u, v) = 20 + 0.03 u + 0.05 v (left
    pixels), rendered exactly (no resampling): the right pixel u_r sees the left point u with u - d(u, v) = u_r."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    left = grey(waves(u, v, seed))
    right = grey(waves((u + 20.0 + 0.05 * v) / (1 - 0.03), v, seed))
    return left, right, lambda uv: 20.0 + 0.03 * uv[:, 0] + 0.05 * uv[:, 1]


def test_zncc_disparity_finds_a_sub_pixel_disparity_plane():
    left, right, truth = planar_pair()
    rng = np.random.default_rng(1)
    uv = np.column_stack([rng.uniform(40, 250, 300), rng.uniform(5, 186, 300)])  # sub-pixel points
    disparity = zncc_disparity(left, right, uv, 0, 63, left_right_check=True)
    assert disparity.dtype == np.float32 and disparity.shape == (300,)
    error = np.abs(disparity - truth(uv))
    assert np.isfinite(disparity).mean() > 0.95  # measured 1.0
    assert np.nanmedian(error) < 0.1 and np.nanpercentile(error, 90) < 0.2  # measured 0.056, 0.13 px
    # a per-point window around the truth finds the same values
    centre = np.rint(truth(uv)).astype(int)
    windowed = zncc_disparity(left, right, uv, centre - 2, centre + 2)
    np.testing.assert_allclose(windowed, disparity, atol=1e-4)


def test_zncc_disparity_nan_policy():
    height, width = 96, 192
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    left, right = grey(waves(u, v)), grey(waves(u + 10.0, v))  # fronto-parallel, d = 10 px
    rng = np.random.default_rng(3)
    inside = np.column_stack([rng.uniform(20, 180, 100), rng.uniform(6, 89, 100)])
    assert np.isfinite(zncc_disparity(left, right, inside, 0, 47)).all()
    # outside the image, too near its border for the patch, non-finite: NaN
    odd = np.array([[-3.0, 40.0], [50.0, 1.0], [50.0, 95.5], [np.nan, 40.0], [50.0, np.inf], [300.0, 40.0]])
    assert np.isnan(zncc_disparity(left, right, odd, 0, 47)).all()
    # the match lies left of the right image's border (u < d): no match
    border = np.column_stack([rng.uniform(0, 9, 50), rng.uniform(6, 89, 50)])
    assert np.isnan(zncc_disparity(left, right, border, 0, 47, left_right_check=True)).all()
    # the true disparity outside the search range: mostly no match (the best is the range's end, not a peak);
    # what remains are secondary ZNCC peaks of the texture, which a caller's range must avoid
    assert np.isnan(zncc_disparity(left, right, inside, 0, 8)).mean() > 0.85  # measured 0.94-0.98 (4 seeds)
    # a flat patch, and a texture repeating every 8 px (no unique match)
    flat = np.full((height, width), 90, np.float32)
    assert np.isnan(zncc_disparity(flat, flat, inside, 0, 47)).all()
    stripes = grey(np.sin(2 * np.pi * u / 8.0))
    assert np.isnan(zncc_disparity(stripes, np.roll(stripes, -10, axis=1), inside, 0, 47)).all()
    with pytest.raises(ValueError, match="float32"):
        zncc_disparity(left.astype(np.uint8), right.astype(np.uint8), inside, 0, 47)
    with pytest.raises(ValueError, match="d_max"):
        zncc_disparity(left, right, inside, 10, 5)
    assert zncc_disparity(left, right, np.zeros((0, 2)), 0, 47).shape == (0,)


def test_zncc_left_right_check_rejects_occluded_points():
    # background at d = 10; a box (left columns 100-139) at d = 30 hides the background right of it in the right
    # image: left background columns 80-99 have no match there
    height, width = 96, 192
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    rows = (v >= 20) & (v < 76)
    left = np.where(rows & (u >= 100) & (u < 140), grey(waves(u, v, seed=7)), grey(waves(u, v)))
    right = np.where(rows & (u >= 70) & (u < 110), grey(waves(u + 30, v, seed=7)), grey(waves(u + 10, v)))
    rng = np.random.default_rng(3)
    occluded = np.column_stack([rng.uniform(82, 98, 200), rng.uniform(26, 70, 200)])
    unchecked = zncc_disparity(left, right, occluded, 0, 47)
    checked = zncc_disparity(left, right, occluded, 0, 47, left_right_check=True)
    assert np.isfinite(unchecked).mean() > 0.3  # measured 0.54: ZNCC alone matches them to something
    assert np.isfinite(checked).mean() < 0.05  # measured 0.01
    box = np.column_stack([rng.uniform(106, 134, 100), rng.uniform(26, 70, 100)])
    background = np.column_stack([rng.uniform(20, 60, 100), rng.uniform(6, 89, 100)])
    for points, true_disparity in ((box, 30.0), (background, 10.0)):
        disparity = zncc_disparity(left, right, points, 0, 47, left_right_check=True)
        assert np.isfinite(disparity).all() and np.abs(disparity - true_disparity).max() < 0.3  # measured 0.21


def test_half_resolution_maps_pixel_centres():
    v, u = np.mgrid[0:33, 0:65]  # odd sizes: the last row and column are dropped
    image = (u + 2 * v).astype(np.uint8)
    half = half_resolution(image)
    assert half.shape == (16, 32)
    # half-resolution pixel (i, j) is the full-resolution point (2 i + 0.5, 2 j + 0.5): u = 2 i + 0.5
    jj, ii = np.mgrid[0:16, 0:32]
    np.testing.assert_allclose(half, (2 * ii + 0.5) + 2 * (2 * jj + 0.5), atol=0.5)  # uint8 rounding
