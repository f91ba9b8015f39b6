"""The map store: a directory of teach keyframes (schema in `map_format`) that cannot lie and survives a writer
killed at any moment.

Commit order per keyframe: images, then the keyframe file (each atomic), then one index line appended and fsynced
(the index is never rewritten). A reader trusts complete index lines only, so a writer killed at any moment leaves a
map that loads up to its last complete keyframe. Bytes after the last newline are accepted only as the unfinished
start of the line that the next keyframe file implies; anything else there is corruption. Creation writes
manifest.json, then index.jsonl. Readers check every field, every checksum, the index against each keyframe file's
own id, stamp, pose and images, and that every file resolves inside the map directory (no symlink out of it).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from dlvf_ros import fileio
from dlvf_ros.config import from_dict
from dlvf_ros.features.backends import FeatureBackend
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.localization.frontend import StereoConfig
from dlvf_ros.localization.map_format import (
    CORRUPT_FIX,
    DESCRIPTOR_DTYPES,
    IMAGE_DIR,
    IMAGE_SIDES,
    INDEX_NAME,
    KEYFRAME_DIR,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    Keyframe,
    KeyframeEntry,
    MapStoreError,
    check_keys,
    check_schema_version,
    corrupt,
    image_file,
    index_line,
    keyframe_file,
    load_npz,
    new_manifest,
    parse_index_line,
    parse_json_object,
    parse_keyframe_file,
    parse_manifest,
    sha256_field,
    shown,
)

SCHEMA_1_INDEX_NAME = "index.json"  # schema 1's index (no checksums), read only by `dlvf map upgrade`


class MapMismatchError(MapStoreError):
    """A map was built with other features or another calibration than the ones in use."""


def is_map_store(path: str | Path) -> bool:
    """True if `path` holds a map store's manifest or index (of any schema version)."""
    return any(os.path.lexists(Path(path) / name) for name in (MANIFEST_NAME, INDEX_NAME, SCHEMA_1_INDEX_NAME))


def check_new_map_path(path: str | Path, overwrite: bool) -> None:
    """FileExistsError unless a new map may be written at `path`: absent or empty, or a map store and `overwrite`."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory; choose another map path")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"map directory {path} exists and is not empty; choose another --out or pass --overwrite"
            )
        if not is_map_store(path):
            raise FileExistsError(f"refusing to overwrite {path}: it is not a map store")


@contextlib.contextmanager
def _as_writer_error(who: str) -> Iterator[None]:
    """Turn the reader's check of what is about to be written into a ValueError without the reader's fix."""
    try:
        yield
    except MapStoreError as exc:
        raise ValueError(f"{who}: {str(exc).removesuffix('; ' + CORRUPT_FIX)}") from None


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
        return cls.with_manifest(path, new_manifest(backend, rig, teach_parameters), overwrite)

    @classmethod
    def with_manifest(cls, path: str | Path, manifest: dict, overwrite: bool = False) -> MapWriter:
        """Start an empty map at `path` with this manifest (checked as a reader would)."""
        path = Path(path)
        manifest_bytes = json.dumps(manifest, indent=2, allow_nan=False).encode()
        with _as_writer_error("MapWriter"):
            parse_manifest(MANIFEST_NAME, manifest_bytes, path)
        check_new_map_path(path, overwrite)
        if path.is_dir() and any(path.iterdir()):
            shutil.rmtree(path)
        (path / KEYFRAME_DIR).mkdir(parents=True, exist_ok=True)
        (path / IMAGE_DIR).mkdir(exist_ok=True)
        fileio.atomic_write_bytes(path / MANIFEST_NAME, manifest_bytes)
        header = {"schema_version": SCHEMA_VERSION, "manifest_sha256": fileio.sha256_bytes(manifest_bytes)}
        fileio.atomic_write_bytes(path / INDEX_NAME, index_line(header))
        return cls(path, manifest)

    def add(
        self, keyframe: Keyframe, left_rgb: np.ndarray | None = None, right_rgb: np.ndarray | None = None
    ) -> KeyframeEntry:
        """Commit one keyframe (ids must run 0, 1, 2, ..., stamps increase); images are stored when both are given."""
        if keyframe.keyframe_id != len(self.entries):
            raise ValueError(f"MapWriter.add: keyframe id {keyframe.keyframe_id}, expected {len(self.entries)}")
        if self.entries and keyframe.stamp_ns <= self.entries[-1].stamp_ns:
            raise ValueError(
                f"MapWriter.add: keyframe stamp {keyframe.stamp_ns} ns is not after the previous keyframe's "
                f"{self.entries[-1].stamp_ns} ns"
            )
        descriptors = keyframe.descriptors
        expected_dtype = DESCRIPTOR_DTYPES[self.manifest["descriptor_metric"]]
        if descriptors.shape[1] != self.manifest["descriptor_size"] or descriptors.dtype != expected_dtype:
            raise ValueError(
                f"MapWriter.add: descriptors {descriptors.dtype} (N, {descriptors.shape[1]}) do not match the map's "
                f"{expected_dtype} (N, {self.manifest['descriptor_size']})"
            )
        pngs = {}
        if left_rgb is not None and right_rgb is not None:
            pngs = {
                image_file(keyframe.keyframe_id, s): _png_bytes(i) for s, i in zip(IMAGE_SIDES, (left_rgb, right_rgb))
            }
        images = {
            side: {"file": f, "sha256": fileio.sha256_bytes(b)} for side, (f, b) in zip(IMAGE_SIDES, pngs.items())
        }
        data = keyframe.to_npz_bytes(images)
        relative = keyframe_file(keyframe.keyframe_id)
        with _as_writer_error("MapWriter.add"):  # checked before anything is written
            parsed, _ = parse_keyframe_file(
                f"keyframe {keyframe.keyframe_id}", data, self.manifest, keyframe.keyframe_id
            )
        entry = KeyframeEntry.of_file(parsed, relative, data, images)
        for file, png in pngs.items():
            fileio.atomic_write_bytes(self.path / file, png)
        fileio.atomic_write_bytes(self.path / relative, data)
        self._append_to_index(index_line(entry.to_json()))
        self.entries.append(entry)
        return entry

    def _append_to_index(self, line: bytes) -> None:
        fd = os.open(self.path / INDEX_NAME, os.O_WRONLY | os.O_APPEND)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------


def _check_map_directory(path: Path) -> None:
    """MapStoreError saying what `path` is when it is not a readable directory."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise MapStoreError(
                f"map {path} is a broken symlink (to {os.readlink(path)}); point it at a map directory"
            ) from None
        raise MapStoreError(f"map {path} does not exist; build one with `dlvf teach --bag BAG --out {path}`") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise MapStoreError(f"map {path} is a symlink loop; point it at a map directory") from None
        raise MapStoreError(f"map {path} cannot be opened: {exc.strerror}") from None
    if not stat.S_ISDIR(mode):
        raise MapStoreError(f"map {path} is a file, not a map directory; pass the directory that holds {MANIFEST_NAME}")
    if not os.access(path, os.R_OK | os.X_OK):
        raise MapStoreError(f"map {path}: permission denied; {_readable_fix(path)}")


def _readable_fix(map_path: Path) -> str:
    return f"make the map readable by this user, e.g. `chmod -R a+rX {map_path}` as its owner"


def _read_map_file(map_path: Path, relative: str) -> bytes:
    """The bytes of a file of the map, refused (MapStoreError) when it resolves outside the map directory."""
    path = map_path / relative
    try:
        resolved, root = path.resolve(), map_path.resolve()
    except (OSError, RuntimeError) as exc:
        raise corrupt(path, f"cannot be resolved ({exc})") from None
    if not resolved.is_relative_to(root):
        raise corrupt(path, f"resolves to {resolved}, outside the map directory {root}")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise corrupt(path, "missing") from None
    except PermissionError:
        raise MapStoreError(f"{path}: permission denied; {_readable_fix(map_path)}") from None
    except OSError as exc:
        raise corrupt(path, f"cannot be read ({exc.strerror})") from None


def _read_manifest(map_path: Path) -> bytes:
    """The manifest's bytes; MapStoreError saying what `map_path` is when it is not a map directory."""
    _check_map_directory(map_path)
    if not os.path.lexists(map_path / MANIFEST_NAME):
        raise MapStoreError(
            f"{map_path} is not a map store (no {MANIFEST_NAME}); a teach pass killed before its first keyframe "
            "leaves this: teach again"
        )
    return _read_map_file(map_path, MANIFEST_NAME)


def _read_checked(map_path: Path, relative: str, expected_sha256: str) -> bytes:
    """A file of the map whose SHA-256 must be `expected_sha256`."""
    data = _read_map_file(map_path, relative)
    if fileio.sha256_bytes(data) != expected_sha256:
        raise corrupt(map_path / relative, "checksum mismatch (the file changed after it was written)")
    return data


class MapStore:
    """A map opened for reading: manifest, rig, index entries; keyframe arrays load lazily (checksum-verified and
    cross-checked with the index)."""

    def __init__(
        self, path: Path, manifest: dict, rig: StereoRig, entries: list[KeyframeEntry], cache_size: int = 256
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.entries = entries
        self.rig = rig
        self.positions_m = np.array([e.T_map_keyframe[:3, 3] for e in entries]).reshape(-1, 3)
        self.unfinished_index_bytes = 0  # an append cut short by a killed writer (harmless, see `notes`)
        self._cache: OrderedDict[int, Keyframe] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def open(cls, path: str | Path, verify: bool = True, cache_size: int = 256) -> MapStore:
        """Open a map, checking the manifest and every index line; `verify` also reads every keyframe and image now
        (checksum, every array, and the keyframe's id, stamp, pose and images against the index)."""
        path = Path(path)
        manifest_bytes = _read_manifest(path)
        manifest, rig = parse_manifest(str(path / MANIFEST_NAME), manifest_bytes, path)
        if not os.path.lexists(path / INDEX_NAME):
            raise MapStoreError(
                f"{path} is an incomplete map store (no {INDEX_NAME}): its creation was interrupted; teach again"
            )
        index = _read_map_file(path, INDEX_NAME)
        lines = index.split(b"\n")
        unfinished = lines.pop()  # the bytes after the last newline
        if not lines:
            raise corrupt(path / INDEX_NAME, "no complete header line")
        where = f"{path / INDEX_NAME} line 1"
        header = parse_index_line(where, lines[0])
        check_keys(header, ("schema_version", "manifest_sha256"), where)
        check_schema_version(header["schema_version"], where, path)
        if sha256_field(header, "manifest_sha256", where) != fileio.sha256_bytes(manifest_bytes):
            raise corrupt(path / MANIFEST_NAME, "checksum mismatch (the file changed after the map was created)")
        entries: list[KeyframeEntry] = []
        for number, line in enumerate(lines[1:], start=2):
            where = f"{path / INDEX_NAME} line {number}"
            entry = KeyframeEntry.from_json(parse_index_line(where, line), where, len(entries))
            if entries and entry.stamp_ns <= entries[-1].stamp_ns:
                raise corrupt(where, f"stamp_ns {entry.stamp_ns} is not after the previous keyframe's")
            entries.append(entry)
        store = cls(path, manifest, rig, entries, cache_size)
        if unfinished:
            store._check_unfinished_line(unfinished, len(index))
        if verify:
            problems = store.verify()
            if problems:
                raise MapStoreError(
                    f"map {path}: {len(problems)} problem(s), first: {problems[0]}; `dlvf map verify {path}` lists "
                    "them all"
                )
        return store

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def descriptor_metric(self) -> str:
        return self.manifest["descriptor_metric"]

    @property
    def stereo_parameters(self) -> dict | None:
        """The teach stereo settings (`StereoConfig` as a dict), None if unrecorded (a map not written by a teacher).

        Maps taught before the stereo method was recorded (teach_parameters.sgbm only) used dense SGBM.
        """
        teach = self.manifest.get("teach_parameters", {})
        if "stereo" in teach:
            return dict(teach["stereo"])
        return {"method": "sgbm", "sgbm": dict(teach["sgbm"])} if "sgbm" in teach else None

    def taught_stereo(self) -> StereoConfig:
        """The teach `StereoConfig`, which repeat must use (the defaults where the map recorded none)."""
        return from_dict(StereoConfig, self.stereo_parameters or {}, f"{self.path} teach_parameters.stereo")

    @property
    def has_images(self) -> bool:
        return bool(self.entries) and all(e.images for e in self.entries)

    def _check_unfinished_line(self, unfinished: bytes, index_size: int) -> None:
        """Accept bytes after the last newline only as the start of the line the next keyframe file implies."""
        next_id = len(self.entries)
        try:
            data = _read_map_file(self.path, keyframe_file(next_id))
            keyframe, images = parse_keyframe_file(keyframe_file(next_id), data, self.manifest, next_id)
            expected = index_line(KeyframeEntry.of_file(keyframe, keyframe_file(next_id), data, images).to_json())
        except MapStoreError:
            expected = b""
        if len(unfinished) >= len(expected) or not expected.startswith(unfinished):
            index = self.path / INDEX_NAME
            raise MapStoreError(
                f"{index}: the last {len(unfinished)} bytes (after line {next_id + 1}) are not a complete keyframe "
                f"line (corrupt, or cut short by a power loss); to keep the first {next_id} keyframes run "
                f"`truncate -s {index_size - len(unfinished)} {index}`, or {CORRUPT_FIX}"
            )
        self.unfinished_index_bytes = len(unfinished)

    def _load(self, entry: KeyframeEntry) -> Keyframe:
        """Read, checksum, parse and cross-check one keyframe file against its index entry."""
        data = _read_checked(self.path, entry.file, entry.sha256)
        where = str(self.path / entry.file)
        keyframe, images = parse_keyframe_file(where, data, self.manifest, entry.keyframe_id)
        differences = entry.differences(KeyframeEntry.of_file(keyframe, entry.file, data, images))
        if differences:
            raise corrupt(
                f"{self.path / INDEX_NAME} line {entry.keyframe_id + 2}",
                f"keyframe {entry.keyframe_id}: the index and {entry.file} disagree on {', '.join(differences)}",
            )
        return keyframe

    def verify(self) -> list[str]:
        """Check every keyframe file and image (checksum, arrays, agreement with the index); one line per problem
        (empty when the map is sound). The manifest and index were checked by `open`."""
        problems = []
        for entry in self.entries:
            try:
                self._load(entry)
                for side in IMAGE_SIDES if entry.images else ():
                    _read_checked(self.path, entry.images[side]["file"], entry.images[side]["sha256"])
            except MapStoreError as exc:
                problems.append(f"keyframe {entry.keyframe_id}: {exc}")
        return problems

    def notes(self) -> list[str]:
        """Harmless leftovers of interrupted writers: temporary files, an unfinished last index line, and files that
        no index line lists (ignored by readers)."""
        listed = {Path(MANIFEST_NAME), Path(INDEX_NAME)}
        for entry in self.entries:
            listed.add(Path(entry.file))
            listed.update(Path(reference["file"]) for reference in entry.images.values())
        temporary, unlisted = [], []
        for file in sorted(p.relative_to(self.path) for p in self.path.rglob("*") if not p.is_dir()):
            if file.name.startswith(".") and file.name.endswith(".tmp"):
                temporary.append(str(file))
            elif file not in listed:
                unlisted.append(str(file))
        notes = []
        if temporary:
            notes.append(f"{len(temporary)} temporary file(s) of an interrupted writer: {', '.join(temporary[:3])}")
        if self.unfinished_index_bytes:
            notes.append(
                f"{INDEX_NAME} ends in the unfinished line of keyframe {len(self)} ({self.unfinished_index_bytes} "
                "bytes; a writer was killed while committing it)"
            )
        if unlisted:
            notes.append(f"{len(unlisted)} file(s) that no index line lists: {', '.join(unlisted[:3])}")
        return notes

    def keyframe(self, keyframe_id: int) -> Keyframe:
        """The keyframe with this id (cached, least recently used evicted)."""
        if not 0 <= keyframe_id < len(self.entries):
            raise IndexError(f"keyframe id {keyframe_id} out of range: the map has {len(self.entries)} keyframes")
        if keyframe_id in self._cache:
            self._cache.move_to_end(keyframe_id)
            return self._cache[keyframe_id]
        keyframe = self._load(self.entries[keyframe_id])
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
        left, right = (
            _decode_png(
                self.path / entry.images[side]["file"],
                _read_checked(self.path, entry.images[side]["file"], entry.images[side]["sha256"]),
                self.rig,
            )
            for side in IMAGE_SIDES
        )
        return left, right

    def check_compatible(
        self, backend: FeatureBackend, rig: StereoRig | None = None, stereo_method: str | None = None
    ) -> None:
        """Raise MapMismatchError unless `backend` (and `rig`, `stereo_method` if given) match the map's."""
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
        taught_stereo = (self.stereo_parameters or {}).get("method")
        if None not in (stereo_method, taught_stereo) and stereo_method != taught_stereo:
            raise MapMismatchError(
                f"map {self.path} was taught with stereo method {taught_stereo!r}, but the localizer uses "
                f"{stereo_method!r}; set the localizer's stereo.method to {taught_stereo!r}, or re-teach the map"
            )


def _decode_png(where: Path, data: bytes, rig: StereoRig) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != (rig.height, rig.width):
        found = "not a PNG image" if image is None else f"{image.shape[1]}x{image.shape[0]}"
        raise corrupt(where, f"{found}, expected a {rig.width}x{rig.height} image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_schema_1(path: str | Path) -> tuple[dict, Iterator[tuple[Keyframe, np.ndarray | None, np.ndarray | None]]]:
    """A schema-1 map (index.json without checksums) as the current manifest and its (keyframe, left, right images
    or None) in order, each checked like a current map: the index against the keyframe files' checksums, poses and
    stamps, and every field. For `dlvf map upgrade`."""
    path = Path(path)
    where = str(path / MANIFEST_NAME)
    manifest = parse_json_object(where, _read_manifest(path))
    if manifest.get("schema_version") != 1:
        raise MapStoreError(
            f"{where}: schema_version is {shown(manifest.get('schema_version'))}, not 1; only schema-1 maps are "
            "upgraded"
        )
    manifest["schema_version"] = SCHEMA_VERSION
    _, rig = parse_manifest(where, json.dumps(manifest).encode(), path)
    where = str(path / SCHEMA_1_INDEX_NAME)
    index = parse_json_object(where, _read_map_file(path, SCHEMA_1_INDEX_NAME))
    check_keys(index, ("schema_version", "keyframes"), where)
    if not isinstance(index["keyframes"], list) or not all(isinstance(r, dict) for r in index["keyframes"]):
        raise corrupt(where, "field 'keyframes' is not a list of records")
    entries = [KeyframeEntry.from_json(r, f"{where} keyframe {i}", i) for i, r in enumerate(index["keyframes"])]

    def keyframes() -> Iterator[tuple[Keyframe, np.ndarray | None, np.ndarray | None]]:
        for entry in entries:
            where = str(path / entry.file)
            data = _read_checked(path, entry.file, entry.sha256)
            arrays = load_npz(where, data)
            arrays["keyframe_id"] = np.asarray(entry.keyframe_id, dtype=np.int64)
            arrays["image_files"] = np.array([entry.images[s]["file"] for s in entry.images], dtype=str)
            arrays["image_sha256"] = np.array([entry.images[s]["sha256"] for s in entry.images], dtype=str)
            keyframe, images = parse_keyframe_file(where, fileio.npz_bytes(**arrays), manifest, entry.keyframe_id)
            differences = entry.differences(KeyframeEntry.of_file(keyframe, entry.file, data, images))
            if differences:
                raise corrupt(where, f"index.json and this file disagree on {', '.join(differences)}")
            pair: list[np.ndarray | None] = [None, None]
            for i, side in enumerate(IMAGE_SIDES if images else ()):
                image_data = _read_checked(path, images[side]["file"], images[side]["sha256"])
                pair[i] = _decode_png(path / images[side]["file"], image_data, rig)
            yield keyframe, pair[0], pair[1]

    return manifest, keyframes()


def _signature_identity(signature: dict) -> dict:
    """The part of a backend signature that must agree: the model hash, or the classical parameters."""
    if signature.get("backend") == "learned":
        return {"backend": "learned", "model_sha256": signature.get("model_sha256")}
    return {"backend": signature.get("backend"), "params": signature.get("params")}
