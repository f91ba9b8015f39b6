"""Writes the UTIAS long-term dataset layout from simulator frames (one run at a time, all writes atomic).

Run 0 is the teach run: `transforms_temporal.txt` chains consecutive vertices with `T_{i+1}_i` from ground truth.
Every other run gets `transforms_spatial.txt` linking each vertex to the metrically closest teach vertex
(`T_teach_repeat` from ground truth). See docs/conventions.md.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dlvf_ros import fileio
from dlvf_ros.data.utias_files import (
    CALIBRATION_FILE,
    POSES_WORLD_FILE,
    RUN_INFO_FILE,
    SIDES,
    SPATIAL_FILE,
    TEACH_RUN_ID,
    TEMPORAL_FILE,
    TIMES_FILE,
    RunInfo,
    encode_rgb_png,
    format_matrix,
    image_relpath,
    read_poses_world,
    run_dir_name,
    run_info_from_dict,
)
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig


class UtiasWriter:
    """Writes a UTIAS-layout dataset from simulator frames; writes `calibration.yaml` at once.

    Write the teach run (run 0) first: each repeat run links its vertices to the teach run's ground truth.
    """

    def __init__(self, root: str | Path, rig: StereoRig) -> None:
        self.root = Path(root)
        self.rig = rig
        self.root.mkdir(parents=True, exist_ok=True)
        fileio.atomic_write_text(self.root / CALIBRATION_FILE, yaml.safe_dump(rig.to_dict(), sort_keys=False))

    def add_run(self, run_id: int, info: RunInfo | dict[str, Any] | None = None) -> RunWriter:
        run_id = int(run_id)
        if run_id < 0 or run_id > 999999:
            raise ValueError(f"run_id must be in [0, 999999], got {run_id}")
        if run_id != TEACH_RUN_ID and not (self.root / run_dir_name(TEACH_RUN_ID) / POSES_WORLD_FILE).is_file():
            raise ValueError(
                f"write the teach run ({run_dir_name(TEACH_RUN_ID)}) before repeat run {run_id}: repeat vertices "
                f"are linked to its ground truth ({POSES_WORLD_FILE})"
            )
        if not isinstance(info, RunInfo):
            info = run_info_from_dict(run_id, info or {})
        run_dir = self.root / run_dir_name(run_id)
        fileio.atomic_write_text(run_dir / RUN_INFO_FILE, yaml.safe_dump(info.to_dict(), sort_keys=False))
        return RunWriter(self, run_id)


class RunWriter:
    """Adds frames of one run; `close()` writes times, ground truth and the pose-graph links."""

    def __init__(self, dataset: UtiasWriter, run_id: int) -> None:
        self.dataset, self.run_id = dataset, run_id
        self.run_dir = dataset.root / run_dir_name(run_id)
        self.stamps_ns: dict[int, int] = {}
        self.poses_world: dict[int, np.ndarray] = {}
        self.closed = False

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()

    def add_frame(self, frame) -> None:
        """Write one frame (attributes pose_id, stamp_ns, left, right (H, W, 3) uint8 RGB, T_world_vehicle)."""
        if self.closed:
            raise ValueError(f"{self.run_dir}: add_frame after close()")
        pose_id, stamp_ns = int(frame.pose_id), int(frame.stamp_ns)
        if pose_id in self.stamps_ns:
            raise ValueError(f"{self.run_dir}: pose_id {pose_id} was already added")
        if self.stamps_ns and stamp_ns <= max(self.stamps_ns.values()):
            raise ValueError(f"{self.run_dir}: stamp_ns must increase, pose {pose_id} has {stamp_ns}")
        T_world_vehicle = np.asarray(frame.T_world_vehicle, dtype=np.float64)
        if not transforms.is_rigid(T_world_vehicle):
            raise ValueError(f"{self.run_dir}: pose {pose_id} T_world_vehicle is not a rigid 4x4 transform")
        rig = self.dataset.rig
        for side in SIDES:
            image = np.asarray(getattr(frame, side))
            if image.shape != (rig.height, rig.width, 3) or image.dtype != np.uint8:
                raise ValueError(
                    f"{self.run_dir}: pose {pose_id} {side} image is {image.dtype} {image.shape}; the rig needs "
                    f"uint8 ({rig.height}, {rig.width}, 3) RGB"
                )
            fileio.atomic_write_bytes(
                self.dataset.root / image_relpath((self.run_id, pose_id), side), encode_rgb_png(image)
            )
        self.stamps_ns[pose_id] = stamp_ns
        self.poses_world[pose_id] = T_world_vehicle

    def close(self) -> None:
        """Write times.txt, poses_world.txt and the transforms file (temporal for the teach run, else spatial)."""
        if self.closed:
            return
        if len(self.stamps_ns) < (2 if self.run_id == TEACH_RUN_ID else 1):
            raise ValueError(f"{self.run_dir}: too few frames ({len(self.stamps_ns)}) to close the run")
        pose_ids = sorted(self.stamps_ns)
        fileio.atomic_write_text(self.run_dir / TIMES_FILE, "".join(f"{p},{self.stamps_ns[p]}\n" for p in pose_ids))
        fileio.atomic_write_text(
            self.run_dir / POSES_WORLD_FILE,
            "".join(f"{p},{format_matrix(self.poses_world[p])}\n" for p in pose_ids),
        )
        if self.run_id == TEACH_RUN_ID:
            rows = [
                (p, TEACH_RUN_ID, q, transforms.invert(self.poses_world[q]) @ self.poses_world[p])
                for p, q in itertools.pairwise(pose_ids)
            ]
            name = TEMPORAL_FILE
        else:
            rows = self._spatial_rows(pose_ids)
            name = SPATIAL_FILE
        fileio.atomic_write_text(
            self.run_dir / name,
            "".join(f"{self.run_id},{p},{other_run},{q},{format_matrix(T)}\n" for p, other_run, q, T in rows),
        )
        self.closed = True

    def _spatial_rows(self, pose_ids: list[int]) -> list[tuple[int, int, int, np.ndarray]]:
        """Each repeat vertex -> metrically closest teach vertex (ground-truth position), with T_teach_repeat."""
        teach = read_poses_world(self.dataset.root / run_dir_name(TEACH_RUN_ID) / POSES_WORLD_FILE)
        teach_ids = sorted(teach)
        teach_xyz = np.stack([teach[q][:3, 3] for q in teach_ids])
        rows = []
        for p in pose_ids:
            T_world_repeat = self.poses_world[p]
            q = teach_ids[int(np.argmin(np.linalg.norm(teach_xyz - T_world_repeat[:3, 3], axis=1)))]
            rows.append((p, TEACH_RUN_ID, q, transforms.invert(teach[q]) @ T_world_repeat))
        return rows
