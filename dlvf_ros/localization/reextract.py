"""Re-extract a map's features with another backend from its stored keyframe images (poses are kept)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from tqdm import tqdm

from dlvf_ros import fileio
from dlvf_ros.config import from_dict
from dlvf_ros.features.backends import FeatureBackend
from dlvf_ros.geometry.stereo_matching import SgbmConfig
from dlvf_ros.localization.frontend import StereoFrontend
from dlvf_ros.localization.map_store import Keyframe, MapStore, MapStoreError, MapWriter


def reextract(source: MapStore, out: str | Path, backend: FeatureBackend, progress: bool = True) -> MapStore:
    """Write a new map at `out` with `backend` features of every keyframe of `source` (needs stored images)."""
    if not source.has_images:
        raise MapStoreError(
            f"map {source.path} has no stored images (taught with --no-images); it cannot be "
            "re-extracted: re-teach with the new features"
        )
    teach_parameters = dict(source.manifest.get("teach_parameters", {}))
    sgbm = from_dict(SgbmConfig, teach_parameters.get("sgbm", {}), f"{source.path} teach_parameters.sgbm")
    teach_parameters["reextracted_from"] = {
        "backend_signature": source.manifest["backend_signature"],
        "created_utc": source.manifest["created_utc"],
    }
    writer = MapWriter.create(out, backend, source.rig, teach_parameters)
    frontend = StereoFrontend(backend, source.rig, sgbm)
    for entry in tqdm(source.entries, desc="reextract", unit="keyframe", disable=not progress):
        left, right = source.images(entry.keyframe_id)
        old = source.keyframe(entry.keyframe_id)
        frame = frontend.process(left, right)
        writer.add(
            Keyframe(
                old.keyframe_id,
                old.stamp_ns,
                old.T_map_keyframe,
                frame.features.keypoints,
                frame.features.descriptors,
                frame.features.scores,
                frame.points_camera,
                frame.valid,
                old.T_world_keyframe,
            ),
            left,
            right,
        )
    return MapStore.open(out)


def reextract_in_place(path: str | Path, backend: FeatureBackend, progress: bool = True) -> MapStore:
    """Re-extract into a sibling directory, then swap it in; a crash leaves the old map (or both) intact."""
    path = Path(path).resolve()
    source = MapStore.open(path)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.reextract-", dir=path.parent))
    old = staging.with_name(staging.name.replace(".reextract-", ".old-"))
    try:
        reextract(source, staging / "map", backend, progress)
        os.replace(path, old)
        os.replace(staging / "map", path)
        fileio.fsync_directory(path.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return MapStore.open(path)
