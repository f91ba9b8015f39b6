"""The map store's on-disk schema (version 2): names, records, and the checked parsing of every file.

Layout:
    manifest.json            schema version, feature backend signature (model SHA-256 or classical parameters),
                             descriptor size / metric, cell size, input size, colour order, calibration (StereoRig
                             dict), T_vehicle_camera, software version, creation time, teach parameters
    index.jsonl              one record per line, `<compact JSON>\\t<SHA-256 of the JSON>\\n`: first the header
                             {schema_version, manifest_sha256}, then keyframe 0, 1, ... in order: {id, file, sha256
                             (of the file), stamp_ns, T_map_keyframe (16 numbers, row-major), images ({} or
                             {left, right: {file, sha256}})}
    keyframes/000000.npz     keyframe_id, stamp_ns, T_map_keyframe (4, 4), keypoints (N, 2) px, descriptors (N, C),
                             scores (N,), points_camera (N, 3) m in the left optical frame, valid (N,), image_files
                             and image_sha256 ((2,) left, right; or (0,)), optional T_world_keyframe (4, 4)
    images/000000_left.png   optional RGB stereo pair (for `dlvf map reextract`)

Every byte is covered by a checksum: manifest.json by the index header, each index line by its own, each keyframe
file and image by its index line. A keyframe file carries its own id, stamp, pose and image checksums, so readers
can cross-check it with the index. File names follow from the keyframe id. Every field is checked on reading: a
missing key, a wrong type, a NaN/inf or non-rigid pose, an object array, a wrong dtype or shape is a MapStoreError
naming the file, the field and the fix. No pickle anywhere (`np.load(allow_pickle=False)`).
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import dlvf_ros
from dlvf_ros import fileio
from dlvf_ros.features.backends import BACKEND_NAMES, DESCRIPTOR_METRICS, FeatureBackend, Features
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig

SCHEMA_VERSION = 2
MANIFEST_NAME = "manifest.json"
INDEX_NAME = "index.jsonl"
KEYFRAME_DIR = "keyframes"
IMAGE_DIR = "images"
IMAGE_SIDES = ("left", "right")
RIGID_TOLERANCE = 1e-4  # as the Teacher's check of odometry poses
CORRUPT_FIX = "restore the map from a backup or re-teach it"
# descriptor dtype by metric: binary descriptors are bytes, the others float32 (as every backend returns them)
DESCRIPTOR_DTYPES = {m: np.dtype(np.uint8 if m == "hamming" else np.float32) for m in DESCRIPTOR_METRICS}
MANIFEST_KEYS = (
    "schema_version",
    "backend",
    "backend_signature",
    "descriptor_size",
    "descriptor_metric",
    "cell_size",
    "input_size",
    "colour_order",
    "calibration",
    "T_vehicle_camera",
    "software_version",
    "created_utc",
    "teach_parameters",
)
_KEYFRAME_ARRAYS = (
    "keyframe_id",
    "stamp_ns",
    "T_map_keyframe",
    "keypoints",
    "descriptors",
    "scores",
    "points_camera",
    "valid",
    "image_files",
    "image_sha256",
)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class MapStoreError(ValueError):
    """A map directory is missing, incomplete, corrupt or malformed (the message names the file, field and fix)."""


def keyframe_file(keyframe_id: int) -> str:
    """Path of a keyframe's file, relative to the map directory."""
    return f"{KEYFRAME_DIR}/{keyframe_id:06d}.npz"


def image_file(keyframe_id: int, side: str) -> str:
    """Path of a keyframe's left or right image, relative to the map directory."""
    return f"{IMAGE_DIR}/{keyframe_id:06d}_{side}.png"


def corrupt(where: str | Path, problem: str) -> MapStoreError:
    return MapStoreError(f"{where}: {problem}; {CORRUPT_FIX}")


# ---------------------------------------------------------------------------------------------------------------
# Checked fields of JSON records
# ---------------------------------------------------------------------------------------------------------------


def check_keys(data: dict, required: tuple[str, ...], where: str) -> None:
    missing = [k for k in required if k not in data]
    if missing:
        raise corrupt(where, f"field(s) {missing} missing")
    unknown = sorted(set(data) - set(required))
    if unknown:
        raise corrupt(where, f"unknown field(s) {unknown}")


def shown(value) -> str:
    """A field value as error messages show it: its JSON (at most 40 characters) and its Python type."""
    return f"{json.dumps(value)[:40]} ({type(value).__name__})"


def _int_field(data: dict, key: str, where: str, minimum: int) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise corrupt(where, f"field '{key}' is {shown(value)}, expected an integer >= {minimum}")
    return value


def _str_field(data: dict, key: str, where: str, choices: tuple[str, ...] | None = None) -> str:
    value = data[key]
    if not isinstance(value, str) or (choices is not None and value not in choices):
        expected = f"one of {list(choices)}" if choices else "a string"
        raise corrupt(where, f"field '{key}' is {shown(value)}, expected {expected}")
    return value


def _dict_field(data: dict, key: str, where: str) -> dict:
    if not isinstance(data[key], dict):
        raise corrupt(where, f"field '{key}' is {shown(data[key])}, expected a mapping")
    return data[key]


def sha256_field(data: dict, key: str, where: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise corrupt(where, f"field '{key}' is {shown(value)}, expected a SHA-256 (64 lowercase hex digits)")
    return value


def _number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and bool(np.isfinite(value))


def _transform_field(data: dict, key: str, where: str) -> np.ndarray:
    """A rigid 4x4 transform given as 16 numbers (row-major) or 4 rows of 4."""
    value = data[key]
    flat = [x for row in value for x in (row if isinstance(row, list) else [row])] if isinstance(value, list) else []
    if len(flat) != 16 or not all(_number(x) for x in flat):
        raise corrupt(where, f"field '{key}' is {shown(value)}, expected 16 finite numbers (a 4x4 transform)")
    T = np.array(flat, dtype=np.float64).reshape(4, 4)
    if not transforms.is_rigid(T, RIGID_TOLERANCE):
        raise corrupt(
            where, f"field '{key}' is not a rigid transform (rotation not orthonormal or last row not 0 0 0 1)"
        )
    return T


def parse_json_object(where: str, data: bytes) -> dict:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise corrupt(where, f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise corrupt(where, f"expected a JSON object, found {type(value).__name__}")
    return value


def check_schema_version(value, where: str, map_path: Path) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise corrupt(where, f"field 'schema_version' is {shown(value)}, expected the integer {SCHEMA_VERSION}")
    if value == 1:
        raise MapStoreError(
            f"{where}: map schema version 1 (an index without checksums) is not read any more (this software reads "
            f"version {SCHEMA_VERSION}); run `dlvf map upgrade {map_path}` to check and convert it, or re-teach"
        )
    if value != SCHEMA_VERSION:
        fix = "update dlvf_ros to read it" if value > SCHEMA_VERSION else "re-teach the map"
        raise MapStoreError(
            f"{where}: map schema version {value} is not supported (this software reads version {SCHEMA_VERSION}); "
            + fix
        )


def _parse_calibration(manifest: dict, where: str) -> StereoRig:
    calibration = _dict_field(manifest, "calibration", where)
    keys = ("width", "height", "f", "cu", "cv", "baseline", "T_vehicle_camera")
    check_keys(calibration, keys, f"{where} calibration")
    for key in ("width", "height"):
        _int_field(calibration, key, f"{where} calibration", 1)
    for key in ("f", "cu", "cv", "baseline"):
        if not _number(calibration[key]) or (key in ("f", "baseline") and calibration[key] <= 0):
            raise corrupt(f"{where} calibration", f"field '{key}' is {shown(calibration[key])}, expected a number")
    T_vehicle_camera = _transform_field(calibration, "T_vehicle_camera", f"{where} calibration")
    if not np.array_equal(_transform_field(manifest, "T_vehicle_camera", where), T_vehicle_camera):
        raise corrupt(where, "field 'T_vehicle_camera' differs from calibration.T_vehicle_camera")
    return StereoRig(**{**calibration, "T_vehicle_camera": T_vehicle_camera})


def parse_manifest(where: str, data: bytes, map_path: Path) -> tuple[dict, StereoRig]:
    """The manifest and its rig; MapStoreError naming the field for anything missing, mistyped or out of range."""
    manifest = parse_json_object(where, data)
    if "schema_version" not in manifest:
        raise corrupt(where, "field 'schema_version' is missing")
    check_schema_version(manifest["schema_version"], where, map_path)
    check_keys(manifest, MANIFEST_KEYS, where)
    _str_field(manifest, "backend", where, BACKEND_NAMES)
    _dict_field(manifest, "backend_signature", where)
    _int_field(manifest, "descriptor_size", where, 1)
    _str_field(manifest, "descriptor_metric", where, DESCRIPTOR_METRICS)
    if manifest["cell_size"] is not None:
        _int_field(manifest, "cell_size", where, 1)
    size = manifest["input_size"]
    if not (isinstance(size, list) and len(size) == 2 and all(type(x) is int and x > 0 for x in size)):
        raise corrupt(where, f"field 'input_size' is {shown(size)}, expected [height, width] in pixels")
    for key in ("colour_order", "software_version", "created_utc"):
        _str_field(manifest, key, where)
    _dict_field(manifest, "teach_parameters", where)
    return manifest, _parse_calibration(manifest, where)


def index_line(record: dict) -> bytes:
    """One index record as `<compact JSON>\\t<its SHA-256>\\n`."""
    text = json.dumps(record, separators=(",", ":"), allow_nan=False).encode()
    return text + b"\t" + fileio.sha256_bytes(text).encode() + b"\n"


def parse_index_line(where: str, line: bytes) -> dict:
    text, tab, digest = line.rpartition(b"\t")
    if not tab or fileio.sha256_bytes(text).encode() != digest:
        raise corrupt(where, "checksum mismatch (the line changed after it was written)")
    return parse_json_object(where, text)


# ---------------------------------------------------------------------------------------------------------------
# Keyframes
# ---------------------------------------------------------------------------------------------------------------


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
            if T is not None and not transforms.is_rigid(T, RIGID_TOLERANCE):
                raise ValueError(f"Keyframe {self.keyframe_id}: {key} must be a finite rigid 4x4 transform")

    @property
    def features(self) -> Features:
        return Features(self.keypoints, self.descriptors, self.scores)

    def to_npz_bytes(self, images: dict) -> bytes:
        """The keyframe file: its arrays, id, stamp, pose and the files + SHA-256 of its images (`{}` for none)."""
        sides = IMAGE_SIDES if images else ()
        arrays = {
            "keyframe_id": np.int64(self.keyframe_id),
            "stamp_ns": np.int64(self.stamp_ns),
            "T_map_keyframe": np.asarray(self.T_map_keyframe, np.float64),
            "keypoints": np.asarray(self.keypoints, np.float32),
            "descriptors": self.descriptors,
            "scores": np.asarray(self.scores, np.float32),
            "points_camera": np.asarray(self.points_camera, np.float64),
            "valid": np.asarray(self.valid, bool),
            "image_files": np.array([images[s]["file"] for s in sides], dtype=str),
            "image_sha256": np.array([images[s]["sha256"] for s in sides], dtype=str),
        }
        if self.T_world_keyframe is not None:
            arrays["T_world_keyframe"] = np.asarray(self.T_world_keyframe, np.float64)
        return fileio.npz_bytes(**arrays)


def load_npz(where: str, data: bytes) -> dict[str, np.ndarray]:
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive")
        with npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise corrupt(where, f"not a readable keyframe archive ({exc})") from None


def parse_keyframe_file(where: str, data: bytes, manifest: dict, keyframe_id: int) -> tuple[Keyframe, dict]:
    """The keyframe and its image references from a keyframe file; MapStoreError naming the array for any array
    missing, unexpected, of the wrong dtype or shape, non-finite, or a pose that is not rigid."""
    arrays = load_npz(where, data)
    missing = [k for k in _KEYFRAME_ARRAYS if k not in arrays]
    unknown = sorted(set(arrays) - set(_KEYFRAME_ARRAYS) - {"T_world_keyframe"})
    if missing or unknown:
        raise corrupt(where, f"array(s) {missing} missing" if missing else f"unknown array(s) {unknown}")

    def check(name: str, dtype, shape: tuple) -> np.ndarray:
        array = arrays[name]
        if array.dtype != np.dtype(dtype) or array.shape != shape:
            raise corrupt(where, f"array '{name}' is {array.dtype} {array.shape}, expected {np.dtype(dtype)} {shape}")
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise corrupt(where, f"array '{name}' holds NaN or inf")
        return array

    def pose(name: str) -> np.ndarray:
        T = check(name, np.float64, (4, 4))
        if not transforms.is_rigid(T, RIGID_TOLERANCE):
            raise corrupt(where, f"array '{name}' is not a rigid transform")
        return T

    stored_id = int(check("keyframe_id", np.int64, ()))
    if stored_id != keyframe_id:
        raise corrupt(where, f"array 'keyframe_id' is {stored_id}, expected {keyframe_id}")
    stamp_ns = int(check("stamp_ns", np.int64, ()))
    if stamp_ns < 0:
        raise corrupt(where, f"array 'stamp_ns' is {stamp_ns}, expected >= 0")
    if arrays["keypoints"].ndim != 2:
        raise corrupt(where, f"array 'keypoints' has shape {arrays['keypoints'].shape}, expected (N, 2)")
    n = len(arrays["keypoints"])
    keypoints = check("keypoints", np.float32, (n, 2))
    descriptor_dtype = DESCRIPTOR_DTYPES[manifest["descriptor_metric"]]
    scores = check("scores", np.float32, (n,))
    if np.any((scores < 0) | (scores > 1)):
        raise corrupt(where, "array 'scores' has values outside [0, 1]")
    files, sha256 = arrays["image_files"], arrays["image_sha256"]
    if (
        files.dtype.kind != "U"
        or sha256.dtype.kind != "U"
        or files.shape not in ((0,), (2,))
        or sha256.shape != files.shape
    ):
        raise corrupt(where, "arrays 'image_files' and 'image_sha256' must be two strings each, or empty")
    images = {}
    if len(files):
        expected_files = [image_file(keyframe_id, side) for side in IMAGE_SIDES]
        if files.tolist() != expected_files or not all(_SHA256.fullmatch(s) for s in sha256.tolist()):
            raise corrupt(where, f"arrays 'image_files' / 'image_sha256' are not {expected_files} and their SHA-256")
        images = {side: {"file": f, "sha256": s} for side, f, s in zip(IMAGE_SIDES, files.tolist(), sha256.tolist())}
    keyframe = Keyframe(
        keyframe_id=keyframe_id,
        stamp_ns=stamp_ns,
        T_map_keyframe=pose("T_map_keyframe"),
        keypoints=keypoints,
        descriptors=check("descriptors", descriptor_dtype, (n, manifest["descriptor_size"])),
        scores=scores,
        points_camera=check("points_camera", np.float64, (n, 3)),
        valid=check("valid", bool, (n,)),
        T_world_keyframe=pose("T_world_keyframe") if "T_world_keyframe" in arrays else None,
    )
    return keyframe, images


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
    def from_json(cls, data: dict, where: str, keyframe_id: int) -> KeyframeEntry:
        """Parse and check an index record that must describe keyframe `keyframe_id`."""
        check_keys(data, ("id", "file", "sha256", "stamp_ns", "T_map_keyframe", "images"), where)
        if _int_field(data, "id", where, 0) != keyframe_id:
            raise corrupt(where, f"field 'id' is {data['id']}, expected {keyframe_id} (ids run 0, 1, 2, ... in order)")
        if data["file"] != keyframe_file(keyframe_id):
            raise corrupt(where, f"field 'file' is {shown(data['file'])}, expected '{keyframe_file(keyframe_id)}'")
        images = _dict_field(data, "images", where)
        if images:
            check_keys(images, IMAGE_SIDES, f"{where} images")
            for side in IMAGE_SIDES:
                reference = _dict_field(images, side, f"{where} images")
                check_keys(reference, ("file", "sha256"), f"{where} images.{side}")
                sha256_field(reference, "sha256", f"{where} images.{side}")
                if reference["file"] != image_file(keyframe_id, side):
                    raise corrupt(
                        f"{where} images.{side}",
                        f"field 'file' is {shown(reference['file'])}, expected '{image_file(keyframe_id, side)}'",
                    )
        return cls(
            keyframe_id,
            data["file"],
            sha256_field(data, "sha256", where),
            _int_field(data, "stamp_ns", where, 0),
            _transform_field(data, "T_map_keyframe", where),
            images,
        )

    @classmethod
    def of_file(cls, keyframe: Keyframe, file: str, data: bytes, images: dict) -> KeyframeEntry:
        """The entry that the keyframe file `file` (bytes `data`, parsed into `keyframe`, `images`) implies."""
        return cls(
            keyframe.keyframe_id, file, fileio.sha256_bytes(data), keyframe.stamp_ns, keyframe.T_map_keyframe, images
        )

    def differences(self, other: KeyframeEntry) -> list[str]:
        """Names of the fields in which two entries disagree."""
        pairs = {
            "stamp_ns": self.stamp_ns == other.stamp_ns,
            "T_map_keyframe": np.array_equal(self.T_map_keyframe, other.T_map_keyframe),
            "images": self.images == other.images,
        }
        return [name for name, same in pairs.items() if not same]


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


def new_manifest(backend: FeatureBackend, rig: StereoRig, teach_parameters: dict | None = None) -> dict:
    """The manifest of a new map taught with `backend` features and calibration `rig`."""
    return {
        "schema_version": SCHEMA_VERSION,
        **feature_description(backend, rig),
        "calibration": rig.to_dict(),
        "T_vehicle_camera": rig.to_dict()["T_vehicle_camera"],
        "software_version": dlvf_ros.__version__,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "teach_parameters": dict(teach_parameters or {}),
    }
