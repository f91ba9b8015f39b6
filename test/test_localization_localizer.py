"""Localizer core on synthetic stereo features: a world of 3-D points with fixed ORB-like descriptors, seen by
keyframes along a straight teach path and by repeat frames at known offsets. No images: `Localizer.localize` takes
the features directly, so these tests check the logic (search window, RANSAC pose, covariance, health, errors)."""

import numpy as np
import pytest

from dlvf_ros.config import from_dict
from dlvf_ros.features.backends import Features, OrbBackend
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.localization.frontend import StereoFeatures, StereoFrontend
from dlvf_ros.localization.health import HealthState
from dlvf_ros.localization.localizer import Localizer, LocalizerConfig
from dlvf_ros.localization.map_format import Keyframe
from dlvf_ros.localization.map_store import MapStore, MapWriter
from dlvf_ros.localization.refine import stereo_measurements

RIG = StereoRig()
T_MAP_ODOM = transforms.from_xyz_rpy(3.0, -2.0, 0.0, yaw=0.4)  # where the repeat run's odometry frame sits
NUM_KEYFRAMES = 12


def make_world(seed=0, n=6000):
    rng = np.random.default_rng(seed)
    points_map = np.column_stack([rng.uniform(-5, 60, n), rng.uniform(-15, 15, n), rng.uniform(-1, 3, n)])
    descriptors = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    return points_map, descriptors


def observe(world, T_map_vehicle, rng, max_points=400, noise_px=0.0, bit_flips=0, outliers=0):
    """Features of the world points visible from T_map_vehicle (3-30 m ahead, inside the image); `noise_px` on the
    stereo measurements (u, v, disparity), triangulated like the front end does."""
    points_map, descriptors = world
    T_camera_map = transforms.invert(T_map_vehicle @ RIG.T_vehicle_camera)
    points_camera = transforms.transform_points(T_camera_map, points_map)
    uv, _ = RIG.project(points_camera)
    visible = (
        (points_camera[:, 2] > 3)
        & (points_camera[:, 2] < 30)
        & (uv[:, 0] >= 0)
        & (uv[:, 0] <= RIG.width - 1)
        & (uv[:, 1] >= 0)
        & (uv[:, 1] <= RIG.height - 1)
    )
    index = np.flatnonzero(visible)[:max_points]
    desc = descriptors[index].copy()
    if bit_flips:
        desc[:, 0] ^= np.uint8((1 << bit_flips) - 1)
    measured = stereo_measurements(RIG, points_camera[index]) + rng.normal(0, noise_px, (len(index), 3))
    kps = measured[:, :2]
    pts, _ = RIG.points_from_disparity(kps, measured[:, 2])
    if outliers:
        pts = np.vstack([pts, rng.uniform([-10, -3, 3], [10, 3, 30], (outliers, 3))])
        desc = np.vstack([desc, rng.integers(0, 256, (outliers, 32), dtype=np.uint8)])
        kps = np.vstack([kps, rng.uniform(0, 380, (outliers, 2))])
    n = len(pts)
    features = Features(kps.astype(np.float32), desc, rng.uniform(0.5, 1.0, n).astype(np.float32))
    return StereoFeatures(features, pts, np.ones(n, bool))


def keyframe_pose(i):
    return transforms.from_xyz_rpy(2.0 * i, 0.0, 0.0)


@pytest.fixture(scope="module")
def world():
    return make_world()


@pytest.fixture(scope="module")
def map_path(tmp_path_factory, world):
    path = tmp_path_factory.mktemp("maps") / "teach"
    writer = MapWriter.create(path, OrbBackend(), RIG)
    rng = np.random.default_rng(1)
    for i in range(NUM_KEYFRAMES):
        frame = observe(world, keyframe_pose(i), rng)
        f = frame.features
        writer.add(
            Keyframe(
                i, i * 10**9, keyframe_pose(i), f.keypoints, f.descriptors, f.scores, frame.points_camera, frame.valid
            )
        )
    return path


def make_localizer(map_path, **overrides):
    config = from_dict(LocalizerConfig, overrides, "test")
    return Localizer(MapStore.open(map_path), StereoFrontend(OrbBackend(), RIG, config.stereo), config)


def odom(T_map_vehicle):
    return transforms.invert(T_MAP_ODOM) @ T_map_vehicle


def confirmed(localizer, stamp_ns, frame, T_odom_vehicle):
    """Start-up: the first pose is held back until the next frame's pose agrees with it; here the same frame again
    (no motion), 1 ns later. Returns the second frame's result."""
    held = localizer.localize(stamp_ns, frame, T_odom_vehicle)
    assert not held.fixed and "held back" in held.fix_refused and held.T_map_vehicle is None, held.fix_refused
    return localizer.localize(stamp_ns + 1, frame, T_odom_vehicle)


def confirmed_by_motion(localizer, stamp_ns, frames):
    """Start-up near a prior: the first pose is held back until a pose further on agrees with it through odometry
    and would not without the motion. `frames`: (features, T_odom_vehicle) of two views 0.3 m or more apart; returns
    the second frame's result."""
    (first, T_odom_first), (second, T_odom_second) = frames
    held = localizer.localize(stamp_ns, first, T_odom_first)
    assert not held.fixed and "held back" in held.fix_refused and held.T_map_vehicle is None, held.fix_refused
    return localizer.localize(stamp_ns + 10**8, second, T_odom_second)


def two_views(world, T_map_vehicle, rng, step_m=0.3, **observe_args):
    """(features, odometry) at T_map_vehicle and `step_m` straight ahead of it, for `confirmed_by_motion`, and the
    second pose."""
    T_ahead = T_map_vehicle @ transforms.from_xyz_rpy(step_m, 0.0, 0.0)
    return [(observe(world, T, rng, **observe_args), odom(T)) for T in (T_map_vehicle, T_ahead)], T_ahead


def pose_error(T_a, T_b):
    delta = transforms.invert(T_a) @ T_b
    return np.linalg.norm(delta[:3, 3]), np.rad2deg(transforms.rotation_angle(delta[:3, :3]))


def test_config_round_trips_through_from_dict():
    config = from_dict(
        LocalizerConfig,
        {
            "ransac": {"inlier_threshold_m": 0.5},
            "window": {"radius_m": 4.0},
            "health": {"good_inliers": 25},
            "initial_keyframe_id": 3,
        },
        "yaml",
    )
    assert config.ransac.inlier_threshold_m == 0.5 and config.window.radius_m == 4.0
    assert config.health.good_inliers == 25 and config.initial_keyframe_id == 3
    with pytest.raises(ValueError, match="min_matches"):
        from_dict(LocalizerConfig, {"min_matches": 3}, "yaml")


def test_recovers_lateral_offset_and_heading_from_start_up(map_path, world):
    localizer = make_localizer(map_path)
    rng = np.random.default_rng(2)
    states = []
    for k in range(6):
        T_true = transforms.from_xyz_rpy(8.3 + 0.4 * k, 0.5, 0.02, yaw=np.deg2rad(4.0))
        frame = observe(world, T_true, rng, noise_px=0.3, outliers=150)
        result = localizer.localize(k * 10**8, frame, odom(T_true))
        if k == 0:  # start-up: held back until the next frame, 0.4 m further on odometry, agrees
            assert not result.fixed and result.state == HealthState.LOST and "held back" in result.fix_refused
            continue
        states.append(result.state)
        assert result.fixed and result.fix_refused == "" and result.innovation_mahalanobis2 < 16
        t_err, r_err = pose_error(result.T_map_vehicle, T_true)
        assert t_err < 0.05 and r_err < 0.3, (t_err, r_err)
        assert result.keyframe_id in (4, 5)
        T_map_keyframe = keyframe_pose(result.keyframe_id)
        np.testing.assert_allclose(T_map_keyframe @ result.T_keyframe_vehicle, result.T_map_vehicle, atol=1e-9)
        assert result.num_inliers >= 100
        assert result.covariance.shape == (6, 6) and np.all(np.linalg.eigvalsh(result.covariance) > 0)
        assert set(result.timings_ms) >= {"matching", "ransac", "localize_total"}
    assert states[0] == HealthState.DEGRADED  # first published fix after start-up (LOST)
    assert states[-1] == HealthState.LOCALIZED
    assert localizer.localize(10**9, observe(world, T_true, rng), odom(T_true)).search == "window"


def test_first_search_is_global_then_a_window_that_grows_without_fixes(map_path, world):
    localizer = make_localizer(map_path, window={"radius_m": 3.0, "growth_per_m": 0.5, "max_candidates": 2})
    rng = np.random.default_rng(3)
    T_true = transforms.from_xyz_rpy(10.0, 0.3, 0.0)
    first = confirmed(localizer, 0, observe(world, T_true, rng), odom(T_true))
    assert first.search == "global" and first.candidates == list(range(NUM_KEYFRAMES)) and first.fixed
    empty = StereoFeatures(
        Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), np.zeros(0, np.float32)),
        np.zeros((0, 3)),
        np.zeros(0, bool),
    )
    radii, covariances = [], []
    for k in range(1, 5):
        T_true = transforms.from_xyz_rpy(10.0 + k, 0.3, 0.0)
        result = localizer.localize(k * 10**8, empty, odom(T_true))
        assert not result.fixed and result.search == "window" and len(result.candidates) <= 2
        # dead reckoning from the last fix along exact odometry
        assert pose_error(result.T_map_vehicle, T_true)[0] < 0.05
        nearest = np.argmin(np.abs(2.0 * np.arange(NUM_KEYFRAMES) - (10.0 + k)))
        assert nearest in result.candidates
        radii.append(result.search_radius_m)
        covariances.append(np.trace(result.covariance))
        assert result.distance_since_fix_m == pytest.approx(k)
    assert np.all(np.diff(radii) > 0) and np.all(np.diff(covariances) > 0)


def test_start_up_around_an_initial_keyframe(map_path, world):
    localizer = make_localizer(map_path, initial_keyframe_id=7, window={"max_candidates": 3})
    rng = np.random.default_rng(4)
    frames, T_true = two_views(world, transforms.from_xyz_rpy(14.2, -0.4, 0.0), rng)
    result = confirmed_by_motion(localizer, 0, frames)
    assert result.search == "window" and 7 in result.candidates and result.fixed
    assert pose_error(result.T_map_vehicle, T_true)[0] < 0.05


def test_covariance_grows_when_inliers_are_few(map_path, world):
    rng = np.random.default_rng(5)
    T_true = transforms.from_xyz_rpy(6.0, 0.2, 0.0)
    traces = []
    for max_points in (400, 25):  # low floors so the fit's own covariance shows
        localizer = make_localizer(map_path, covariance={"min_sigma_m": 0.001, "min_sigma_rad": 0.0001})
        frame = observe(world, T_true, rng, max_points=max_points, noise_px=0.5)
        result = confirmed(localizer, 0, frame, odom(T_true))
        assert result.fixed
        traces.append(np.trace(result.covariance[:3, :3]))
    assert traces[1] > 3 * traces[0]


def test_wrong_or_missing_matches_do_not_fix(map_path, world):
    localizer = make_localizer(map_path)
    rng = np.random.default_rng(6)
    T_true = transforms.from_xyz_rpy(6.0, 0.0, 0.0)
    frame = observe(world, T_true, rng, bit_flips=8)  # descriptors 8 bits off: still matched (<= 64)
    assert confirmed(localizer, 0, frame, odom(T_true)).fixed
    scrambled = observe(make_world(seed=99), T_true, rng)  # another world: no true matches
    result = localizer.localize(2, scrambled, odom(T_true))
    assert not result.fixed and result.num_inliers == 0
    assert result.T_map_vehicle is not None  # dead-reckoned


def test_guided_matching_recovers_a_fix_where_descriptors_alias(map_path, world):
    """Tracking at 8 m. In the next frame every feature has a decoy with the same descriptor, listed first, 150 px
    to the side and on a random 3-D point (the self-similar texture of a trail at night): mutual nearest neighbours
    take the decoys and RANSAC finds nothing. Matching again near where the odometry prediction projects each map
    point picks the true features: a fix, marked `guided`, as accurate as an unaliased one. With
    guided_radius_px 0 the frame has no fix."""
    rng = np.random.default_rng(12)
    T_start, T_next = transforms.from_xyz_rpy(8.0, 0.2, 0.0), transforms.from_xyz_rpy(8.4, 0.25, 0.0, yaw=0.02)
    start, true = observe(world, T_start, rng), observe(world, T_next, rng, noise_px=0.3)
    n = len(true.features)
    decoy_keypoints = true.features.keypoints.copy()
    decoy_keypoints[:, 0] = (decoy_keypoints[:, 0] + 150.0) % RIG.width
    aliased = StereoFeatures(
        Features(
            np.vstack([decoy_keypoints, true.features.keypoints]),
            np.vstack([true.features.descriptors, true.features.descriptors]),
            np.concatenate([true.features.scores, true.features.scores]),
        ),
        np.vstack([rng.uniform([-10, -3, 3], [10, 3, 30], (n, 3)), true.points_camera]),
        np.ones(2 * n, bool),
    )
    for radius_px in (48.0, 0.0):
        localizer = make_localizer(map_path, guided_radius_px=radius_px)
        assert confirmed(localizer, 0, start, odom(T_start)).fixed
        result = localizer.localize(10**8, aliased, odom(T_next))
        if radius_px > 0:
            assert result.fixed and result.guided and result.num_inliers >= 0.8 * n
            assert pose_error(result.T_map_vehicle, T_next)[0] < 0.05
        else:
            assert not result.fixed and not result.guided


def test_bad_inputs_raise_and_leave_the_state_alone(map_path, world):
    localizer = make_localizer(map_path)
    rng = np.random.default_rng(7)
    T_true = transforms.from_xyz_rpy(6.0, 0.0, 0.0)
    frame = observe(world, T_true, rng)
    assert confirmed(localizer, 9, frame, odom(T_true)).fixed
    bad = odom(T_true).copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="T_odom_vehicle"):
        localizer.localize(11, frame, bad)
    with pytest.raises(ValueError, match="earlier than"):
        localizer.localize(5, frame, odom(T_true))
    with pytest.raises(ValueError, match="does not match the calibration"):
        localizer.process(12, np.zeros((240, 320, 3), np.uint8), np.zeros((240, 320, 3), np.uint8), odom(T_true))
    with pytest.raises(ValueError, match="stamp_ns"):
        localizer.localize(1.5, frame, odom(T_true))
    result = localizer.localize(12, frame, odom(T_true))
    assert result.fixed and result.search == "window" and result.distance_since_fix_m == 0.0


def test_localizer_refuses_an_empty_map_or_bad_initial_keyframe(tmp_path, map_path):
    MapWriter.create(tmp_path / "empty", OrbBackend(), RIG)
    with pytest.raises(ValueError, match="no keyframes"):
        make_localizer(tmp_path / "empty")
    with pytest.raises(ValueError, match="not in the map"):
        make_localizer(map_path, initial_keyframe_id=NUM_KEYFRAMES)


def test_same_place_false_matches_are_outvoted_by_the_submap(tmp_path, world):
    """A self-similar trail: every view holds the same "ground patch" features at the same camera-frame points with
    the same descriptors, so each keyframe alone explains any frame as "standing on the keyframe". True matches to
    all keyframes of the window agree on one pose and outvote them; against one keyframe they do not."""
    rng = np.random.default_rng(3)
    uv = np.column_stack([rng.uniform(20, RIG.width - 20, 100), rng.uniform(RIG.height / 2 + 20, RIG.height - 20, 100)])
    patch_points, _ = RIG.points_from_disparity(uv, rng.uniform(8.0, 20.0, 100))
    patch = StereoFeatures(
        Features(uv.astype(np.float32), rng.integers(0, 256, (100, 32), dtype=np.uint8), np.ones(100, np.float32)),
        patch_points,
        np.ones(100, bool),
    )

    def with_patch(frame):
        parts = (frame, patch)
        features = Features(
            *(
                np.concatenate([getattr(p.features, key) for p in parts])
                for key in ("keypoints", "descriptors", "scores")
            )
        )
        return StereoFeatures(features, np.vstack([p.points_camera for p in parts]), np.ones(len(features), bool))

    writer = MapWriter.create(tmp_path / "trail", OrbBackend(), RIG)
    for i in range(NUM_KEYFRAMES):
        frame = with_patch(observe(world, keyframe_pose(i), rng, max_points=60))
        f = frame.features
        writer.add(
            Keyframe(
                i, i * 10**9, keyframe_pose(i), f.keypoints, f.descriptors, f.scores, frame.points_camera, frame.valid
            )
        )
    T_map_vehicle = transforms.from_xyz_rpy(8.8, 0.3, 0.0, yaw=0.02)
    views, T_ahead = two_views(world, T_map_vehicle, rng, max_points=60)
    views = [(with_patch(features), T_odom) for features, T_odom in views]
    # near the start-up prior the confirmation spans motion, which a "standing on the keyframe" pose does not
    # follow: against one keyframe (the patch wins RANSAC) there is no fix; with the submap the true pose is one
    for max_candidates, expect_fix in ((1, False), (3, True)):
        localizer = make_localizer(tmp_path / "trail", initial_keyframe_id=4, window={"max_candidates": max_candidates})
        held = localizer.localize(0, *views[0])
        result = localizer.localize(10**8, *views[1])
        assert not held.fixed and result.fixed == expect_fix, (max_candidates, result.fix_refused)
        if expect_fix:
            assert pose_error(result.T_map_vehicle, T_ahead)[0] < 0.1


def test_a_fix_that_disagrees_with_odometry_is_refused_by_the_innovation_gate(map_path, world):
    """Tracking at 8 m. The next frame's features are those of the view 2 m further on (a wrong keyframe's place,
    as a self-similar trail can make it look), while odometry has moved 0.4 m: the pose lies inside the search
    window (3 m), 1.6 m from the prediction with centimetre covariances. No fix; the dead-reckoned pose is kept, and
    the next frame that agrees with odometry is published again."""
    localizer = make_localizer(map_path)
    rng = np.random.default_rng(8)
    T_start = transforms.from_xyz_rpy(8.0, 0.2, 0.0)
    assert confirmed(localizer, 0, observe(world, T_start, rng), odom(T_start)).fixed
    T_true = transforms.from_xyz_rpy(8.4, 0.2, 0.0)
    wrong_view = observe(world, transforms.from_xyz_rpy(10.0, 0.2, 0.0), rng)
    result = localizer.localize(10**8, wrong_view, odom(T_true))
    assert result.search == "window" and result.search_radius_m > 1.6
    assert not result.fixed and not result.guided
    assert "disagrees with the odometry prediction by 1.60 m" in result.fix_refused
    assert result.innovation_mahalanobis2 > localizer.config.gate.max_mahalanobis2
    assert result.num_inliers == 0 and result.keyframe_id is None
    assert pose_error(result.T_map_vehicle, T_true)[0] < 0.05  # dead-reckoned
    T_next = transforms.from_xyz_rpy(8.8, 0.2, 0.0, yaw=0.01)
    result = localizer.localize(2 * 10**8, observe(world, T_next, rng, noise_px=0.3), odom(T_next))
    assert result.fixed and pose_error(result.T_map_vehicle, T_next)[0] < 0.05


def test_a_refused_pose_gives_way_to_a_guided_one_only_with_as_many_inliers(map_path, world):
    """Tracking at 8 m. The next frame holds, listed first, the view of the same place turned 14 deg (an alias, as a
    self-similar trail can make one) and after it the true view, each landmark with the same descriptor in both:
    unguided matching takes the alias, whose pose the innovation gate refuses. Matching again near where the odometry
    prediction projects each map point picks the true features: a guided fix at the true pose, because it keeps at
    least as many inliers as the refused pose. When the true view shows fewer landmarks than the alias (150 against
    400) the guided pose, although it agrees with the prediction, does not replace the better-supported refused one:
    no fix."""

    def listed_together(first, second):
        parts = (first, second)
        features = Features(
            *(np.concatenate([getattr(p.features, k) for p in parts]) for k in ("keypoints", "descriptors", "scores"))
        )
        return StereoFeatures(features, np.vstack([p.points_camera for p in parts]), np.ones(len(features), bool))

    T_start, T_true = transforms.from_xyz_rpy(8.0, 0.2, 0.0), transforms.from_xyz_rpy(8.4, 0.2, 0.0)
    T_alias = transforms.from_xyz_rpy(8.4, 0.2, 0.0, yaw=0.25)
    for true_landmarks, radius_px, expect_fix in ((400, 48.0, True), (400, 0.0, False), (150, 48.0, False)):
        rng = np.random.default_rng(8)
        localizer = make_localizer(map_path, guided_radius_px=radius_px)
        assert confirmed(localizer, 0, observe(world, T_start, rng), odom(T_start)).fixed
        alias = observe(world, T_alias, rng, max_points=400)
        frame = listed_together(alias, observe(world, T_true, rng, max_points=true_landmarks, noise_px=0.3))
        result = localizer.localize(10**8, frame, odom(T_true))
        assert result.fixed == expect_fix and result.guided == expect_fix, (true_landmarks, radius_px)
        if expect_fix:
            assert pose_error(result.T_map_vehicle, T_true)[0] < 0.05
        else:
            assert "disagrees with the odometry prediction by 0.00 m, 14.3 deg" in result.fix_refused


def test_start_up_poses_that_disagree_are_not_published_until_two_agree(map_path, world):
    """No prediction at start-up: a pose is published only once the next frame's pose agrees with it through
    odometry. Here the second frame shows the view of 4 m further on while odometry moved 0.4 m."""
    localizer = make_localizer(map_path)
    rng = np.random.default_rng(9)
    poses = [transforms.from_xyz_rpy(6.0 + 0.4 * k, -0.3, 0.0) for k in range(3)]
    views = [poses[0], transforms.from_xyz_rpy(10.4, -0.3, 0.0), poses[2]]
    results = [
        localizer.localize(k * 10**8, observe(world, view, rng), odom(pose))
        for k, (pose, view) in enumerate(zip(poses, views))
    ]
    assert [r.fixed for r in results] == [False, False, False]
    assert "held back" in results[0].fix_refused
    assert "disagrees with the previous frame's unconfirmed pose by 4.00 m" in results[1].fix_refused
    assert "disagrees" in results[2].fix_refused  # the wrong view is no confirmation either
    T_true = transforms.from_xyz_rpy(7.2, -0.3, 0.0)
    result = localizer.localize(3 * 10**8, observe(world, T_true, rng), odom(T_true))
    assert result.fixed and result.search == "global" and pose_error(result.T_map_vehicle, T_true)[0] < 0.05


def test_per_frame_mode_localizes_against_the_given_keyframe_without_state(map_path, world):
    """The per-frame mode runs the localizer's matching, RANSAC and refinement against one keyframe."""
    from dlvf_ros.localization.per_frame import PerFrameLocalizer

    store = MapStore.open(map_path)
    localizer = PerFrameLocalizer(StereoFrontend(OrbBackend(), RIG), LocalizerConfig())
    rng = np.random.default_rng(10)
    T_map_vehicle = transforms.from_xyz_rpy(8.6, 0.4, 0.0, yaw=np.deg2rad(3.0))
    frame = observe(world, T_map_vehicle, rng, noise_px=0.3, outliers=100)
    keyframe = store.keyframe(4)
    keyframe_features = StereoFeatures(keyframe.features, keyframe.points_camera, keyframe.valid)
    for _ in range(2):  # no state: the same answer twice
        result = localizer.localize(frame, keyframe_features)
        assert result.num_inliers >= 100 and result.num_matches >= result.num_inliers
        t_err, r_err = pose_error(keyframe_pose(4) @ result.T_keyframe_vehicle, T_map_vehicle)
        assert t_err < 0.05 and r_err < 0.3
        assert result.covariance.shape == (6, 6) and np.all(np.linalg.eigvalsh(result.covariance) > 0)
    other_world = observe(make_world(seed=99), T_map_vehicle, rng)
    result = localizer.localize(other_world, keyframe_features)
    assert result.T_keyframe_vehicle is None and result.covariance is None and result.num_inliers == 0
