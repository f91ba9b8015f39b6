"""What a lock-step simulator waits for: an answer to each camera frame, and a command for each odometry message.

Sim time advances only once the nodes in the loop answered what the simulator sent: a node's per-frame status with
the frame's stamp (`answer`), and in a repeat one velocity command per odometry message (`command`, counted: a
controller answers every odometry message with exactly one command). So a run does not depend on how fast the
machine is. Thread-safe: the ROS executor thread reports, the simulation thread waits.
"""

from __future__ import annotations

import threading

from dlvf_ros.localization import frame_record

# where the nodes answer each frame: their per-frame result (a DiagnosticArray whose status carries the frame's stamp
# as `frame_record.FRAME_STAMP_KEY`; reliable, keep last `frame_record.FRAME_STATUS_DEPTH`)
FRAME_STATUS_TOPIC = "/" + frame_record.FRAME_STATUS_TOPIC


class LockStep:
    """Answers (frame stamps, ns) and commands received so far; waits for them with a wall-clock limit."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._answered: set[int] = set()
        self._commands = 0
        self._stopped = False

    @property
    def commands(self) -> int:
        with self._condition:
            return self._commands

    def answer(self, stamp_ns: int) -> None:
        """A node answered the frame stamped `stamp_ns`."""
        with self._condition:
            self._answered.add(int(stamp_ns))
            self._condition.notify_all()

    def command(self) -> None:
        """A velocity command arrived."""
        with self._condition:
            self._commands += 1
            self._condition.notify_all()

    def stop(self) -> None:
        """Release every waiter (shutdown)."""
        with self._condition:
            self._stopped = True
            self._condition.notify_all()

    def wait_answer(self, stamp_ns: int, timeout_s: float) -> bool:
        """Until the frame stamped `stamp_ns` was answered (True; older answers are forgotten) or `timeout_s` passed
        or `stop` was called (False)."""
        with self._condition:
            answered = self._condition.wait_for(lambda: stamp_ns in self._answered or self._stopped, timeout_s)
            answered = answered and stamp_ns in self._answered
            self._answered = {s for s in self._answered if s > stamp_ns}
            return answered

    def wait_commands(self, count: int, timeout_s: float) -> bool:
        """Until `count` commands have arrived in all (True), or `timeout_s` passed or `stop` was called (False)."""
        with self._condition:
            self._condition.wait_for(lambda: self._commands >= count or self._stopped, timeout_s)
            return self._commands >= count
