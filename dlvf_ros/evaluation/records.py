"""What `dlvf replay` records and `dlvf evaluate` reads: a directory of JSON Lines plus a manifest.

    replay.json        manifest, written atomically last: bag, map, model, node parameters, counts, wall time
    poses.jsonl        one localizer output per line: stamp_ns (image time), T_map_vehicle (16, row-major),
                       covariance (36, row-major, x y z roll pitch yaw), received_ns (wall clock)
    frame_status.jsonl one per-frame result per line (localization/frame_status, one status per processed stereo
                       frame: a `dlvf_ros.localization.frame_record.FrameRecord`, so a frame's state, inliers and
                       latency can be read back): stamp_ns, name, level, message, hardware_id, values {key: str},
                       received_ns (wall clock)
    diagnostics.jsonl  the node's health summaries on /diagnostics, one status per line, same fields

Recordings made before the per-frame results had their own topic have no frame_status.jsonl: their frame records
are the statuses in diagnostics.jsonl that carry `frame_stamp_ns`. A replay without replay.json was interrupted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from dlvf_ros.localization.frame_record import FRAME_STAMP_KEY, FrameRecord

MANIFEST_FILE = "replay.json"
POSES_FILE = "poses.jsonl"
FRAME_STATUS_FILE = "frame_status.jsonl"
DIAGNOSTICS_FILE = "diagnostics.jsonl"


class ReplayRecordError(ValueError):
    """A replay directory is missing, incomplete or malformed."""


class JsonlWriter:
    """Appends one JSON object per line and flushes it, so a killed writer loses at most the line in progress."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[str] = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (closed by close())
        self.count = 0

    def write(self, record: dict) -> None:
        self._handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._handle.flush()
        self.count += 1

    def close(self) -> None:
        self._handle.close()


def read_jsonl(path: str | Path) -> list[dict]:
    """All records of a JSON Lines file; a truncated last line (killed writer) is dropped, others must parse."""
    path = Path(path)
    if not path.is_file():
        raise ReplayRecordError(f"{path} does not exist; record it with `dlvf replay`")
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise ReplayRecordError(f"{path}:{number}: not valid JSON ({exc})") from exc
    return records


def pose_record(stamp_ns: int, T_map_vehicle: np.ndarray, covariance: np.ndarray, received_ns: int) -> dict:
    return {
        "stamp_ns": int(stamp_ns),
        "T_map_vehicle": [float(x) for x in np.asarray(T_map_vehicle, dtype=np.float64).reshape(16)],
        "covariance": [float(x) for x in np.asarray(covariance, dtype=np.float64).reshape(36)],
        "received_ns": int(received_ns),
    }


@dataclass
class FrameDiagnostics:
    """Per-frame localizer reports, as arrays sorted by frame stamp."""

    stamp_ns: np.ndarray  # (N,) int64 image time
    state: np.ndarray  # (N,) str
    inliers: np.ndarray  # (N,) int64
    latency_ms: np.ndarray  # (N,) float64, NaN where not reported
    keyframe_id: np.ndarray  # (N,) int64, -1 where none
    error: np.ndarray  # (N,) str, "" where none


@dataclass
class Replay:
    """A recorded replay: manifest, poses (sorted by stamp), per-frame results and the other statuses (the node's
    health summaries)."""

    path: Path
    manifest: dict
    pose_stamp_ns: np.ndarray  # (M,) int64
    T_map_vehicle: np.ndarray  # (M, 4, 4)
    covariance: np.ndarray  # (M, 6, 6)
    frames: FrameDiagnostics
    other_statuses: list[dict] = field(default_factory=list)


def _frames_from_statuses(statuses: list[dict], source: Path) -> FrameDiagnostics:
    """The frame records of `statuses` (read from `source`), sorted by stamp."""
    rows = []
    for status in statuses:
        values = status.get("values", {})
        try:
            record = FrameRecord.from_dict(values)
        except ValueError as exc:
            raise ReplayRecordError(f"{source}: per-frame result with malformed values {values}: {exc}") from exc
        rows.append(
            (record.stamp_ns, record.state, record.inliers, record.latency_ms, record.keyframe_id, record.error)
        )
    rows.sort(key=lambda row: row[0])
    columns: list[tuple] = list(zip(*rows)) if rows else [() for _ in range(6)]
    return FrameDiagnostics(
        *(
            np.asarray(column, dtype=dtype)
            for column, dtype in zip(columns, (np.int64, str, np.int64, np.float64, np.int64, str))
        ),
    )


def read_replay(path: str | Path) -> Replay:
    """Load a replay directory written by `dlvf replay`."""
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ReplayRecordError(f"{path} has no {MANIFEST_FILE}: the replay did not finish; run `dlvf replay` again")
    manifest = json.loads(manifest_path.read_text())
    poses = sorted(read_jsonl(path / POSES_FILE), key=lambda r: r["stamp_ns"])
    try:
        stamps = np.array([r["stamp_ns"] for r in poses], dtype=np.int64)
        T = np.array([r["T_map_vehicle"] for r in poses], dtype=np.float64).reshape(-1, 4, 4)
        cov = np.array([r["covariance"] for r in poses], dtype=np.float64).reshape(-1, 6, 6)
    except (KeyError, ValueError) as exc:
        raise ReplayRecordError(f"{path / POSES_FILE}: malformed pose record ({exc})") from exc
    diagnostics = read_jsonl(path / DIAGNOSTICS_FILE)
    if (path / FRAME_STATUS_FILE).is_file():
        frame_statuses, source = read_jsonl(path / FRAME_STATUS_FILE), path / FRAME_STATUS_FILE
    else:  # recorded before localization/frame_status: the frame records are among the /diagnostics statuses
        frame_statuses = [s for s in diagnostics if FRAME_STAMP_KEY in s.get("values", {})]
        diagnostics = [s for s in diagnostics if FRAME_STAMP_KEY not in s.get("values", {})]
        source = path / DIAGNOSTICS_FILE
    return Replay(path, manifest, stamps, T, cov, _frames_from_statuses(frame_statuses, source), diagnostics)
