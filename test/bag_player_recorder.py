"""Test helper (a real rclpy node in its own process): records what arrives on the stereo, /clock and /tf_static topics.

    python test/bag_player_recorder.py OUT.json [--ros-args ...]

Subscribes to /cam/left (the test remaps the player's left images there), /stereo/right/image_raw, /clock and
/tf_static (transient local). On SIGINT it writes OUT.json: per image its header stamp, frame id, size, a checksum
and the /clock value last seen before it; every /clock value; the static transforms.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import threading
from pathlib import Path

import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from tf2_msgs.msg import TFMessage

from dlvf_ros import fileio


def main() -> int:
    out = Path(remove_ros_args(sys.argv)[1])
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rclpy.init(args=sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("stereo_recorder")
    record = {"left": [], "right": [], "clock": [], "tf_static": []}
    last_clock = [None]

    def on_clock(msg: Clock) -> None:
        last_clock[0] = msg.clock.sec * 10**9 + msg.clock.nanosec
        record["clock"].append(last_clock[0])

    def on_image(side: str):
        def callback(msg: Image) -> None:
            record[side].append(
                {
                    "stamp_ns": msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec,
                    "frame_id": msg.header.frame_id,
                    "size": [msg.width, msg.height, msg.step],
                    "encoding": msg.encoding,
                    "sha256": hashlib.sha256(bytes(msg.data)).hexdigest(),
                    "clock_ns": last_clock[0],
                }
            )

        return callback

    def on_tf(msg: TFMessage) -> None:
        for t in msg.transforms:
            tr, q = t.transform.translation, t.transform.rotation
            record["tf_static"].append(
                {
                    "parent": t.header.frame_id,
                    "child": t.child_frame_id,
                    "xyz": [tr.x, tr.y, tr.z],
                    "xyzw": [q.x, q.y, q.z, q.w],
                }
            )

    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, "/cam/left", on_image("left"), reliable)
    node.create_subscription(Image, "/stereo/right/image_raw", on_image("right"), reliable)
    node.create_subscription(Clock, "/clock", on_clock, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    node.create_subscription(
        TFMessage,
        "/tf_static",
        on_tf,
        QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE),
    )
    try:
        while not stop.is_set() and rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        fileio.atomic_write_text(out, json.dumps(record))
        node.destroy_node()
        rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
