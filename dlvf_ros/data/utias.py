"""The UTIAS long-term localization dataset layout: a reader (real dataset or simulator output) and a writer.

Layout (see docs/conventions.md):
- `run_XXXXXX/images/{left,right}/XXXXXX.png` (RGB PNG)
- `run_000000/transforms_temporal.txt` (teach chain) and `run_XXXXXX/transforms_spatial.txt` (repeat -> teach):
  CSV rows `run_id, pose_id, other_run_id, other_pose_id` + 16 row-major entries of `T_other_this` (vehicle frames,
  metres).
- Optional (ours): `calibration.yaml` (StereoRig), `run_XXXXXX/run_info.yaml` (lighting, hour, seed),
  `run_XXXXXX/times.txt` (`pose_id, stamp_ns`), `run_XXXXXX/poses_world.txt` (`pose_id` + 16 of `T_world_vehicle`).

A vertex is `(run_id, pose_id)`; `UtiasDataset.transform(a, b)` gives `T_a_b` composed along the pose graph.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dlvf_ros.data.pose_graph import NoPathError, PoseGraph, UnknownVertexError, Vertex
from dlvf_ros.data.utias_files import (
    CALIBRATION_FILE,
    POSES_WORLD_FILE,
    RUN_DIR_PATTERN,
    RUN_INFO_FILE,
    SPATIAL_FILE,
    TEACH_RUN_ID,
    TEMPORAL_FILE,
    TIMES_FILE,
    RunInfo,
    UtiasFormatError,
    image_relpath,
    load_rgb_png,
    read_calibration,
    read_poses_world,
    read_run_info,
    read_times,
    read_transforms_file,
    run_dir_name,
)
from dlvf_ros.data.utias_writer import RunWriter, UtiasWriter
from dlvf_ros.geometry.camera import StereoRig

__all__ = [
    "TEACH_RUN_ID",
    "NoPathError",
    "RunInfo",
    "RunWriter",
    "UnknownVertexError",
    "UtiasDataset",
    "UtiasFormatError",
    "UtiasWriter",
    "Vertex",
]

log = logging.getLogger(__name__)


class UtiasDataset:
    """Reads a UTIAS-layout dataset: runs, images, pose graph, calibration, per-run info, times, ground truth.

    `rig`: used when the dataset has no calibration.yaml (the real dataset has none; default `StereoRig()`, the
    UTIAS Bumblebee). If both exist they must agree. `rig_source` says where the rig came from.
    """

    def __init__(self, root: str | Path, rig: StereoRig | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"UTIAS dataset root {self.root} is not a directory")
        self.run_ids = sorted(
            int(m.group(1)) for p in self.root.iterdir() if (m := RUN_DIR_PATTERN.match(p.name)) and p.is_dir()
        )
        if TEACH_RUN_ID not in self.run_ids:
            raise FileNotFoundError(
                f"{self.root} has no {run_dir_name(TEACH_RUN_ID)}/ (the teach run); is this a UTIAS-layout dataset?"
            )
        self.rig, self.rig_source = self._load_rig(rig)
        self.graph = self._load_graph()
        self._times: dict[int, dict[int, int] | None] = {}
        self._poses_world: dict[int, dict[int, np.ndarray] | None] = {}

    def _load_rig(self, rig: StereoRig | None) -> tuple[StereoRig, str]:
        path = self.root / CALIBRATION_FILE
        if path.is_file():
            calibration = read_calibration(path)
            if rig is not None and not rig.matches(calibration):
                raise ValueError(
                    f"the rig passed to UtiasDataset does not match {path}; pass rig=None to use the file's"
                )
            return calibration, str(path)
        if rig is not None:
            return rig, f"argument (no {CALIBRATION_FILE} in {self.root})"
        log.warning(
            "%s has no %s: using the default StereoRig() (UTIAS Bumblebee); pass rig= to override",
            self.root,
            CALIBRATION_FILE,
        )
        return StereoRig(), f"default StereoRig() (no {CALIBRATION_FILE} in {self.root})"

    def _load_graph(self) -> PoseGraph:
        graph = PoseGraph(f"pose graph of {self.root}")
        teach_file = self.run_dir(TEACH_RUN_ID) / TEMPORAL_FILE
        if not teach_file.is_file():
            raise FileNotFoundError(f"{teach_file} (the teach chain) does not exist")
        files = [(teach_file, TEACH_RUN_ID)] + [
            (self.run_dir(r) / SPATIAL_FILE, r)
            for r in self.run_ids
            if r != TEACH_RUN_ID and (self.run_dir(r) / SPATIAL_FILE).is_file()
        ]
        for path, run_id in files:
            for this, other, T_other_this in read_transforms_file(path, run_id):
                graph.add_edge(this, other, T_other_this)
        return graph

    # --- runs and vertices ---------------------------------------------------------------------------------------
    def run_dir(self, run_id: int) -> Path:
        return self.root / run_dir_name(run_id)

    @property
    def repeat_run_ids(self) -> list[int]:
        return [r for r in self.run_ids if r != TEACH_RUN_ID]

    def pose_ids(self, run_id: int) -> list[int]:
        """Pose ids of a run: its pose-graph vertices, or its left images if the run has no transforms file."""
        if run_id not in self.run_ids:
            raise ValueError(f"run {run_id} is not in {self.root}; runs: {self.run_ids}")
        in_graph = [pose for _, pose in self.graph.vertices(run_id)]
        if in_graph:
            return in_graph
        left = self.run_dir(run_id) / "images" / "left"
        return sorted(int(p.stem) for p in left.glob("*.png") if p.stem.isdigit()) if left.is_dir() else []

    def vertices(self, run_id: int | None = None) -> list[Vertex]:
        runs = self.run_ids if run_id is None else [run_id]
        return [(r, p) for r in runs for p in self.pose_ids(r)]

    def run_info(self, run_id: int) -> RunInfo:
        path = self.run_dir(run_id) / RUN_INFO_FILE
        return read_run_info(path, run_id) if path.is_file() else RunInfo(run_id)

    # --- images --------------------------------------------------------------------------------------------------
    def image_path(self, vertex: Vertex, side: str = "left") -> Path:
        return self.root / image_relpath(vertex, side)

    def load_image(self, vertex: Vertex, side: str = "left") -> np.ndarray:
        """(H, W, 3) uint8 RGB; its size must match the rig."""
        path = self.image_path(vertex, side)
        image = load_rgb_png(path)
        if image.shape[:2] != (self.rig.height, self.rig.width):
            raise UtiasFormatError(
                path,
                f"image is {image.shape[1]}x{image.shape[0]} but the rig ({self.rig_source}) is "
                f"{self.rig.width}x{self.rig.height}; pass a matching rig (StereoRig.scaled)",
            )
        return image

    def load_stereo(self, vertex: Vertex) -> tuple[np.ndarray, np.ndarray]:
        return self.load_image(vertex, "left"), self.load_image(vertex, "right")

    # --- pose graph ----------------------------------------------------------------------------------------------
    def transform(self, vertex_a: Vertex, vertex_b: Vertex) -> np.ndarray:
        """`T_a_b` (vehicle frame of b to vehicle frame of a), composed along the pose graph."""
        return self.graph.transform(vertex_a, vertex_b)

    def topological_distance(self, vertex_a: Vertex, vertex_b: Vertex) -> int:
        return self.graph.topological_distance(vertex_a, vertex_b)

    def neighbours(self, vertex: Vertex, max_edges: int) -> dict[Vertex, int]:
        """{vertex: edge count} within `max_edges` pose-graph edges (the vertex itself excluded)."""
        return self.graph.neighbours(vertex, max_edges)

    def closest_vertex(self, vertex: Vertex, run_id: int, max_edges: int = 8) -> tuple[Vertex, np.ndarray]:
        """Metrically closest vertex of `run_id` to `vertex` among those within `max_edges`: (vertex, T_vertex_it)."""
        candidates = [v for v in self.neighbours(vertex, max_edges) if v[0] == run_id]
        if not candidates:
            raise ValueError(f"no vertex of run {run_id} within {max_edges} pose-graph edges of {vertex}")
        T = {v: self.transform(vertex, v) for v in candidates}
        best = min(candidates, key=lambda v: float(np.linalg.norm(T[v][:3, 3])))
        return best, T[best]

    # --- times and ground truth ----------------------------------------------------------------------------------
    def stamps_ns(self, run_id: int) -> dict[int, int] | None:
        """{pose_id: stamp_ns} from times.txt, or None if the run has none."""
        if run_id not in self._times:
            path = self.run_dir(run_id) / TIMES_FILE
            self._times[run_id] = read_times(path) if path.is_file() else None
        return self._times[run_id]

    def poses_world(self, run_id: int) -> dict[int, np.ndarray] | None:
        """{pose_id: T_world_vehicle} (simulator ground truth), or None if the run has none."""
        if run_id not in self._poses_world:
            path = self.run_dir(run_id) / POSES_WORLD_FILE
            self._poses_world[run_id] = read_poses_world(path) if path.is_file() else None
        return self._poses_world[run_id]

    def T_world_vehicle(self, vertex: Vertex) -> np.ndarray | None:
        poses = self.poses_world(vertex[0])
        return None if poses is None else poses.get(vertex[1])
