"""TUM trajectory files (`timestamp tx ty tz qx qy qz qw`, seconds and metres) for evo and other tools."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlvf_ros import fileio
from dlvf_ros.geometry import transforms


def format_tum(stamps_ns: np.ndarray, T_a_b: np.ndarray) -> str:
    """One line per pose of frame b in frame a; timestamps in seconds with nanosecond precision."""
    stamps_ns = np.asarray(stamps_ns, dtype=np.int64)
    T_a_b = np.asarray(T_a_b, dtype=np.float64)
    if T_a_b.ndim != 3 or T_a_b.shape[1:] != (4, 4) or len(T_a_b) != len(stamps_ns):
        raise ValueError(f"format_tum: expected N stamps and (N, 4, 4) poses, got {stamps_ns.shape} and {T_a_b.shape}")
    lines = []
    for stamp_ns, T in zip(stamps_ns, T_a_b):
        q = transforms.quaternion_from_rotation(T[:3, :3])
        seconds, nanoseconds = divmod(int(stamp_ns), 1_000_000_000)
        lines.append(f"{seconds}.{nanoseconds:09d} " + " ".join(f"{v:.9f}" for v in (*T[:3, 3], *q)))
    return "".join(line + "\n" for line in lines)


def write_tum(path: str | Path, stamps_ns: np.ndarray, T_a_b: np.ndarray) -> None:
    """Write a TUM file atomically."""
    fileio.atomic_write_text(path, format_tum(stamps_ns, T_a_b))


def read_tum(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """((N,) stamps_ns, (N, 4, 4) poses) from a TUM file; '#' comment lines are skipped."""
    stamps, poses = [], []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 8:
            raise ValueError(f"{path}:{number}: a TUM line has 8 fields (t tx ty tz qx qy qz qw), got {len(fields)}")
        seconds, _, fraction = fields[0].partition(".")
        stamps.append(int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9]))
        values = [float(v) for v in fields[1:]]
        poses.append(transforms.make_transform(transforms.rotation_from_quaternion(values[3:]), values[:3]))
    return np.asarray(stamps, dtype=np.int64), np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)
