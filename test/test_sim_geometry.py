"""Rendered depth and stereo geometry are exact: pixel centres, back-projection onto the terrain (in several styles:
crowned trails, a cutting, cameras with motion blur and defocus), left/right."""

import dataclasses

import numpy as np
import pytest
from sim_worlds import SMALL_WORLD

from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.sim import RenderConfig, StereoRenderer, generate_world, lighting_preset, projection_matrix
from dlvf_ros.sim.trajectory import pose_on_path

RIG = StereoRig().scaled(160, 120)


def back_project(depth_m, rig, T_world_camera):
    """World points of the pixels with finite depth, and their (u, v)."""
    v, u = np.nonzero(np.isfinite(depth_m))
    z = depth_m[v, u].astype(np.float64)
    points_camera = np.stack([(u - rig.cu) / rig.f * z, (v - rig.cv) / rig.f * z, z], axis=1)
    return transforms.transform_points(T_world_camera, points_camera), u, v


NO_CLUTTER = {
    f"{kind}_per_100m": 0.0 for kind in ("rocks", "bushes", "trees", "far_trees", "tufts", "stumps", "logs", "man_made")
}
BARE_STYLES = [
    "classic",
    "drawn",
    # a crowned paved trail in a cutting, seen by a camera that blurs (motion and defocus) and compresses
    "terrain=sunken_cut,trail=paved,camera=cheap_cmos",
    # a crowned gravel trail with ruts, the held-out camera
    "terrain=rolling_forest,trail=gravel,camera=rolling_industrial",
]


@pytest.fixture(scope="module", params=BARE_STYLES)
def bare_world(request):
    """Terrain only: every pixel with a depth sees the heightfield."""
    return generate_world(11, dataclasses.replace(SMALL_WORLD, **NO_CLUTTER, style=request.param))


@pytest.fixture(scope="module")
def world():
    return generate_world(12, SMALL_WORLD)


def test_projection_puts_pixel_centres_on_fragment_centres():
    P = projection_matrix(RIG, 0.2, 100.0)
    uv = np.array([[0.0, 0.0], [RIG.width - 1.0, RIG.height - 1.0], [12.25, 80.5]])
    z = np.array([1.0, 7.0, 55.0])
    points = np.stack([(uv[:, 0] - RIG.cu) / RIG.f * z, (uv[:, 1] - RIG.cv) / RIG.f * z, z], axis=1)
    clip = np.hstack([points, np.ones((3, 1))]) @ P.T
    ndc = clip[:, :3] / clip[:, 3:]
    window = np.stack([(ndc[:, 0] + 1) * RIG.width / 2, (ndc[:, 1] + 1) * RIG.height / 2], axis=1)
    np.testing.assert_allclose(window, uv + 0.5, atol=1e-9)  # GL fragment centres are at +0.5; row 0 is v = 0
    np.testing.assert_allclose(ndc[:, 2], (P[2, 2] * z + P[2, 3]) / z)
    assert np.all(np.abs(ndc[:, 2]) <= 1.0)


def test_back_projected_depth_lies_on_the_terrain_surface(bare_world):
    with StereoRenderer(bare_world, RIG, RenderConfig(sensor_noise=False)) as renderer:
        for s_m, lateral_m in ((2.0, 0.0), (11.0, 0.6)):
            T_world_vehicle = pose_on_path(bare_world, s_m, lateral_m)
            # moving at 1 m/s at dusk: long exposures blur the colour image, never the depth
            images = renderer.render(
                T_world_vehicle, lighting_preset("dusk"), motion_vehicle=([1.0, 0, 0], [0, 0, 0.1])
            )
            depth = images.depth_left_m
            assert depth.dtype == np.float32 and depth.shape == (RIG.height, RIG.width)
            assert np.isinf(depth[0]).any(), "the top row should see some sky"
            assert np.isfinite(depth[-1]).all(), "the bottom row sees the ground"
            points, _, _ = back_project(depth, RIG, T_world_vehicle @ RIG.T_vehicle_camera)
            ranges = np.linalg.norm(points - (T_world_vehicle @ RIG.T_vehicle_camera)[:3, 3], axis=1)
            near = points[ranges < 40.0]
            assert len(near) > 0.5 * depth.size
            height_error = near[:, 2] - bare_world.terrain_height(near[:, 0], near[:, 1])
            # float32 depth: ~1e-6 relative; a half-pixel shift would give centimetres here
            assert np.abs(height_error).max() < 2e-3


def test_right_image_matches_left_at_the_stereo_disparity(world):
    with StereoRenderer(world, RIG, RenderConfig(sensor_noise=False)) as renderer:
        T_world_vehicle = pose_on_path(world, 6.0, 0.3)
        images = renderer.render(T_world_vehicle, lighting_preset("noon"), right_depth=True)
    T_world_left = T_world_vehicle @ RIG.T_vehicle_camera
    points, u, v = back_project(images.depth_left_m, RIG, T_world_left)
    T_right_world = transforms.invert(T_world_left @ transforms.make_transform(np.eye(3), [RIG.baseline, 0, 0]))
    points_right = transforms.transform_points(T_right_world, points)
    u_right = RIG.f * points_right[:, 0] / points_right[:, 2] + RIG.cu
    z = images.depth_left_m[v, u].astype(np.float64)
    np.testing.assert_allclose(u_right, u - RIG.f * RIG.baseline / z, atol=1e-3)  # disparity f b / z
    np.testing.assert_allclose(points_right[:, 2], z, rtol=1e-6)
    ui = np.round(u_right).astype(int)
    inside = (ui >= 0) & (ui < RIG.width) & (np.abs(u_right - ui) < 0.1) & (z < 30.0)
    z_right = images.depth_right_m[v[inside], ui[inside]]
    agree = np.abs(z_right - z[inside]) < 0.01 * z[inside]
    assert inside.sum() > 500 and agree.mean() > 0.95  # the rest: occlusion edges

    # image content: 7x7 patches around left pixels match the right image at u - d (zero-mean NCC)
    left = images.left.astype(np.float64).mean(axis=2)
    right = images.right.astype(np.float64).mean(axis=2)
    rng = np.random.default_rng(0)
    candidates = np.nonzero(
        inside & (u > 5) & (u < RIG.width - 6) & (v > 5) & (v < RIG.height - 6) & (ui >= 3) & (ui < RIG.width - 8)
    )[0]
    scores, shifted = [], []
    for k in rng.choice(candidates, 150, replace=False):
        a = left[v[k] - 3 : v[k] + 4, u[k] - 3 : u[k] + 4]
        for shift, out in ((0, scores), (4, shifted)):
            uc = ui[k] + shift
            b = right[v[k] - 3 : v[k] + 4, uc - 3 : uc + 4]
            a0, b0 = a - a.mean(), b - b.mean()
            out.append((a0 * b0).sum() / max(np.sqrt((a0**2).sum() * (b0**2).sum()), 1e-9))
    assert np.median(scores) > 0.85
    assert np.median(scores) > np.median(shifted) + 0.3
