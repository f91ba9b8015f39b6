"""`bag_player`: play a rosbag2 bag (mcap or sqlite3) into a live ROS 2 graph, with /clock from bag time.

    bag_player BAG [--rate R] [--delay S] [--wait-for TOPIC ...] [--wait-timeout S] [--topics TOPIC ...]
               [--no-clock] [--clock-hz HZ] [--ros-args -r /stereo/left/image_raw:=/cam/left ...]

The raw CDR bytes of each message are published unchanged (`publisher.publish(bytes)`), so header stamps are the
bag's; the message at bag time t is sent at wall time start + (t - t_first) / rate. /clock (rosgraph_msgs/Clock)
carries the bag time: before every message and at --clock-hz in between. Topics recorded as transient local
(/tf_static) are published transient local. Topics are remapped with --ros-args. Exits 0 at the end of the bag
(after the readers acknowledged the last messages, up to 3 s) or on SIGINT/SIGTERM, 1 on an error.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Collection

NODE_NAME = "bag_player"
ACK_TIMEOUT_S = 3.0  # reliable readers acknowledge on Fast DDS heartbeats (every 3 s by default)


class BagPlayerError(RuntimeError):
    """The bag cannot be played (missing, unreadable, no playable topic, readers never came)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bag_player", description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", type=Path, help="rosbag2 bag directory (or .mcap / .db3 file)")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before playing (default 0)")
    parser.add_argument(
        "--wait-for",
        nargs="+",
        default=[],
        metavar="TOPIC",
        help="bag topics that must have a subscriber before playback starts",
    )
    parser.add_argument(
        "--wait-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for --wait-for subscribers before giving up (exit 1)",
    )
    parser.add_argument("--topics", nargs="+", default=None, metavar="TOPIC", help="play only these bag topics")
    parser.add_argument("--no-clock", action="store_true", help="do not publish /clock")
    parser.add_argument("--clock-hz", type=float, default=100.0, help="/clock rate between messages (default 100)")
    return parser


def message_class(msgtype: str, installed: Collection[str], where: str) -> Any:
    """rclpy message class of a bag's 'pkg/msg/Name'; BagPlayerError naming the fix when the string is malformed or
    its package is not one of the `installed` ROS interface packages (checked before anything is imported)."""
    from dlvf_ros.data.bag_format import BagError, check_message_type

    try:
        package, name = check_message_type(msgtype, installed, where)
    except BagError as exc:
        hint = " (run `bash tools/build_tf2_msgs.sh .venv`)" if msgtype.startswith("tf2_msgs/") else ""
        raise BagPlayerError(f"{exc}{hint}") from exc
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as exc:
        raise BagPlayerError(f"{where}: message type {msgtype} cannot be imported: {exc}") from exc


def _qos_for(connection) -> Any:
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    offered = list(getattr(connection.ext, "offered_qos_profiles", []) or [])
    latched = connection.topic == "/tf_static" or any(q.durability.name == "TRANSIENT_LOCAL" for q in offered)
    if latched:
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=max(1, connection.msgcount),
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)


class BagPlayer:
    """Publishes the messages of one bag on a node; `run(stop)` plays it once."""

    def __init__(self, node: Any, args: argparse.Namespace) -> None:
        from rosbags.rosbag2 import Reader, ReaderError
        from rosgraph_msgs.msg import Clock

        from dlvf_ros.data.bag_format import installed_interface_packages

        if args.rate <= 0:
            raise BagPlayerError(f"--rate must be positive, got {args.rate}")
        if args.clock_hz <= 0:
            raise BagPlayerError(f"--clock-hz must be positive, got {args.clock_hz}")
        path = args.bag.parent if args.bag.suffix in (".mcap", ".db3") else args.bag
        if not (path / "metadata.yaml").is_file():
            raise BagPlayerError(f"{args.bag} is not a rosbag2 bag (no {path / 'metadata.yaml'})")
        self.node, self.args = node, args
        try:
            self.reader = Reader(path)
            self.reader.open()
        except ReaderError as exc:
            raise BagPlayerError(f"cannot read bag {path}: {exc}") from exc
        wanted = set(args.topics) if args.topics else None
        known = {c.topic for c in self.reader.connections}
        for topic in sorted(wanted or set()):
            if topic not in known:
                raise BagPlayerError(f"topic {topic} is not in {path}; it has {sorted(known)}")
        self.publishers: dict[int, Any] = {}
        by_topic: dict[str, Any] = {}
        installed = installed_interface_packages()
        for connection in self.reader.connections:
            if wanted is not None and connection.topic not in wanted:
                continue
            if connection.topic not in by_topic:
                by_topic[connection.topic] = node.create_publisher(
                    message_class(connection.msgtype, installed, f"bag {path}, topic {connection.topic}"),
                    connection.topic,
                    _qos_for(connection),
                )
            self.publishers[connection.id] = by_topic[connection.topic]
        if not self.publishers:
            raise BagPlayerError(f"no topic of {path} to play")
        self.clock = None if args.no_clock else node.create_publisher(Clock, "/clock", 10)
        if self.clock is not None:
            by_topic["/clock"] = self.clock
        for topic in args.wait_for:
            if topic not in by_topic:
                raise BagPlayerError(f"--wait-for {topic}: not a topic this player publishes ({sorted(by_topic)})")
        self.by_topic = by_topic
        self._clock_type = Clock

    def close(self) -> None:
        self.reader.close()

    def _publish_clock(self, bag_ns: int) -> None:
        if self.clock is not None:
            sec, nanosec = divmod(int(bag_ns), 1_000_000_000)
            message = self._clock_type()
            message.clock.sec, message.clock.nanosec = sec, nanosec
            self.clock.publish(message)

    def _wait_for_readers(self, stop: threading.Event) -> None:
        deadline = time.monotonic() + self.args.wait_timeout
        waiting = list(self.args.wait_for)
        while waiting and not stop.is_set():
            waiting = [t for t in waiting if self.by_topic[t].get_subscription_count() == 0]
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise BagPlayerError(f"no subscriber on {waiting} after {self.args.wait_timeout:.1f} s")
            stop.wait(0.02)

    def run(self, stop: threading.Event) -> int:
        """Play the bag once; returns the number of messages published."""
        self._wait_for_readers(stop)
        if self.args.delay > 0:
            stop.wait(self.args.delay)
        log = self.node.get_logger()
        connections = [c for c in self.reader.connections if c.id in self.publishers]
        start_bag_ns = self.reader.start_time
        log.info(
            f"playing {self.args.bag} ({sum(c.msgcount for c in connections)} messages, "
            f"{(self.reader.end_time - 1 - start_bag_ns) * 1e-9:.2f} s of bag time) at rate {self.args.rate}"
        )
        start_wall = time.monotonic()
        clock_period_s = 1.0 / self.args.clock_hz
        count = 0
        for connection, bag_ns, raw in self.reader.messages(connections=connections):
            due = start_wall + (bag_ns - start_bag_ns) * 1e-9 / self.args.rate
            while not stop.is_set():
                now = time.monotonic()
                if now >= due:
                    break
                self._publish_clock(start_bag_ns + int((now - start_wall) * self.args.rate * 1e9))
                stop.wait(min(clock_period_s, due - now))
            if stop.is_set():
                log.info(f"interrupted after {count} messages")
                return count
            self._publish_clock(bag_ns)
            self.publishers[connection.id].publish(bytes(raw))
            count += 1
        played_s = time.monotonic() - start_wall
        deadline = time.monotonic() + ACK_TIMEOUT_S
        unacknowledged = [
            topic
            for topic, publisher in self.by_topic.items()
            if not publisher.wait_for_all_acked(_duration(max(0.0, deadline - time.monotonic())))
        ]
        log.info(
            f"finished: {count} messages in {played_s:.2f} s"
            + (
                f"; not acknowledged by every reader within {ACK_TIMEOUT_S} s: {unacknowledged}"
                if unacknowledged
                else ""
            )
        )
        return count


def _duration(seconds: float) -> Any:
    from rclpy.duration import Duration

    return Duration(nanoseconds=int(seconds * 1e9))


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from rclpy.utilities import remove_ros_args

    argv = sys.argv if argv is None else argv
    args = build_parser().parse_args(remove_ros_args(argv)[1:])
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(NODE_NAME)
    try:
        player = BagPlayer(node, args)
        try:
            player.run(stop)
        finally:
            player.close()
        return 0
    except BagPlayerError as exc:
        node.get_logger().fatal(str(exc))
        return 1
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    sys.exit(main())
