"""Dataset generation: cross-run pairs within k edges, run- and world-disjoint splits, the disparity cache.

`write_plane_world` (also used by the other training tests) renders a tiny UTIAS-layout world analytically: a
textured ground plane seen by the stereo rig, a teach run and repeat runs offset sideways under other lighting.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from run_frames import Frame

from dlvf_ros.data.utias import UtiasDataset, UtiasWriter
from dlvf_ros.geometry import transforms as tf
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.geometry.stereo_matching import SgbmConfig
from dlvf_ros.training.config import DatasetConfig, SplitConfig
from dlvf_ros.training.dataset import DatasetManifest, PairDataset, build_dataset
from dlvf_ros.training.disparity_cache import resized_rgb
from dlvf_ros.training.pairs import resolve_splits, sample_pairs

TEXTURE_M_PER_PX = 0.01
TEXTURE_ORIGIN_M = np.array([-4.0, -6.0])


def ground_texture(seed: int, size=(1200, 2400)) -> np.ndarray:
    """Multi-scale noise texture (RGB uint8) covering x in [-4, 20] m, y in [-6, 6] m at 1 cm/px."""
    rng = np.random.default_rng(seed)
    texture = np.zeros((*size, 3), np.float32)
    for scale, amplitude in ((4, 0.5), (16, 0.8), (64, 1.0)):
        small = rng.normal(size=(size[0] // scale + 1, size[1] // scale + 1, 3)).astype(np.float32)
        texture += amplitude * cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    return (texture * 255).astype(np.uint8)


def render_eye(texture, rig: StereoRig, T_world_camera: np.ndarray, gain: np.ndarray) -> np.ndarray:
    v, u = np.mgrid[0 : rig.height, 0 : rig.width].astype(np.float64)
    rays_camera = np.stack([(u - rig.cu) / rig.f, (v - rig.cv) / rig.f, np.ones_like(u)], axis=-1)
    rays_world = rays_camera @ T_world_camera[:3, :3].T
    origin = T_world_camera[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -origin[2] / rays_world[..., 2]
    hit = (rays_world[..., 2] < -1e-6) & (t < 30.0)
    xy = origin[:2] + np.where(hit[..., None], t[..., None], 0.0) * rays_world[..., :2]
    map_x = ((xy[..., 0] - TEXTURE_ORIGIN_M[0]) / TEXTURE_M_PER_PX).astype(np.float32)
    map_y = ((xy[..., 1] - TEXTURE_ORIGIN_M[1]) / TEXTURE_M_PER_PX).astype(np.float32)
    ground = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    sky = np.array([150, 180, 220], np.float32)
    image = np.where(hit[..., None], ground.astype(np.float32) * gain, sky * gain)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_plane_world(
    root: Path,
    runs=((0.0, 1.0), (0.4, 0.6), (-0.3, 1.3), (0.2, 0.45)),
    frames=6,
    spacing_m=0.8,
    width=128,
    height=96,
    seed=0,
) -> StereoRig:
    """Write runs given as (lateral offset m, brightness gain); run 0 is the teach run. Returns the rig."""
    rig = StereoRig().scaled(width, height)
    texture = cv2.GaussianBlur(ground_texture(seed), (0, 0), 1.5)
    writer = UtiasWriter(root, rig)
    T_camera_right_left = tf.make_transform(np.eye(3), [-rig.baseline, 0.0, 0.0])
    for run_id, (offset_m, gain) in enumerate(runs):
        colour = np.array([gain, gain * (0.9 if run_id % 2 else 1.0), gain * (1.1 if run_id % 2 else 1.0)], np.float32)
        with writer.add_run(run_id, {"lighting": f"gain{gain}", "hour": 12.0}) as run:
            for i in range(frames):
                T_world_vehicle = tf.from_xyz_rpy(i * spacing_m + 0.1 * run_id, offset_m, 0.0, yaw=0.03 * run_id)
                T_world_left = T_world_vehicle @ rig.T_vehicle_camera
                left = render_eye(texture, rig, T_world_left, colour)
                right = render_eye(texture, rig, T_world_left @ tf.invert(T_camera_right_left), colour)
                run.add_frame(Frame(i, (run_id * 1000 + i + 1) * 10**8, left, right, T_world_vehicle))
    return rig


FOUR_RUNS = ((0.0, 1.0), (0.3, 0.6), (-0.2, 1.2), (0.2, 0.5))  # (lateral offset m, brightness gain)


def small_dataset_config(**options) -> DatasetConfig:
    """A `DatasetConfig` of 128 x 96 image pairs and no test pairs, but for `options` (its fields)."""
    return DatasetConfig(**{"test_pairs": 0, "image_width": 128, "image_height": 96, **options})


def build_plane_dataset(
    root: Path, out: Path, runs, train_pairs: int, validation_pairs: int, split: SplitConfig
) -> DatasetManifest:
    """A small training dataset (128 x 96, no test pairs) at `out` from a plane world of `runs` (3 frames each)
    written to `root`: the trainer, DDP and pipeline tests' data."""
    write_plane_world(root, runs=runs, frames=3)
    config = small_dataset_config(
        train_pairs=train_pairs, validation_pairs=validation_pairs, sgbm=SgbmConfig(num_disparities=32), split=split
    )
    return build_dataset([root], out, config)


@pytest.fixture(scope="module")
def plane_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("plane_world")
    write_plane_world(root)
    return root


def test_pairs_are_cross_run_within_k_edges_with_ground_truth(plane_world, tmp_path):
    config = small_dataset_config(
        train_pairs=40,
        validation_pairs=10,
        test_pairs=10,
        max_edges=3,
        split=SplitConfig(train=[0, 1], validation=[2], test=[3]),
    )
    with pytest.raises(ValueError, match="no vertex of the split"):  # one run alone cannot make cross-run pairs
        build_dataset([plane_world], tmp_path / "bad", config)
    config = small_dataset_config(
        train_pairs=40, validation_pairs=10, max_edges=3, split=SplitConfig(train=[0, 1], validation=[2, 3])
    )
    manifest = build_dataset([plane_world], tmp_path / "ds", config)
    ds = UtiasDataset(plane_world)
    train = manifest.pairs("train")
    assert len(train) == 40 and len(manifest.pairs("validation")) == 10 and len(manifest.pairs("test")) == 0
    for split, runs in (("train", {0, 1}), ("validation", {2, 3})):
        pairs = manifest.pairs(split)
        for source, target, T, edges in zip(pairs.source, pairs.target, pairs.T_target_source, pairs.edges):
            source, target = tuple(source), tuple(target)
            assert source[0] != target[0] and {source[0], target[0]} <= runs
            assert 1 <= ds.topological_distance(source, target) == edges <= 3
            T_world_target = ds.T_world_vehicle(target)
            expected = tf.invert(T_world_target) @ ds.T_world_vehicle(source)
            np.testing.assert_allclose(T, expected, atol=1e-6)
    # the same seed gives the same pairs, and the same disparity files from several processes; the manifest
    # verifies its files
    again = build_dataset([plane_world], tmp_path / "ds2", config, workers=2)
    assert again.data_hash == manifest.data_hash
    np.testing.assert_array_equal(again.pairs("train").source, train.source)
    cached = sorted(p.relative_to(tmp_path / "ds") for p in (tmp_path / "ds" / "disparity").rglob("*.npy"))
    assert cached and cached == sorted(p.relative_to(tmp_path / "ds2") for p in (tmp_path / "ds2").rglob("*.npy"))
    for path in cached:
        np.testing.assert_array_equal(np.load(tmp_path / "ds" / path), np.load(tmp_path / "ds2" / path))
    (tmp_path / "ds" / "pairs_train.npz").write_bytes(b"changed")
    with pytest.raises(ValueError, match="changed"):
        DatasetManifest.load(tmp_path / "ds")


def test_anchored_pairs_target_the_anchor_run_only(plane_world):
    ds = UtiasDataset(plane_world)
    members = [(0, run) for run in (0, 1, 2, 3)]
    pairs = sample_pairs([ds], members, 60, 3, np.random.default_rng(0), anchor_run=0)
    assert set(pairs.target[:, 0]) == {0} and set(pairs.source[:, 0]) == {1, 2, 3}
    for source, target, T in zip(pairs.source, pairs.target, pairs.T_target_source):
        expected = tf.invert(ds.T_world_vehicle(tuple(target))) @ ds.T_world_vehicle(tuple(source))
        np.testing.assert_allclose(T, expected, atol=1e-6)
    with pytest.raises(ValueError, match="anchor run 0"):  # a split without the anchor run has no pair
        sample_pairs([ds], members[1:], 5, 3, np.random.default_rng(0), anchor_run=0)


def test_splits_by_run_and_by_world_are_disjoint(plane_world, tmp_path):
    other = tmp_path / "world_b"
    write_plane_world(other, runs=((0.0, 1.0), (0.3, 0.5)), frames=3, seed=1)
    datasets = [UtiasDataset(plane_world), UtiasDataset(other)]
    by_run = resolve_splits(datasets, SplitConfig(train=[0, 1], validation=[2], test=[3]), seed=0)
    assert by_run["train"] == [(0, 0), (0, 1), (1, 0), (1, 1)] and by_run["test"] == [(0, 3)]
    by_world = resolve_splits(datasets, SplitConfig(by="world", train=[1], validation=[0], test=[]), seed=0)
    assert by_world["train"] == [(1, 0), (1, 1)] and by_world["validation"] == [(0, r) for r in range(4)]
    automatic = resolve_splits(datasets[:1], SplitConfig(fractions=[0.5, 0.5, 0.0]), seed=3)
    runs = [{run for _, run in automatic[s]} for s in ("train", "validation")]
    assert len(runs[0]) == 2 and len(runs[1]) == 2 and not runs[0] & runs[1] and automatic["test"] == []
    # one dataset from two worlds, split by world: the training pairs all come from world 1
    manifest = build_dataset(
        [plane_world, other],
        tmp_path / "ds",
        small_dataset_config(
            train_pairs=6, validation_pairs=4, split=SplitConfig(by="world", train=[1], validation=[0])
        ),
    )
    assert set(manifest.pairs("train").root_index) == {1} and set(manifest.pairs("validation").root_index) == {0}
    item = PairDataset(manifest, "train")[0]
    expected = resized_rgb(other, tuple(manifest.pairs("train").source[0]), "left", 128, 96)
    assert torch.equal(item["image_source"], torch.from_numpy(expected).permute(2, 0, 1).float() / 255.0)
    with pytest.raises(ValueError, match="disjoint"):
        SplitConfig(train=[0, 1], validation=[1, 2])
    with pytest.raises(ValueError, match="not run ids"):
        resolve_splits(datasets, SplitConfig(train=[0, 7], validation=[2]), seed=0)
    with pytest.raises(ValueError, match="cannot fill"):
        resolve_splits(datasets[1:], SplitConfig(), seed=0)


def test_disparity_is_cached_once_and_items_are_consistent(plane_world, tmp_path):
    config = small_dataset_config(train_pairs=6, validation_pairs=2, split=SplitConfig(train=[0, 1], validation=[2, 3]))
    manifest = build_dataset([plane_world], tmp_path / "ds", config, cache_dir=tmp_path / "cache")
    cache = manifest.disparity_cache()
    files = sorted(cache.directory.rglob("*.npy"))
    assert len(files) == manifest.data["disparity"]["images"] > 0
    stamps = [f.stat().st_mtime_ns for f in files]
    assert cache.ensure([(0, (0, 0))]) == 0  # already cached: nothing recomputed
    build_dataset([plane_world], tmp_path / "ds2", config, cache_dir=tmp_path / "cache")
    assert [f.stat().st_mtime_ns for f in files] == stamps
    item = PairDataset(manifest, "train")[0]
    assert item["image_source"].shape == (3, 96, 128) and item["disparity_source"].shape == (1, 96, 128)
    assert float(item["image_source"].min()) >= 0.0 and float(item["image_source"].max()) <= 1.0
    # SGBM on the ground plane: the disparity of a valid pixel gives a point on the ground (z = 0 in world)
    rig = manifest.rig(0)
    disparity = cache.load(0, (0, 0))
    rows, cols = np.nonzero(np.isfinite(disparity) & (disparity > 0))
    searched = disparity[:, config.sgbm.num_disparities :]  # SGBM leaves the first num_disparities columns empty
    assert len(rows) > 0.5 * searched.size
    points, valid = rig.points_from_disparity(np.stack([cols, rows], 1), disparity[rows, cols])
    T_world_camera = UtiasDataset(plane_world).T_world_vehicle((0, 0)) @ rig.T_vehicle_camera
    heights = tf.transform_points(T_world_camera, points[valid])[:, 2]
    assert np.median(np.abs(heights)) < 0.1
    # resizing keeps the content (area averaging); a different aspect ratio is refused
    small = resized_rgb(plane_world, (0, 0), "left", 64, 48)
    full = resized_rgb(plane_world, (0, 0), "left", 128, 96)
    assert small.shape == (48, 64, 3) and abs(float(small.mean()) - float(full.mean())) < 1.0
    with pytest.raises(ValueError, match="aspect ratio"):
        resized_rgb(plane_world, (0, 0), "left", 64, 64)
