"""StaticTransforms: chains composed from /tf_static messages, and a lookup that waits for late ones."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from tf2_msgs.msg import TFMessage

from dlvf_ros.geometry import transforms
from dlvf_ros.ros import conversions
from dlvf_ros.ros.static_transforms import StaticTransforms

T_BASE_CAMERA = transforms.from_xyz_rpy(0.3, 0.0, 1.0, -1.9, 0.0, -1.57)
T_CAMERA_RIGHT = transforms.from_xyz_rpy(0.24, 0.0, 0.0)


class _Node:
    """Stands in for an rclpy node: keeps the /tf_static callback so the test can deliver messages."""

    def create_subscription(self, msg_type, topic, callback, qos):
        assert msg_type.__name__ == "TFMessage" and topic == "/tf_static"
        self.deliver = callback


def _message() -> TFMessage:
    return TFMessage(
        transforms=[
            conversions.matrix_to_transform_stamped(T_BASE_CAMERA, 0, "base_link", "camera_left_optical"),
            conversions.matrix_to_transform_stamped(T_CAMERA_RIGHT, 0, "camera_left_optical", "camera_right_optical"),
        ]
    )


def test_lookup_composes_the_chain_and_names_missing_frames():
    node = _Node()
    static = StaticTransforms(node)
    with pytest.raises(LookupError, match=r"no base_link -> camera_right_optical transform .*known: none"):
        static.lookup("base_link", "camera_right_optical")
    node.deliver(_message())
    np.testing.assert_allclose(
        static.lookup("base_link", "camera_right_optical"), T_BASE_CAMERA @ T_CAMERA_RIGHT, atol=1e-12
    )
    with pytest.raises(LookupError, match="chassis -> camera_left_optical"):
        static.lookup("chassis", "camera_left_optical", wait_s=0.05)


def test_lookup_waits_for_a_transform_that_arrives_late():
    node = _Node()
    static = StaticTransforms(node)
    late = threading.Timer(0.2, node.deliver, args=(_message(),))
    start = time.monotonic()
    late.start()
    try:
        T = static.lookup("base_link", "camera_left_optical", wait_s=30.0)
    finally:
        late.cancel()
    np.testing.assert_allclose(T, T_BASE_CAMERA, atol=1e-12)
    assert time.monotonic() - start < 25.0  # woken by the message, not by the deadline
