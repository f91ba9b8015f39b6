"""A short history of odometry poses, looked up at image stamps (interpolated; held briefly past the newest).

The buffer is pure numpy and thread-safe (the executor thread adds, the worker thread looks up);
`add_odometry_message` feeds it a nav_msgs/Odometry, refusing other frames and a pose that is not a rigid transform;
`add_tf_message` feeds it the odom -> base_link transforms of a /tf message (an EKF's, when odometry comes from tf).
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.interpolation import interpolate_poses
from dlvf_ros.ros import conversions


class OdometryLookupError(LookupError):
    """No odometry close enough to an image stamp."""


class OdometryBuffer:
    """Keeps `T_odom_vehicle` samples for `horizon_s`; `lookup` interpolates between neighbours.

    A stamp after the newest sample gets the newest sample if it is at most `max_hold_s` older (odometry usually
    runs faster than the camera, but its message may arrive a little later than the image's).
    """

    def __init__(self, horizon_s: float, max_gap_s: float, max_hold_s: float) -> None:
        if not (horizon_s > 0 and max_gap_s > 0 and max_hold_s >= 0):
            raise ValueError(
                f"OdometryBuffer: need horizon_s > 0, max_gap_s > 0, max_hold_s >= 0; got "
                f"{horizon_s}, {max_gap_s}, {max_hold_s}"
            )
        self.horizon_ns = int(horizon_s * 1e9)
        self.max_gap_ns = int(max_gap_s * 1e9)
        self.max_hold_ns = int(max_hold_s * 1e9)
        self._samples: deque[tuple[int, np.ndarray]] = deque()
        self._lock = threading.Condition()

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, stamp_ns: int, T_odom_vehicle: np.ndarray) -> None:
        """Add a sample; a stamp older than the newest one (time went backwards: bag restart) clears the history."""
        with self._lock:
            if self._samples and stamp_ns < self._samples[-1][0]:
                self._samples.clear()
            self._samples.append((int(stamp_ns), np.asarray(T_odom_vehicle, dtype=np.float64)))
            while self._samples and self._samples[0][0] < stamp_ns - self.horizon_ns:
                self._samples.popleft()
            self._lock.notify_all()

    def newest(self) -> tuple[int, np.ndarray] | None:
        """(stamp_ns, T_odom_vehicle) of the newest sample, None when empty."""
        with self._lock:
            return self._samples[-1] if self._samples else None

    def lookup(self, stamp_ns: int, wait_s: float = 0.0) -> np.ndarray:
        """T_odom_vehicle at `stamp_ns`; OdometryLookupError (naming the gap) when there is none close enough.

        Waits up to `wait_s` (wall clock) for a sample at or after `stamp_ns` (odometry published with the image
        may arrive just after it), then interpolates or holds the newest one.
        """
        with self._lock:
            self._lock.wait_for(lambda: self._samples and self._samples[-1][0] >= stamp_ns, timeout=wait_s)
            samples = list(self._samples)
        if not samples:
            raise OdometryLookupError("no odometry received yet; check the odom topic (nav_msgs/Odometry)")
        newest_ns, newest = samples[-1]
        if stamp_ns >= newest_ns:
            if stamp_ns - newest_ns <= self.max_hold_ns:
                return newest
            raise OdometryLookupError(
                f"newest odometry is {(stamp_ns - newest_ns) * 1e-9:.3f} s older than the "
                f"image (allowed {self.max_hold_ns * 1e-9:.3f} s)"
            )
        stamps = np.array([s for s, _ in samples], dtype=np.int64)
        poses = np.stack([T for _, T in samples])
        T, valid = interpolate_poses(stamps, poses, np.array([stamp_ns]), self.max_gap_ns)
        if stamp_ns < stamps[0]:
            raise OdometryLookupError(
                f"the image is {(stamps[0] - stamp_ns) * 1e-9:.3f} s older than the odometry history"
            )
        if not valid[0]:
            raise OdometryLookupError(f"odometry has a gap over {self.max_gap_ns * 1e-9:.3f} s at the image stamp")
        return T[0]


def add_odometry_message(buffer: OdometryBuffer, msg, odom_frame: str, base_frame: str) -> None:
    """Add the pose of a nav_msgs/Odometry message (`odom_frame` -> `base_frame`) to `buffer`; a ValueError naming
    the message's stamp and the problem when its frame ids differ or its pose is not a finite rigid transform (the
    message is then ignored)."""
    stamp_ns = conversions.stamp_to_ns(msg.header.stamp)
    frames = (msg.header.frame_id.lstrip("/"), msg.child_frame_id.lstrip("/"))
    if frames != (odom_frame, base_frame):
        raise ValueError(
            f"odometry message at {stamp_ns * 1e-9:.3f} s ignored: it is {frames[0]!r} -> {frames[1]!r}, expected "
            f"{odom_frame!r} -> {base_frame!r}; set the odom_frame / base_frame parameters or fix the publisher"
        )
    try:
        _, T_odom_vehicle = conversions.odometry_to_matrix(msg)
        if not transforms.is_rigid(T_odom_vehicle, tol=1e-4):
            raise ValueError("the pose is not a finite rigid transform (NaN/inf or a non-unit quaternion)")
    except ValueError as exc:
        raise ValueError(f"odometry message at {stamp_ns * 1e-9:.3f} s ignored: {exc}") from exc
    buffer.add(stamp_ns, T_odom_vehicle)


def add_tf_message(buffer: OdometryBuffer, msg, odom_frame: str, base_frame: str) -> None:
    """Add the `odom_frame` -> `base_frame` transforms of a tf2_msgs/TFMessage to `buffer` (others are not ours);
    a ValueError naming the stamp when one is not a finite rigid transform (it is then ignored)."""
    for transform in msg.transforms:
        if (transform.header.frame_id.lstrip("/"), transform.child_frame_id.lstrip("/")) != (odom_frame, base_frame):
            continue
        stamp_ns = conversions.stamp_to_ns(transform.header.stamp)
        try:
            _, _, T_odom_vehicle = conversions.transform_stamped_to_matrix(transform)
            if not transforms.is_rigid(T_odom_vehicle, tol=1e-4):
                raise ValueError("the transform is not a finite rigid transform (NaN/inf or a non-unit quaternion)")
        except ValueError as exc:
            raise ValueError(f"/tf {odom_frame} -> {base_frame} at {stamp_ns * 1e-9:.3f} s ignored: {exc}") from exc
        buffer.add(stamp_ns, T_odom_vehicle)
