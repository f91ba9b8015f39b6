"""Node building blocks without DDS: parameters from config dataclasses and reading them at start-up, the worker
mailbox, the odometry buffer and its message input, the stereo input watchdog's explanations and decoding errors."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest

from dlvf_ros.config import setting
from dlvf_ros.geometry import transforms
from dlvf_ros.ros.node_base import FrameWorker
from dlvf_ros.ros.node_main import StartupError
from dlvf_ros.ros.node_parameters import (
    ParameterError,
    ParameterSpec,
    config_from_parameters,
    node_parameter_specs,
    parameter_file_text,
    read_node_configs,
    specs_from_config,
    yaml_parameters,
)
from dlvf_ros.ros.odometry_buffer import OdometryBuffer, OdometryLookupError, add_odometry_message


@dataclass
class _Inner:
    gain: float = setting(0.5, "gain", (0.0, 1.0))
    mode: str = setting("a", "mode")


@dataclass
class _Outer:
    count: int = setting(3, "how many", (0, 10))  # 0 is in range, and __post_init__ refuses it
    inner: _Inner = field(default_factory=lambda: _Inner(gain=0.25))
    start: int | None = setting(None, "first id", (-1, 100), none_value=-1)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")


@dataclass
class _Bare:
    """A config whose fields lack descriptions (a knob added without one)."""

    mode: str = "a"
    start: int | None = None


def test_specs_follow_the_instance_defaults_nested_names_and_none_values():
    specs = {s.name: s for s in specs_from_config(_Outer(), "p.")}
    assert specs["p.inner.gain"].default == 0.25  # the instance's value, not _Inner's class default
    assert specs["p.start"].default == -1 and "-1: none" in specs["p.start"].description
    descriptor = specs["p.inner.gain"].descriptor()
    assert descriptor.read_only and descriptor.floating_point_range[0].to_value == 1.0
    assert descriptor.description == "gain"
    assert specs["p.count"].descriptor().integer_range[0].from_value == 0
    assert not specs["p.inner.mode"].descriptor().integer_range


def test_config_from_parameters_rebuilds_and_validates():
    values = {"p.count": 5, "p.inner.gain": 0.75, "p.inner.mode": "b", "p.start": -1, "other": 1}
    config = config_from_parameters(_Outer, values, "p.")
    assert config == _Outer(5, _Inner(0.75, "b"), None)
    assert config_from_parameters(_Outer, {**values, "p.start": 7}, "p.").start == 7
    with pytest.raises(ParameterError, match="count must be >= 1"):
        config_from_parameters(_Outer, {**values, "p.count": 0}, "p.")
    with pytest.raises(ParameterError, match=r"count: 11 is outside its range \[0, 10\]"):
        config_from_parameters(_Outer, {**values, "p.count": 11}, "p.")


def test_undocumented_field_is_declared_and_marked_and_bad_specs_are_errors():
    with pytest.raises(ParameterError, match="p.start"):  # None without a none_value has no parameter type
        specs_from_config(_Bare(), "p.")
    specs = {s.name: s for s in specs_from_config(_Bare(start=4), "p.")}
    assert specs["p.mode"].description == "undocumented: _Bare.mode" and specs["p.mode"].default == "a"
    with pytest.raises(ValueError, match="outside"):
        ParameterSpec("x", 5, "five", 0, 1)


def test_read_node_configs_declares_builds_each_config_and_names_the_params_file():
    @dataclass
    class _Node:
        name: str = setting("x", "a name")

    class FakeNode:
        def __init__(self, overrides):
            self.overrides, self.declared = overrides, {}

        def declare_parameter(self, name, default, descriptor):
            self.declared[name] = self.overrides.get(name, default)

        def get_parameter(self, name):
            return SimpleNamespace(value=self.declared[name])

    configs = [(_Node, ""), (_Outer, "p.")]
    specs = node_parameter_specs(configs)
    node = FakeNode({"p.count": 4})
    node_config, outer = read_node_configs(node, "some_node", configs)
    assert node_config == _Node() and outer == _Outer(4, _Inner(0.25, "a"), None)
    assert set(node.declared) == {spec.name for spec in specs}
    with pytest.raises(StartupError, match=r"some_node: bad parameter: .*count must be >= 1.*config/some_node.yaml"):
        read_node_configs(FakeNode({"p.count": 0}), "some_node", [(_Outer, "p.")])


def test_parameter_file_holds_every_default_with_its_description(tmp_path):
    specs = node_parameter_specs([(_Outer, "p.")])
    text = parameter_file_text("some_node", specs, "a header\nover two lines")
    assert text.startswith("# a header\n# over two lines\n")
    assert "    p:\n      # how many [0, 10]\n      count: 3\n" in text
    path = tmp_path / "p.yaml"
    path.write_text(text)
    assert yaml_parameters(path, "some_node") == {spec.name: spec.default for spec in specs}


def test_frame_worker_one_slot_mailbox_keeps_the_newest_and_stops_without_draining():
    release, processed = threading.Event(), []
    worker = FrameWorker("w", 1, lambda item: (release.wait(60.0), processed.append(item)), drain_on_stop=False)
    worker.start()
    assert not worker.put(1)
    deadline = time.monotonic() + 60.0
    while worker._items and time.monotonic() < deadline:  # the worker takes item 1 and blocks on it
        time.sleep(0.01)
    assert not worker.put(2) and worker.put(3)  # 2 is stale once 3 arrives
    threading.Timer(0.2, release.set).start()
    assert worker.stop(timeout_s=60.0) == 1  # 3 was still in the mailbox: abandoned
    assert processed == [1]


def test_frame_worker_queue_drops_the_oldest_and_drains_on_stop():
    release, processed = threading.Event(), []
    worker = FrameWorker("w", 2, lambda item: (release.wait(60.0), processed.append(item)), drain_on_stop=True)
    worker.start()
    worker.put(1)
    deadline = time.monotonic() + 60.0
    while worker._items and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [worker.put(i) for i in (2, 3, 4)] == [False, False, True]  # 2 dropped: the queue holds 3, 4
    release.set()
    assert worker.stop(timeout_s=60.0) == 0
    assert processed == [1, 3, 4]


def test_yaml_parameters_flattens_nested_names(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "/**/node:\n  ros__parameters:\n    a: 1\n    b:\n      c: 2.0\nother:\n  ros__parameters:\n    z: 3\n"
    )
    assert yaml_parameters(path, "node") == {"a": 1, "b.c": 2.0}


def _T(x: float, yaw: float = 0.0) -> np.ndarray:
    return transforms.from_xyz_rpy(x, 0.0, 0.0, yaw=yaw)


def test_odometry_buffer_interpolates_holds_and_names_gaps():
    buffer = OdometryBuffer(horizon_s=5.0, max_gap_s=0.5, max_hold_s=0.1)
    with pytest.raises(OdometryLookupError, match="no odometry received"):
        buffer.lookup(0)
    buffer.add(1_000_000_000, _T(1.0))
    buffer.add(1_200_000_000, _T(2.0, yaw=0.2))
    np.testing.assert_allclose(buffer.lookup(1_100_000_000)[:3, 3], [1.5, 0, 0])
    assert transforms.yaw_of(buffer.lookup(1_100_000_000)) == pytest.approx(0.1)
    np.testing.assert_allclose(buffer.lookup(1_250_000_000), _T(2.0, yaw=0.2))  # held: 50 ms past the newest
    with pytest.raises(OdometryLookupError, match="older than the image"):
        buffer.lookup(1_400_000_000)
    with pytest.raises(OdometryLookupError, match="older than the odometry history"):
        buffer.lookup(900_000_000)
    buffer.add(2_000_000_000, _T(3.0))  # 0.8 s gap
    with pytest.raises(OdometryLookupError, match="gap"):
        buffer.lookup(1_600_000_000)
    buffer.add(500_000_000, _T(0.0))  # time went backwards (bag restarted): history cleared
    assert len(buffer) == 1


def test_odometry_messages_are_added_or_refused_naming_the_stamp():
    from dlvf_ros.ros import conversions

    buffer = OdometryBuffer(horizon_s=5.0, max_gap_s=0.5, max_hold_s=0.1)
    add_odometry_message(buffer, conversions.matrix_to_odometry(_T(1.0), 1_500_000_000), "odom", "base_link")
    assert len(buffer) == 1
    np.testing.assert_allclose(buffer.lookup(1_500_000_000), _T(1.0), atol=1e-12)
    bad = conversions.matrix_to_odometry(_T(2.0), 1_600_000_000)
    bad.pose.pose.position.x = float("nan")
    with pytest.raises(ValueError, match=r"odometry message at 1\.600 s ignored: invalid translation"):
        add_odometry_message(buffer, bad, "odom", "base_link")
    other = conversions.matrix_to_odometry(_T(2.0), 1_600_000_000, frame_id="world", child_frame_id="base_link")
    with pytest.raises(ValueError, match=r"it is 'world' -> 'base_link', expected 'odom' -> 'base_link'"):
        add_odometry_message(buffer, other, "odom", "base_link")
    assert len(buffer) == 1


def test_odometry_buffer_waits_for_a_late_sample():
    buffer = OdometryBuffer(horizon_s=5.0, max_gap_s=0.5, max_hold_s=0.0)
    buffer.add(1_000_000_000, _T(1.0))
    threading.Timer(0.1, buffer.add, args=(1_100_000_000, _T(2.0))).start()
    started = time.monotonic()
    # a wait limit far beyond any scheduling delay of a loaded machine: returning well before it shows that the
    # lookup wakes on the sample's arrival instead of sleeping out its limit
    np.testing.assert_allclose(buffer.lookup(1_100_000_000, wait_s=60.0)[:3, 3], [2.0, 0, 0])
    assert time.monotonic() - started < 30.0


def test_decode_stereo_names_the_bad_input():
    from dlvf_ros.geometry.camera import StereoRig
    from dlvf_ros.ros import conversions
    from dlvf_ros.ros.stereo_input import StereoInputError, decode_stereo

    rig = StereoRig().scaled(64, 48)
    left_info, right_info = conversions.rig_to_camera_infos(rig, 5)
    image = np.zeros((48, 64, 3), np.uint8)
    left = conversions.array_to_image(image, "rgb8", 5)
    frame = decode_stereo(
        left, conversions.array_to_image(image[..., 0].copy(), "mono8", 5), left_info, right_info, rig.T_vehicle_camera
    )
    assert frame.stamp_ns == 5 and frame.right_rgb.shape == (48, 64, 3) and frame.rig.matches(rig)
    small = conversions.array_to_image(np.zeros((24, 32, 3), np.uint8), "rgb8", 5)
    with pytest.raises(StereoInputError, match="differ in size"):
        decode_stereo(left, small, left_info, right_info, rig.T_vehicle_camera)
    other_left, other_right = conversions.rig_to_camera_infos(rig.scaled(32, 24), 5)
    with pytest.raises(StereoInputError, match="camera_info is for 32x24"):
        decode_stereo(left, left, other_left, other_right, rig.T_vehicle_camera)
    bad = conversions.array_to_image(image, "rgb8", 5)
    bad.encoding = "bayer_rggb8"
    with pytest.raises(StereoInputError, match="left image.*bayer_rggb8"):
        decode_stereo(bad, left, left_info, right_info, rig.T_vehicle_camera)
    right_info.p = [0.0] * 12
    with pytest.raises(StereoInputError, match="camera_info"):
        decode_stereo(left, left, left_info, right_info, rig.T_vehicle_camera)


def test_watchdog_explains_missing_and_unsynchronised_inputs():
    from dlvf_ros.ros.stereo_input import StereoInput

    subscriptions = []
    node = SimpleNamespace(create_subscription=lambda *a, **k: subscriptions.append(a) or SimpleNamespace())
    stereo = StereoInput(node, lambda *msgs: None, queue_size=5, slop_s=0.01)
    assert len(subscriptions) == 4
    assert "no stereo input at all" in stereo.explain_silence()

    def msg(stamp_ns):  # real stamps: the real message_filters reads them with rclpy.time.Time.from_msg
        from builtin_interfaces.msg import Time
        from sensor_msgs.msg import CameraInfo

        info = CameraInfo()
        info.header.stamp = Time(sec=0, nanosec=stamp_ns)
        return info

    for index in (0, 1, 3):  # no left camera_info
        stereo._subscribers[index].signalMessage(msg(1000))
    assert stereo.explain_silence().startswith("missing left camera_info (stereo/left/camera_info)")
    stereo._subscribers[2].signalMessage(msg(50_000_000))  # 50 ms after the others
    assert "never within slop 0.010 s" in stereo.explain_silence()
    assert "0.050 s" in stereo.explain_silence()
    assert stereo.synchronised_sets == 0


def test_watchdog_warns_after_the_silence_and_logs_once_per_silence():
    from dlvf_ros.ros.stereo_input import StereoInput

    node = SimpleNamespace(create_subscription=lambda *a, **k: SimpleNamespace())
    stereo = StereoInput(node, lambda *msgs: None, queue_size=5, slop_s=0.01)
    warnings = []
    logger = SimpleNamespace(warning=warnings.append)
    silent_s, warning = stereo.watchdog(3.0, logger)
    assert silent_s < 3.0 and warning is None and not warnings
    stereo._last_sync_monotonic -= 10.0
    silent_s, warning = stereo.watchdog(3.0, logger)
    assert silent_s >= 10.0 and warning.startswith("no synchronised stereo set for 10.")
    assert "no stereo input at all" in warning and warnings == [warning]
    assert stereo.watchdog(3.0, logger)[1] is not None and len(warnings) == 1  # logged once per silence
    stereo._synchronised(None, None, None, None)  # a set arrives: the next silence is logged again
    assert stereo.watchdog(3.0, logger)[1] is None
    stereo._last_sync_monotonic -= 10.0
    assert stereo.watchdog(3.0, logger)[1] is not None and len(warnings) == 2


def test_unknown_parameters_name_the_closest_declared_one():
    from dlvf_ros.ros.node_parameters import unknown_parameters

    declared = ["localizer.ransac.iterations", "teach.keyframe_distance_m", "map_path"]
    given = ["map_path", "localizer.ransac.iteratons", "teach.keyframe_distanse_m", "zzz", "qos_overrides./x.depth"]
    assert unknown_parameters(given, declared) == [
        "localizer.ransac.iteratons (did you mean localizer.ransac.iterations?)",
        "teach.keyframe_distanse_m (did you mean teach.keyframe_distance_m?)",
        "zzz",
    ]
    assert unknown_parameters(declared, declared) == []


def test_odometry_from_tf_takes_only_the_odom_to_base_link_transform():
    from tf2_msgs.msg import TFMessage

    from dlvf_ros.ros import conversions
    from dlvf_ros.ros.odometry_buffer import add_tf_message

    buffer = OdometryBuffer(horizon_s=5.0, max_gap_s=0.5, max_hold_s=0.1)
    message = TFMessage(
        transforms=[
            conversions.matrix_to_transform_stamped(_T(5.0), 1_000_000_000, "map", "odom"),  # not odometry
            conversions.matrix_to_transform_stamped(_T(1.0), 1_000_000_000, "odom", "base_link"),
            conversions.matrix_to_transform_stamped(_T(9.0), 1_000_000_000, "base_link", "camera"),
        ]
    )
    add_tf_message(buffer, message, "odom", "base_link")
    assert len(buffer) == 1
    np.testing.assert_allclose(buffer.lookup(1_000_000_000), _T(1.0), atol=1e-12)
    bad = conversions.matrix_to_transform_stamped(_T(2.0), 1_100_000_000, "/odom", "base_link")
    bad.transform.rotation.w = float("nan")
    with pytest.raises(ValueError, match=r"/tf odom -> base_link at 1\.100 s ignored"):
        add_tf_message(buffer, TFMessage(transforms=[bad]), "odom", "base_link")
    assert len(buffer) == 1
