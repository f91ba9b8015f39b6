"""The static transforms a node needs (e.g. base_link -> camera_left_optical), from /tf_static.

Subscribes /tf_static like tf2's static listener (reliable, transient local, depth 100) and keeps the latest
transform per child frame; `lookup(parent, child, wait_s)` composes the chain from child up to parent, waiting up to
`wait_s` for it (the first images can arrive before the latched transforms do).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from dlvf_ros.data import msg_codec
from dlvf_ros.ros.compat import TF2_MSGS_HINT

STATIC_QOS = QoSProfile(
    depth=100,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
)


class StaticTransforms:
    """Latest /tf_static transform per child frame; thread-safe lookups."""

    def __init__(self, node) -> None:
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError as exc:
            raise ImportError(TF2_MSGS_HINT) from exc
        self._changed = threading.Condition()  # guards _by_child; notified on each message
        self._by_child: dict[str, Any] = {}  # child frame -> geometry_msgs/TransformStamped
        node.create_subscription(TFMessage, "/tf_static", self._on_message, STATIC_QOS)

    def _on_message(self, msg) -> None:
        with self._changed:
            for t in msg.transforms:
                self._by_child[t.child_frame_id.lstrip("/")] = t
            self._changed.notify_all()

    def lookup(self, parent: str, child: str, wait_s: float = 0.0) -> np.ndarray:
        """T_parent_child, waiting up to `wait_s` (s) for /tf_static to connect the frames; LookupError naming them
        when it still does not. Call it from a thread other than the one that receives /tf_static."""
        deadline = time.monotonic() + wait_s
        parent, child = parent.lstrip("/"), child.lstrip("/")
        with self._changed:
            while True:
                try:
                    return self._compose(parent, child)
                except LookupError:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0.0:
                        raise
                    self._changed.wait(remaining)

    def _compose(self, parent: str, child: str) -> np.ndarray:
        """T_parent_child from the transforms held (the caller holds the lock); LookupError when not connected."""
        by_child = dict(self._by_child)
        T_parent_child, frame = np.eye(4), child
        while frame != parent:
            t = by_child.pop(frame, None)  # popped: a cycle ends the walk
            if t is None:
                known = sorted(f"{m.header.frame_id} -> {m.child_frame_id}" for m in self._by_child.values())
                raise LookupError(
                    f"no {parent} -> {child} transform on /tf_static (known: {known or 'none'}); "
                    "publish the camera extrinsic (robot_state_publisher or a static transform)"
                )
            T_parent_child = msg_codec.transform_to_matrix(t.transform) @ T_parent_child
            frame = t.header.frame_id.lstrip("/")
        return T_parent_child
