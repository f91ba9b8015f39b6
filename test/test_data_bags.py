"""rosbag2 run bags: write -> read round trips (rosbags, both storages; mcap_ros2 for mcap), atomic writes, errors."""

from __future__ import annotations

import dataclasses
import sqlite3

import numpy as np
import pytest
from run_frames import Frame

from dlvf_ros.data.bags import BagTopics, PoseTrack, read_stereo_bag, write_run_bag
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig

RIG = StereoRig().scaled(64, 48)
SPEED_MPS, YAW_RATE_RADPS, PERIOD_NS = 1.5, 0.2, 200_000_000
T0_NS = 1_700_000_000_123_456_789


def arc_pose(t_s: float) -> np.ndarray:
    """Constant forward speed and yaw rate (a circle) from the origin."""
    radius = SPEED_MPS / YAW_RATE_RADPS
    yaw = YAW_RATE_RADPS * t_s
    return transforms.from_xyz_rpy(radius * np.sin(yaw), radius * (1.0 - np.cos(yaw)), 0.0, yaw=yaw)


def make_frames(n: int, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    T_world_odom = transforms.from_xyz_rpy(10.0, -3.0, 0.5, yaw=0.7)
    frames = []
    for i in range(n):
        stamp_ns = T0_NS + i * PERIOD_NS
        T_odom = arc_pose(i * PERIOD_NS * 1e-9)
        frames.append(
            Frame(
                i,
                stamp_ns,
                rng.integers(0, 256, (RIG.height, RIG.width, 3), dtype=np.uint8),
                rng.integers(0, 256, (RIG.height, RIG.width, 3), dtype=np.uint8),
                T_world_odom @ T_odom @ transforms.from_xyz_rpy(0.0, 0.01 * i, 0.0),
                T_odom,
            )
        )
    return frames


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_through_rosbags(tmp_path, storage):
    frames = make_frames(6)
    bag = write_run_bag(tmp_path / "run", iter(frames), RIG, storage=storage)
    assert bag == tmp_path / "run" and (bag / "metadata.yaml").is_file()
    assert (bag / f"run.{'mcap' if storage == 'mcap' else 'db3'}").is_file()
    rig, stereo = read_stereo_bag(bag)
    assert rig.matches(RIG, tol=1e-9)
    np.testing.assert_allclose(rig.T_vehicle_camera, RIG.T_vehicle_camera, atol=1e-12)
    read = list(stereo)
    assert [f.stamp_ns for f in read] == [f.stamp_ns for f in frames]
    for got, want in zip(read, frames):
        assert got.left.dtype == np.uint8 and got.left.shape == (RIG.height, RIG.width, 3)
        assert np.array_equal(got.left, want.left) and np.array_equal(got.right, want.right)
        np.testing.assert_allclose(got.T_odom_vehicle, want.T_odom_vehicle, atol=1e-12)
        np.testing.assert_allclose(got.T_world_vehicle, want.T_world_vehicle, atol=1e-12)
    if storage == "sqlite3":
        with sqlite3.connect(bag / "run.db3") as db:
            counts = dict(
                db.execute(
                    "SELECT topics.name, COUNT(*) FROM messages JOIN topics ON topics.id = messages.topic_id "
                    "GROUP BY topics.name"
                ).fetchall()
            )
        assert counts["/tf_static"] == 1 and counts["/odom"] == 6 and counts["/stereo/right/image_raw"] == 6


def test_messages_read_back_with_mcap_ros2_support(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    frames = make_frames(5)
    bag = write_run_bag(tmp_path / "bag", frames, RIG)
    messages: dict[str, list] = {}
    log_times: dict[str, list] = {}
    with open(bag / "bag.mcap", "rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for _, channel, message, ros_msg in reader.iter_decoded_messages():
            messages.setdefault(channel.topic, []).append(ros_msg)
            log_times.setdefault(channel.topic, []).append(message.log_time)
    assert set(messages) == {
        "/stereo/left/image_raw",
        "/stereo/right/image_raw",
        "/stereo/left/camera_info",
        "/stereo/right/camera_info",
        "/odom",
        "/ground_truth/pose",
        "/tf_static",
    }
    stamps = [f.stamp_ns for f in frames]
    for topic in ("/stereo/left/image_raw", "/stereo/right/camera_info", "/odom", "/ground_truth/pose"):
        header_stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in messages[topic]]
        assert header_stamps == stamps and log_times[topic] == stamps
    left = messages["/stereo/left/image_raw"][2]
    assert (left.encoding, left.height, left.width, left.step, left.header.frame_id) == (
        "rgb8",
        RIG.height,
        RIG.width,
        RIG.width * 3,
        "camera_left_optical",
    )
    assert np.array_equal(np.frombuffer(bytes(left.data), np.uint8).reshape(RIG.height, RIG.width, 3), frames[2].left)
    right_info = messages["/stereo/right/camera_info"][0]
    assert right_info.header.frame_id == "camera_right_optical"
    assert right_info.p[3] == pytest.approx(-RIG.f * RIG.baseline) and right_info.p[0] == pytest.approx(RIG.f)
    assert messages["/stereo/left/camera_info"][0].p[3] == 0.0
    odom = messages["/odom"][2]
    assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")
    assert odom.twist.twist.linear.x == pytest.approx(SPEED_MPS, rel=1e-9)
    assert odom.twist.twist.angular.z == pytest.approx(YAW_RATE_RADPS, rel=1e-9)
    assert abs(odom.twist.twist.linear.y) < 1e-9
    pose_cov = np.array(odom.pose.covariance).reshape(6, 6)
    assert np.all(np.diag(pose_cov) > 0) and np.allclose(pose_cov, pose_cov.T)
    assert pose_cov[0, 0] > np.array(messages["/odom"][0].pose.covariance)[0]  # uncertainty grows with distance
    truth = messages["/ground_truth/pose"][4]
    assert truth.header.frame_id == "world"
    assert truth.pose.position.x == pytest.approx(frames[4].T_world_vehicle[0, 3])
    (tf,) = messages["/tf_static"]
    by_child = {t.child_frame_id: t for t in tf.transforms}
    assert {t.header.frame_id for t in tf.transforms} == {"base_link"}
    right_xyz = by_child["camera_right_optical"].transform.translation
    expected = transforms.transform_points(RIG.T_vehicle_camera, [[RIG.baseline, 0.0, 0.0]])[0]
    np.testing.assert_allclose([right_xyz.x, right_xyz.y, right_xyz.z], expected, atol=1e-12)


def test_killed_writer_leaves_no_bag(tmp_path):
    def frames_then_crash():
        yield from make_frames(3)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_run_bag(tmp_path / "bag", frames_then_crash(), RIG)
    assert list(tmp_path.iterdir()) == []


def test_existing_bag_and_bad_frames(tmp_path):
    frames = make_frames(3)
    write_run_bag(tmp_path / "bag", frames, RIG, storage="sqlite3")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_run_bag(tmp_path / "bag", frames, RIG)
    write_run_bag(tmp_path / "bag", frames[:2], RIG, overwrite=True)
    assert len(list(read_stereo_bag(tmp_path / "bag")[1])) == 2
    with pytest.raises(ValueError, match="does not increase"):
        write_run_bag(tmp_path / "b2", [frames[1], frames[0]], RIG)
    with pytest.raises(ValueError, match=r"left image is uint8 \(48, 10, 3\)"):
        write_run_bag(tmp_path / "b3", [dataclasses.replace(frames[0], left=frames[0].left[:, :10])], RIG)
    with pytest.raises(ValueError, match="unsupported bag storage 'rosbag1'"):
        write_run_bag(tmp_path / "b4", frames, RIG, storage="rosbag1")
    with pytest.raises(ValueError, match="no frames"):
        write_run_bag(tmp_path / "b5", [], RIG)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]


def test_bag_without_tf_static_or_ground_truth(tmp_path):
    frames = [dataclasses.replace(f, T_world_vehicle=None) for f in make_frames(3)]
    write_run_bag(tmp_path / "bag", frames, RIG, topics=BagTopics(tf_static="/tf_elsewhere"))
    with pytest.raises(ValueError, match="no base_link -> camera_left_optical transform on /tf_static"):
        read_stereo_bag(tmp_path / "bag")
    T_vehicle_camera = transforms.from_xyz_rpy(0.5, 0.0, 1.2)
    rig, stereo = read_stereo_bag(tmp_path / "bag", T_vehicle_camera=T_vehicle_camera)
    assert np.array_equal(rig.T_vehicle_camera, T_vehicle_camera)
    assert all(f.T_world_vehicle is None and f.T_odom_vehicle is not None for f in stereo)
    with pytest.raises(ValueError, match=r"lacks topic\(s\) \['/cam/left'\]"):
        read_stereo_bag(tmp_path / "bag", topics=BagTopics(left_image="/cam/left"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_stereo_bag(tmp_path / "nothing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metadata.yaml").write_text("rosbag2_bagfile_information: [\n")
    with pytest.raises(ValueError, match="broken cannot be read"):
        read_stereo_bag(tmp_path / "broken")


def test_pose_track_interpolates_and_extrapolates_only_nearby():
    stamps = [0, 100_000_000, 200_000_000]
    track = PoseTrack(stamps, [arc_pose(t * 1e-9) for t in stamps], tolerance_ns=20_000_000)
    for t_ns in (0, 30_000_000, 150_000_000, 200_000_000):
        np.testing.assert_allclose(track.at(t_ns)[:3, :3], arc_pose(t_ns * 1e-9)[:3, :3], atol=1e-12)
    # translation is interpolated linearly: exact at the ends, within the chord error in between
    assert np.linalg.norm(track.at(50_000_000)[:3, 3] - arc_pose(0.05)[:3, 3]) < 1e-3
    np.testing.assert_allclose(track.at(-10_000_000), arc_pose(0.0))
    assert track.at(-30_000_000) is None and track.at(230_000_000) is None
    assert PoseTrack([], []).at(0) is None


def test_messages_that_do_not_decode_are_counted_and_a_storage_failing_part_way_is_a_bag_error(tmp_path):
    import struct
    from collections import Counter
    from types import SimpleNamespace

    from dlvf_ros.data.bag_format import BagError
    from dlvf_ros.data.bag_reader import _messages

    odom = SimpleNamespace(topic="/odom", msgtype="nav_msgs/msg/Odometry")

    class Reader:
        def messages(self, connections):
            yield odom, 1, b"good"
            yield odom, 2, b"bad"
            yield odom, 3, b"good"
            raise struct.error("unpack requires a buffer of 8 bytes")

        def deserialize(self, raw, msgtype):
            if raw == b"bad":
                raise UnicodeDecodeError("utf-8", raw, 0, 1, "invalid start byte")
            return raw

    skipped, received = Counter(), []
    with pytest.raises(BagError, match=r"bag .*b is corrupt or truncated after 3 message\(s\) \(error: unpack"):
        for _, message in _messages(Reader(), [odom], tmp_path / "b", skipped):
            received.append(message)
    assert received == [b"good", b"good"] and skipped == {"undecodable /odom message": 1}
