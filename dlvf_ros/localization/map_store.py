"""The map store: a directory of teach keyframes that survives a writer killed at any moment.

Layout:
    manifest.json            schema version, feature backend signature (model SHA-256 or classical parameters),
                             descriptor size / metric, cell size, input size, colour order, calibration (StereoRig
                             dict), T_vehicle_camera, software version, creation time, teach parameters
    index.json               keyframes in order: id, file, SHA-256, stamp_ns, T_map_keyframe, optional images
    keyframes/000000.npz     keypoints (N, 2) px, descriptors (N, C), scores (N,), points_camera (N, 3) m in the
                             left optical frame, valid (N,), T_map_keyframe (4, 4), stamp_ns, [T_world_keyframe]
    images/000000_left.png   optional RGB stereo pair (for `dlvf map reextract`)

Commit order per keyframe: images, then the keyframe file (each atomic), then the index (atomic rewrite). A reader
only trusts what the index lists, so a killed writer leaves a map that loads up to its last complete keyframe.
Creation writes the empty index before the manifest: a directory without manifest.json is not a map.
No pickle anywhere (`np.load(allow_pickle=False)`).
"""

from __future__ import annotations

import io
import json
import shutil
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

import dlvf_ros
from dlvf_ros import fileio
from dlvf_ros.features.backends import FeatureBackend, Features
from dlvf_ros.geometry.camera import StereoRig

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
INDEX_NAME = "index.json"
KEYFRAME_DIR = "keyframes"
IMAGE_DIR = "images"
_ARRAY_KEYS = ("keypoints", "descriptors", "scores", "points_camera", "valid", "T_map_keyframe", "stamp_ns")


class MapStoreError(ValueError):
    """A map directory is missing, incomplete or corrupt."""


class MapMismatchError(MapStoreError):
    """A map was built with other features or another calibration than the ones in use."""


@dataclass
class Keyframe:
    """One teach keyframe: features with stereo 3-D points (left optical frame, m) and its pose on the teach path."""

    keyframe_id: int
    stamp_ns: int
    T_map_keyframe: np.ndarray
    keypoints: np.ndarray
    descriptors: np.ndarray
    scores: np.ndarray
    points_camera: np.ndarray
    valid: np.ndarray
    T_world_keyframe: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.keypoints)
        shapes = {"keypoints": (n, 2), "scores": (n,), "points_camera": (n, 3), "valid": (n,)}
        for key, shape in shapes.items():
            if getattr(self, key).shape != shape:
                raise ValueError(
                    f"Keyframe {self.keyframe_id}: {key} has shape {getattr(self, key).shape}, expected {shape}"
                )
        if self.descriptors.ndim != 2 or len(self.descriptors) != n:
            raise ValueError(f"Keyframe {self.keyframe_id}: descriptors {self.descriptors.shape}, expected ({n}, C)")
        for key in ("T_map_keyframe", "T_world_keyframe"):
            T = getattr(self, key)
            if T is not None and (np.shape(T) != (4, 4) or not np.all(np.isfinite(T))):
                raise ValueError(f"Keyframe {self.keyframe_id}: {key} must be a finite 4x4 transform")

    @property
    def features(self) -> Features:
        return Features(self.keypoints, self.descriptors, self.scores)

    def to_npz_bytes(self) -> bytes:
        arrays = {
            "keypoints": np.asarray(self.keypoints, np.float32),
            "descriptors": self.descriptors,
            "scores": np.asarray(self.scores, np.float32),
            "points_camera": np.asarray(self.points_camera, np.float64),
            "valid": np.asarray(self.valid, bool),
            "T_map_keyframe": np.asarray(self.T_map_keyframe, np.float64),
            "stamp_ns": np.int64(self.stamp_ns),
        }
        if self.T_world_keyframe is not None:
            arrays["T_world_keyframe"] = np.asarray(self.T_world_keyframe, np.float64)
        return fileio.npz_bytes(**arrays)

    @classmethod
    def from_npz_bytes(cls, keyframe_id: int, data: bytes) -> Keyframe:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            missing = [k for k in _ARRAY_KEYS if k not in npz.files]
            if missing:
                raise MapStoreError(f"keyframe {keyframe_id}: file lacks arrays {missing}")
            arrays = {k: npz[k] for k in npz.files}
        return cls(
            keyframe_id=keyframe_id,
            stamp_ns=int(arrays["stamp_ns"]),
            T_map_keyframe=arrays["T_map_keyframe"],
            keypoints=arrays["keypoints"],
            descriptors=arrays["descriptors"],
            scores=arrays["scores"],
            points_camera=arrays["points_camera"],
            valid=arrays["valid"].astype(bool),
            T_world_keyframe=arrays.get("T_world_keyframe"),
        )


@dataclass(frozen=True)
class KeyframeEntry:
    """What the index says about one keyframe (enough to plan a search without loading its features)."""

    keyframe_id: int
    file: str
    sha256: str
    stamp_ns: int
    T_map_keyframe: np.ndarray
    images: dict  # {"left": {"file", "sha256"}, "right": {...}} or empty

    def to_json(self) -> dict:
        return {
            "id": self.keyframe_id,
            "file": self.file,
            "sha256": self.sha256,
            "stamp_ns": self.stamp_ns,
            "T_map_keyframe": [float(x) for x in np.asarray(self.T_map_keyframe).reshape(-1)],
            "images": self.images,
        }

    @classmethod
    def from_json(cls, data: dict) -> KeyframeEntry:
        return cls(
            int(data["id"]),
            str(data["file"]),
            str(data["sha256"]),
            int(data["stamp_ns"]),
            np.asarray(data["T_map_keyframe"], dtype=np.float64).reshape(4, 4),
            dict(data.get("images", {})),
        )


def feature_description(backend: FeatureBackend, rig: StereoRig) -> dict:
    """The manifest's feature fields: signature, descriptor size/metric/dtype, cell size, input size, colour order."""
    metadata = getattr(backend, "metadata", {})
    return {
        "backend": backend.name,
        "backend_signature": backend.signature(),
        "descriptor_size": int(backend.descriptor_size),
        "descriptor_metric": backend.descriptor_metric,
        "cell_size": metadata.get("cell_size"),
        "input_size": [int(metadata.get("input_height", rig.height)), int(metadata.get("input_width", rig.width))],
        "colour_order": metadata.get("colour_order", "RGB"),
    }


def _signature_identity(signature: dict) -> dict:
    """The part of a backend signature that must agree: the model hash, or the classical parameters."""
    if signature.get("backend") == "learned":
        return {"backend": "learned", "model_sha256": signature.get("model_sha256")}
    return {"backend": signature.get("backend"), "params": signature.get("params")}


def _png_bytes(image_rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise MapStoreError("could not encode a keyframe image as PNG")
    return encoded.tobytes()


class MapWriter:
    """Appends keyframes to a new map directory, each one committed atomically."""

    def __init__(self, path: Path, manifest: dict) -> None:
        self.path = path
        self.manifest = manifest
        self.entries: list[KeyframeEntry] = []

    @classmethod
    def create(
        cls,
        path: str | Path,
        backend: FeatureBackend,
        rig: StereoRig,
        teach_parameters: dict | None = None,
        overwrite: bool = False,
    ) -> MapWriter:
        """Start an empty map at `path` (must not exist or be empty unless `overwrite`)."""
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            if not overwrite:
                raise FileExistsError(
                    f"map directory {path} exists and is not empty; choose another --out or pass --overwrite"
                )
            if not (path / MANIFEST_NAME).is_file() and not (path / INDEX_NAME).is_file():
                raise FileExistsError(f"refusing to overwrite {path}: it is not a map store")
            shutil.rmtree(path)
        (path / KEYFRAME_DIR).mkdir(parents=True, exist_ok=True)
        (path / IMAGE_DIR).mkdir(exist_ok=True)
        manifest = {
            "schema_version": SCHEMA_VERSION,
            **feature_description(backend, rig),
            "calibration": rig.to_dict(),
            "T_vehicle_camera": rig.to_dict()["T_vehicle_camera"],
            "software_version": dlvf_ros.__version__,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "teach_parameters": dict(teach_parameters or {}),
        }
        writer = cls(path, manifest)
        writer._write_index()
        fileio.atomic_write_text(path / MANIFEST_NAME, json.dumps(manifest, indent=2))
        return writer

    def _write_index(self) -> None:
        index = {"schema_version": SCHEMA_VERSION, "keyframes": [e.to_json() for e in self.entries]}
        fileio.atomic_write_text(self.path / INDEX_NAME, json.dumps(index))

    def add(
        self, keyframe: Keyframe, left_rgb: np.ndarray | None = None, right_rgb: np.ndarray | None = None
    ) -> KeyframeEntry:
        """Commit one keyframe (ids must run 0, 1, 2, ...); images are stored when both are given."""
        if keyframe.keyframe_id != len(self.entries):
            raise ValueError(f"MapWriter.add: keyframe id {keyframe.keyframe_id}, expected {len(self.entries)}")
        if keyframe.descriptors.shape[1] != self.manifest["descriptor_size"]:
            raise ValueError(
                f"MapWriter.add: descriptor size {keyframe.descriptors.shape[1]} does not match the "
                f"map's {self.manifest['descriptor_size']}"
            )
        stem = f"{keyframe.keyframe_id:06d}"
        images = {}
        if left_rgb is not None and right_rgb is not None:
            for side, image in (("left", left_rgb), ("right", right_rgb)):
                data = _png_bytes(image)
                relative = f"{IMAGE_DIR}/{stem}_{side}.png"
                fileio.atomic_write_bytes(self.path / relative, data)
                images[side] = {"file": relative, "sha256": fileio.sha256_bytes(data)}
        data = keyframe.to_npz_bytes()
        relative = f"{KEYFRAME_DIR}/{stem}.npz"
        fileio.atomic_write_bytes(self.path / relative, data)
        entry = KeyframeEntry(
            keyframe.keyframe_id,
            relative,
            fileio.sha256_bytes(data),
            int(keyframe.stamp_ns),
            np.asarray(keyframe.T_map_keyframe, np.float64),
            images,
        )
        self.entries.append(entry)
        self._write_index()
        return entry


class MapStore:
    """A map opened for reading: manifest, rig, index entries; keyframe arrays load lazily (checksum-verified)."""

    def __init__(self, path: Path, manifest: dict, entries: list[KeyframeEntry], cache_size: int = 256) -> None:
        self.path = path
        self.manifest = manifest
        self.entries = entries
        self.rig = StereoRig.from_dict(manifest["calibration"])
        self.positions_m = np.array([e.T_map_keyframe[:3, 3] for e in entries]).reshape(-1, 3)
        self._cache: OrderedDict[int, Keyframe] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def open(cls, path: str | Path, verify: bool = True, cache_size: int = 256) -> MapStore:
        """Open a map; `verify` checks every keyframe's (and image's) SHA-256 against the index now."""
        path = Path(path)
        if not path.is_dir():
            raise MapStoreError(f"map {path} does not exist; build one with `dlvf teach --bag BAG --out {path}`")
        if not (path / MANIFEST_NAME).is_file():
            raise MapStoreError(
                f"{path} is not a map store (no {MANIFEST_NAME}); a teach pass killed before its "
                "first keyframe leaves this: teach again"
            )
        manifest = _read_json(path / MANIFEST_NAME)
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise MapStoreError(
                f"{path}: map schema version {manifest.get('schema_version')} is not supported "
                f"(this software reads version {SCHEMA_VERSION}); re-teach the map"
            )
        index = _read_json(path / INDEX_NAME)
        entries = [KeyframeEntry.from_json(e) for e in index.get("keyframes", [])]
        for position, entry in enumerate(entries):
            if entry.keyframe_id != position:
                raise MapStoreError(
                    f"{path}/{INDEX_NAME}: keyframe ids are not 0..N-1 (entry {position} has id {entry.keyframe_id})"
                )
        store = cls(path, manifest, entries, cache_size)
        if verify:
            problems = store.verify()
            if problems:
                raise MapStoreError(
                    f"{path}: {len(problems)} corrupt file(s): {'; '.join(problems[:5])}; run "
                    f"`dlvf map verify {path}` and re-teach"
                )
        return store

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def descriptor_metric(self) -> str:
        return self.manifest["descriptor_metric"]

    @property
    def has_images(self) -> bool:
        return bool(self.entries) and all(e.images for e in self.entries)

    def verify(self) -> list[str]:
        """Checksum every listed file; returns one line per problem (empty when the map is sound)."""
        problems = []
        for entry in self.entries:
            files = [(entry.file, entry.sha256)] + [(v["file"], v["sha256"]) for v in entry.images.values()]
            for relative, expected in files:
                file_path = self.path / relative
                if not file_path.is_file():
                    problems.append(f"keyframe {entry.keyframe_id}: {relative} is missing")
                elif fileio.sha256_file(file_path) != expected:
                    problems.append(f"keyframe {entry.keyframe_id}: {relative} checksum mismatch")
        return problems

    def _read_verified(self, relative: str, expected_sha256: str, keyframe_id: int) -> bytes:
        try:
            data = (self.path / relative).read_bytes()
        except FileNotFoundError:
            raise MapStoreError(f"{self.path}: keyframe {keyframe_id} file {relative} is missing; re-teach") from None
        if fileio.sha256_bytes(data) != expected_sha256:
            raise MapStoreError(f"{self.path}: keyframe {keyframe_id} file {relative} fails its checksum; re-teach")
        return data

    def keyframe(self, keyframe_id: int) -> Keyframe:
        """The keyframe with this id (cached, least recently used evicted)."""
        if not 0 <= keyframe_id < len(self.entries):
            raise IndexError(f"keyframe id {keyframe_id} out of range: the map has {len(self.entries)} keyframes")
        if keyframe_id in self._cache:
            self._cache.move_to_end(keyframe_id)
            return self._cache[keyframe_id]
        entry = self.entries[keyframe_id]
        keyframe = Keyframe.from_npz_bytes(keyframe_id, self._read_verified(entry.file, entry.sha256, keyframe_id))
        self._cache[keyframe_id] = keyframe
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return keyframe

    def images(self, keyframe_id: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored (left, right) RGB images of a keyframe."""
        entry = self.entries[keyframe_id]
        if not entry.images:
            raise MapStoreError(
                f"{self.path}: keyframe {keyframe_id} has no stored images (taught without "
                "images); re-teach to re-extract features"
            )
        decoded = []
        for side in ("left", "right"):
            data = self._read_verified(entry.images[side]["file"], entry.images[side]["sha256"], keyframe_id)
            decoded.append(
                cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            )
        return decoded[0], decoded[1]

    def check_compatible(self, backend: FeatureBackend, rig: StereoRig | None = None) -> None:
        """Raise MapMismatchError unless `backend` (and `rig`, if given) match what the map was built with."""
        built = _signature_identity(self.manifest["backend_signature"])
        used = _signature_identity(backend.signature())
        if built != used:
            model_hint = getattr(backend, "model_path", None)
            fix = (
                f"re-teach with these features, or run `dlvf map reextract {self.path} --backend {backend.name}"
                + (f" --model {model_hint}`" if model_hint else "`")
                + " to re-extract from the stored images"
            )
            raise MapMismatchError(
                f"map {self.path} was built with features {built}, but the localizer uses {used}; {fix}"
            )
        if rig is not None and not rig.matches(self.rig):
            raise MapMismatchError(
                f"map {self.path} was built with calibration {self.rig.to_dict()}, but the camera "
                f"now reports {rig.to_dict()}; re-teach with this camera, or fix the "
                "calibration / CameraInfo"
            )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MapStoreError(f"{path} is missing; the map is incomplete: re-teach") from None
    except json.JSONDecodeError as exc:
        raise MapStoreError(f"{path} is not valid JSON ({exc}); the map is corrupt: re-teach") from exc
