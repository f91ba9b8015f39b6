"""Rewrite a map into a new one: re-extract its features with another backend from its stored keyframe images, or
upgrade a schema-1 map to the current schema (poses, stamps, images and stereo settings are kept; the old map is
checked first).

The new map is built in a staging folder and renamed into place at the end (`fileio.replacing_directory`), so a
failure or a kill leaves the old map (or `--out`) as it was.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from dlvf_ros import fileio
from dlvf_ros.features.backends import FeatureBackend
from dlvf_ros.localization.frontend import StereoFrontend
from dlvf_ros.localization.map_format import Keyframe, MapStoreError
from dlvf_ros.localization.map_store import MapStore, MapWriter, check_new_map_path, read_schema_1


def reextract(
    source: MapStore, out: str | Path, backend: FeatureBackend, progress: bool = True, replace: bool = False
) -> MapStore:
    """Write a map at `out` with `backend` features of every keyframe of `source` (needs stored images); `out` must
    be new unless `replace` (then it may be the source itself)."""
    if not source.has_images:
        raise MapStoreError(
            f"map {source.path} has no stored images (taught with --no-images); it cannot be "
            "re-extracted: re-teach with the new features"
        )
    if not replace:
        check_new_map_path(out, overwrite=False)
    teach_parameters = dict(source.manifest.get("teach_parameters", {}))
    stereo = source.taught_stereo()
    teach_parameters["reextracted_from"] = {
        "backend_signature": source.manifest["backend_signature"],
        "created_utc": source.manifest["created_utc"],
    }
    frontend = StereoFrontend(backend, source.rig, stereo)
    with fileio.replacing_directory(out) as staged:
        writer = MapWriter.create(staged, backend, source.rig, teach_parameters)
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
    """Re-extract the map at `path` and swap the result in; a failure or a kill leaves the old map intact."""
    return reextract(MapStore.open(path), path, backend, progress, replace=True)


def upgrade(path: str | Path, out: str | Path | None = None, progress: bool = True) -> MapStore:
    """Convert the schema-1 map at `path` into a current one at `out` (default: in place), refusing it (MapStoreError
    naming the file and field) if any keyframe file disagrees with the old index or any field is malformed."""
    manifest, keyframes = read_schema_1(path)
    target = Path(path if out is None else out)
    if out is not None:
        check_new_map_path(target, overwrite=False)
    with fileio.replacing_directory(target) as staged:
        writer = MapWriter.with_manifest(staged, manifest)
        for keyframe, left, right in tqdm(keyframes, desc="upgrade", unit="keyframe", disable=not progress):
            writer.add(keyframe, left, right)
    return MapStore.open(target)
