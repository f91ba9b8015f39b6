"""Stereo: SGBM on a real Middlebury pair with ground truth, disparity sampling, pixel -> 3-D -> pixel."""

import numpy as np
import pytest
import skimage.data

from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.geometry.stereo_matching import SgbmConfig, disparity_sgbm, sample_disparity


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
