"""The compat equivalents of message_filters, tf2_ros and cv_bridge behave like the real packages."""

from __future__ import annotations

import importlib.util
import time
from types import SimpleNamespace

import numpy as np
import pytest

from dlvf_ros.ros import compat


def _msg(stamp_ns: int, label: str) -> SimpleNamespace:
    stamp = SimpleNamespace(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
    return SimpleNamespace(header=SimpleNamespace(stamp=stamp), label=label)


def _sync(n_inputs: int = 2, queue_size: int = 10, slop: float = 0.01):
    sources = [compat.SimpleFilter() for _ in range(n_inputs)]
    sync = compat.ApproximateTimeSynchronizer(sources, queue_size, slop)
    out: list[tuple[str, ...]] = []
    sync.registerCallback(lambda *msgs: out.append(tuple(m.label for m in msgs)))
    return sources, out


MS = 1_000_000


def test_pairs_within_slop_in_input_order():
    (left, right), out = _sync(slop=0.01)
    left.signalMessage(_msg(100 * MS, "L100"))
    assert out == []
    right.signalMessage(_msg(105 * MS, "R105"))
    assert out == [("L100", "R105")]
    right.signalMessage(_msg(200 * MS, "R200"))  # right first this time: output order still (left, right)
    left.signalMessage(_msg(200 * MS, "L200"))
    assert out[-1] == ("L200", "R200")


def test_outside_slop_is_not_matched_and_stays_queued():
    (left, right), out = _sync(slop=0.01)
    left.signalMessage(_msg(100 * MS, "L100"))
    right.signalMessage(_msg(120 * MS, "R120"))
    assert out == []
    left.signalMessage(_msg(121 * MS, "L121"))  # the queued R120 now has a partner
    assert out == [("L121", "R120")]


def test_closest_candidate_wins_and_out_of_order_arrivals_match():
    (left, right), out = _sync(slop=0.02)
    right.signalMessage(_msg(300 * MS, "R300"))
    right.signalMessage(_msg(285 * MS, "R285"))  # arrives late, older stamp
    left.signalMessage(_msg(296 * MS, "L296"))  # 4 ms from R300, 11 ms from R285
    assert out == [("L296", "R300")]
    left.signalMessage(_msg(283 * MS, "L283"))  # out of order on the left too: pairs with the remaining R285
    assert out[-1] == ("L283", "R285")


def test_matched_messages_are_consumed():
    (left, right), out = _sync(slop=0.01)
    left.signalMessage(_msg(100 * MS, "L100"))
    right.signalMessage(_msg(100 * MS, "R100"))
    right.signalMessage(_msg(101 * MS, "R101"))  # L100 was used: no second output
    assert out == [("L100", "R100")]


def test_queue_size_drops_oldest_stamp():
    (left, right), out = _sync(queue_size=2, slop=0.001)
    for t in (10, 20, 30):
        left.signalMessage(_msg(t * MS, f"L{t}"))
    right.signalMessage(_msg(10 * MS, "R10"))  # L10 was pushed out of the 2-deep queue
    assert out == []
    right.signalMessage(_msg(20 * MS, "R20"))
    assert out == [("L20", "R20")]


def test_same_stamp_replaces_and_the_spread_must_be_strictly_below_slop():
    (left, right), out = _sync(slop=0.001)
    left.signalMessage(_msg(50 * MS, "L50a"))
    left.signalMessage(_msg(50 * MS, "L50b"))
    right.signalMessage(_msg(51 * MS, "R51"))  # spread == slop: not matched (message_filters: spread < slop)
    assert out == []
    right.signalMessage(_msg(50 * MS, "R50"))
    assert out == [("L50b", "R50")]
    (left, right), out = _sync(slop=0.0)  # never matches, even identical stamps
    left.signalMessage(_msg(50 * MS, "L50"))
    right.signalMessage(_msg(50 * MS, "R50"))
    assert out == []


def test_three_inputs_need_total_spread_within_slop():
    (a, b, c), out = _sync(n_inputs=3, slop=0.01)
    a.signalMessage(_msg(100 * MS, "a100"))
    b.signalMessage(_msg(108 * MS, "b108"))
    c.signalMessage(_msg(92 * MS, "c92"))  # each within 10 ms of a, but spread 16 ms
    assert out == []
    c.signalMessage(_msg(104 * MS, "c104"))
    assert out == [("a100", "b108", "c104")]


def test_headerless_messages_are_dropped_by_default():
    (left, right), out = _sync(slop=0.01)
    left.signalMessage(SimpleNamespace(label="no header"))
    right.signalMessage(_msg(0, "R0"))
    assert out == []


@pytest.mark.parametrize("kwargs", [{"queue_size": 0, "slop": 0.1}, {"queue_size": 5, "slop": -1.0}])
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError, match="ApproximateTimeSynchronizer"):
        compat.ApproximateTimeSynchronizer([compat.SimpleFilter(), compat.SimpleFilter()], **kwargs)


def test_stamp_ns_of_accepts_message_stamps_and_rclpy_times():
    from rclpy.time import Time

    assert compat.stamp_ns_of(_msg(3_000_000_007, "x")) == 3_000_000_007
    assert compat.stamp_ns_of(SimpleNamespace(header=SimpleNamespace(stamp=Time(nanoseconds=42)))) == 42
    assert compat.stamp_ns_of(SimpleNamespace()) is None


def test_namespaces_expose_the_real_api_names():
    for name, attrs in {
        "message_filters": ("Subscriber", "ApproximateTimeSynchronizer"),
        "tf2_ros": ("TransformBroadcaster", "StaticTransformBroadcaster"),
        "cv_bridge": ("CvBridge", "CvBridgeError"),
    }.items():
        namespace = getattr(compat, name)
        real = importlib.util.find_spec(name) is not None
        assert (namespace is compat.FALLBACKS[name]) != real
        for attr in attrs:
            assert hasattr(namespace, attr), f"{name}.{attr}"
    assert "message_filters" in compat.describe()


class _FakeNode:
    """Records create_publisher calls and published messages (no DDS)."""

    def __init__(self):
        self.publishers = {}

    def create_publisher(self, msg_type, topic, qos):
        published = []
        self.publishers[topic] = (msg_type, qos, published)
        return SimpleNamespace(publish=published.append)


def _transform(child: str, x: float):
    from geometry_msgs.msg import TransformStamped

    t = TransformStamped()
    t.header.frame_id = "base_link"
    t.child_frame_id = child
    t.transform.translation.x = x
    t.transform.rotation.w = 1.0
    return t


@pytest.mark.skipif(importlib.util.find_spec("tf2_msgs") is None, reason="tf2_msgs not built (tools/build_tf2_msgs.sh)")
def test_transform_broadcasters_topics_qos_and_static_accumulation():
    from rclpy.qos import DurabilityPolicy

    node = _FakeNode()
    dynamic = compat.TransformBroadcaster(node)
    static = compat.StaticTransformBroadcaster(node)
    _, qos_tf, sent_tf = node.publishers["/tf"]
    _, qos_static, sent_static = node.publishers["/tf_static"]
    assert qos_tf.depth == 100
    assert qos_static.depth == 1 and qos_static.durability == DurabilityPolicy.TRANSIENT_LOCAL
    dynamic.sendTransform(_transform("a", 1.0))
    dynamic.sendTransform([_transform("a", 2.0), _transform("b", 3.0)])
    assert [len(m.transforms) for m in sent_tf] == [1, 2]
    static.sendTransform(_transform("camera_left_optical", 0.3))
    static.sendTransform(_transform("camera_right_optical", 0.5))
    static.sendTransform(_transform("camera_left_optical", 0.4))  # replaces the first one
    last = sent_static[-1]
    assert sorted((t.child_frame_id, t.transform.translation.x) for t in last.transforms) == [
        ("camera_left_optical", 0.4),
        ("camera_right_optical", 0.5),
    ]


@pytest.mark.skipif(importlib.util.find_spec("tf2_msgs") is not None, reason="tf2_msgs is installed")
def test_transform_broadcaster_without_tf2_msgs_names_the_fix():
    with pytest.raises(ImportError, match="build_tf2_msgs"):
        compat.TransformBroadcaster(_FakeNode())


def test_cv_bridge_round_trip_and_error():
    bridge = compat.CvBridge()
    rgb = (np.arange(4 * 6 * 3) % 251).astype(np.uint8).reshape(4, 6, 3)
    msg = bridge.cv2_to_imgmsg(rgb, "rgb8")
    assert (msg.width, msg.height, msg.encoding) == (6, 4, "rgb8")
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(msg, "rgb8"), rgb)
    bgr_msg = bridge.cv2_to_imgmsg(rgb[..., ::-1].copy(), "bgr8")
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(bgr_msg, "rgb8"), rgb)
    msg.encoding = "32FC7"
    with pytest.raises(compat.CvBridgeError, match="32FC7"):
        bridge.imgmsg_to_cv2(msg, "rgb8")


def test_subscriber_filter_over_dds_feeds_the_synchronizer():
    """Real rclpy: two Subscriber filters + the synchronizer pair Image messages published on two topics."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("compat_sync_test", context=context)
        left = compat.Subscriber(node, Image, "/compat_test/left", qos_profile=10)
        right = compat.Subscriber(node, Image, "/compat_test/right", qos_profile=10)
        sync = compat.ApproximateTimeSynchronizer([left, right], 5, 0.005)
        pairs = []
        sync.registerCallback(lambda a, b: pairs.append((a.header.frame_id, b.header.frame_id)))
        pub_left = node.create_publisher(Image, "/compat_test/left", 10)
        pub_right = node.create_publisher(Image, "/compat_test/right", 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and min(p.get_subscription_count() for p in (pub_left, pub_right)) < 1:
            executor.spin_once(timeout_sec=0.05)
        for i, (dt_left, dt_right) in enumerate([(0, 2), (0, 9)]):
            for pub, dt, frame in ((pub_left, dt_left, f"L{i}"), (pub_right, dt_right, f"R{i}")):
                msg = Image()
                msg.header.frame_id = frame
                msg.header.stamp.sec = 10 + i
                msg.header.stamp.nanosec = dt * MS
                pub.publish(msg)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and len(pairs) < 1:
            executor.spin_once(timeout_sec=0.05)
        for _ in range(10):
            executor.spin_once(timeout_sec=0.02)
        assert pairs == [("L0", "R0")]  # the second pair is 9 ms apart, over the 5 ms slop
        assert left.getTopic() == "/compat_test/left"
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


@pytest.mark.skipif(importlib.util.find_spec("message_filters") is None, reason="the real message_filters is not here")
def test_the_stand_in_synchronizer_matches_the_real_one():
    """The same arrivals (real builtin_interfaces stamps) through compat's and the real ApproximateTimeSynchronizer."""
    import message_filters
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import Image

    def arrivals(implementation, slop, sequence):
        sources = [implementation.SimpleFilter() for _ in range(3)]
        sync = implementation.ApproximateTimeSynchronizer(sources, 4, slop)
        out = []
        sync.registerCallback(lambda *msgs: out.append(tuple(m.header.frame_id for m in msgs)))
        for index, stamp_ms in sequence:
            msg = Image()
            msg.header.stamp = Time(sec=stamp_ms // 1000, nanosec=(stamp_ms % 1000) * MS)
            msg.header.frame_id = f"{index}@{stamp_ms}"
            sources[index].signalMessage(msg)
        return out

    rng = np.random.default_rng(3)
    sequences = [[(0, 1000), (1, 1010), (2, 1020), (2, 1005), (0, 2000), (1, 2000), (2, 2000)]]
    for _ in range(30):  # random arrivals: three inputs, stamps jittered around 100 ms frames, some late
        sequence = [
            (int(i), int(1000 + 100 * f + rng.integers(-12, 13))) for f in range(12) for i in rng.permutation(3)
        ]
        sequences.append(
            [sequence[j] for j in np.argsort(np.arange(len(sequence)) + rng.integers(0, 5, len(sequence)))]
        )
    for slop in (0.0, 0.01, 0.02, 0.05):
        for sequence in sequences:
            assert arrivals(compat, slop, sequence) == arrivals(message_filters, slop, sequence), (slop, sequence)
