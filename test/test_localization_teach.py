"""Teach: keyframe selection by odometry distance / angle, bare frames skipped, bad input refused."""

import numpy as np
import pytest
from skimage import data

from dlvf_ros.features.backends import OrbBackend
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.localization.map_store import MapStore
from dlvf_ros.localization.teach import TeachConfig, Teacher, needs_keyframe


def test_keyframe_every_distance_or_angle():
    config = TeachConfig(keyframe_distance_m=1.0, keyframe_angle_deg=10.0)
    origin = transforms.from_xyz_rpy(3.0, 4.0, 0.0, yaw=1.0)
    assert needs_keyframe(None, origin, config)
    assert not needs_keyframe(origin, origin @ transforms.from_xyz_rpy(0.99, 0.0, 0.0), config)
    assert needs_keyframe(origin, origin @ transforms.from_xyz_rpy(0.6, 0.8, 0.0), config)
    assert not needs_keyframe(origin, origin @ transforms.from_xyz_rpy(0, 0, 0, yaw=np.deg2rad(9.9)), config)
    assert needs_keyframe(origin, origin @ transforms.from_xyz_rpy(0, 0, 0, yaw=np.deg2rad(10.1)), config)
    with pytest.raises(ValueError, match=r"TeachConfig.keyframe_distance_m must be in \[0.001, 1000.0\], got 0.0"):
        TeachConfig(keyframe_distance_m=0.0)


def test_a_step_of_exactly_the_keyframe_distance_counts_whatever_the_rounding():
    """Frames every 0.25 m give a keyframe every fourth frame, also when the poses come through quaternions and
    a 1 m step comes out at 0.9999999999999996 m (as it did in the teach node test)."""
    config = TeachConfig(keyframe_distance_m=1.0)
    T_world_odom = transforms.from_xyz_rpy(2.0, 1.0, 0.0, yaw=0.1)
    poses = []
    for y in np.arange(0.0, 4.01, 0.25):
        T = transforms.invert(T_world_odom) @ transforms.from_xyz_rpy(0.0, y, 0.0)
        poses.append(
            transforms.make_transform(
                transforms.rotation_from_quaternion(transforms.quaternion_from_rotation(T[:3, :3])), T[:3, 3]
            )
        )
    assert needs_keyframe(np.eye(4), transforms.from_xyz_rpy(np.nextafter(1.0, 0.0), 0.0, 0.0), config)
    assert not needs_keyframe(np.eye(4), transforms.from_xyz_rpy(1.0 - 1e-6, 0.0, 0.0), config)
    last, keyframes = None, []
    for i, T in enumerate(poses):
        if needs_keyframe(last, T, config):
            keyframes.append(i)
            last = T
    assert keyframes == [0, 4, 8, 12, 16]


def test_teacher_stores_textured_frames_and_skips_bare_ones(tmp_path):
    rig = StereoRig().scaled(256, 192)
    left = np.ascontiguousarray(data.astronaut()[::2, ::2][32:224])  # 256 wide, 192 high
    right = np.zeros_like(left)
    right[:, :-8] = left[:, 8:]  # a fronto-parallel scene 8 px of disparity away
    blank = np.full_like(left, 90)
    teacher = Teacher.create(tmp_path / "map", OrbBackend(), rig, TeachConfig(keyframe_distance_m=1.0))
    step = transforms.from_xyz_rpy(0.6, 0.0, 0.0)
    T = np.eye(4)
    stored = []
    for i, images in enumerate([(left, right), (left, right), (blank, blank), (left, right), (left, right)]):
        stored.append(teacher.add_frame(i * 10**8, *images, T) is not None)
        T = T @ step
    # 0: first; 1: 0.6 m (no); 2: 1.2 m but bare (skipped); 3: 1.8 m (yes); 4: 0.6 m after 3 (no)
    assert stored == [True, False, False, True, False]
    assert teacher.frames_skipped_few_points == 1 and teacher.frames_seen == 5
    store = MapStore.open(tmp_path / "map")
    keyframe = store.keyframe(1)
    np.testing.assert_allclose(keyframe.T_map_keyframe[0, 3], 1.8)
    depth = keyframe.points_camera[keyframe.valid, 2]
    assert len(depth) > 50 and np.median(np.abs(depth - rig.f * rig.baseline / 8)) < 0.1
    assert store.manifest["teach_parameters"]["keyframe_distance_m"] == 1.0
    with pytest.raises(ValueError, match="earlier than"):
        teacher.add_frame(0, left, right, T)
    bad = T.copy()
    bad[1, 3] = np.inf
    with pytest.raises(ValueError, match="T_odom_vehicle"):
        teacher.add_frame(10**9, left, right, bad)
    with pytest.raises(ValueError, match="does not match the calibration"):
        teacher.add_frame(10**9, left[:100], right[:100], T @ step @ step)
