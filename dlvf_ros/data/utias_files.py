"""Files of the UTIAS long-term dataset layout: CSV transforms, times, ground truth, YAML metadata, RGB PNGs.

Parsers raise `UtiasFormatError` naming the file, line and column (1-based). See docs/conventions.md for the layout.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import yaml

from dlvf_ros.data.pose_graph import Vertex
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig

TEACH_RUN_ID = 0
CALIBRATION_FILE = "calibration.yaml"
TEMPORAL_FILE = "transforms_temporal.txt"
SPATIAL_FILE = "transforms_spatial.txt"
TIMES_FILE = "times.txt"
POSES_WORLD_FILE = "poses_world.txt"
RUN_INFO_FILE = "run_info.yaml"
SIDES = ("left", "right")
RUN_DIR_PATTERN = re.compile(r"^run_(\d{6})$")
_RIGID_TOL = 1e-3  # text files from other tools carry few digits; rotations are re-orthonormalised on load


class UtiasFormatError(ValueError):
    """A malformed dataset file; names the file and, where known, the line and column (1-based)."""

    def __init__(self, path: str | Path, message: str, line: int | None = None, column: int | None = None) -> None:
        self.path, self.line, self.column = Path(path), line, column
        where = str(path) + (f", line {line}" if line is not None else "") + (f", column {column}" if column else "")
        super().__init__(f"{where}: {message}")


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """Per-run metadata from `run_info.yaml`; all None for the real dataset, which has none."""

    run_id: int
    lighting: str | None = None
    hour: float | None = None
    seed: int | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        data = {"lighting": self.lighting, "hour": self.hour, "seed": self.seed}
        return {**{k: v for k, v in data.items() if v is not None}, **self.extra}


def run_dir_name(run_id: int) -> str:
    return f"run_{int(run_id):06d}"


def image_relpath(vertex: Vertex, side: str = "left") -> str:
    """Path of one image relative to the dataset root."""
    if side not in SIDES:
        raise ValueError(f"image side must be one of {SIDES}, got {side!r}")
    run_id, pose_id = vertex
    return f"{run_dir_name(run_id)}/images/{side}/{int(pose_id):06d}.png"


def _read_rows(path: Path, n_int: int, n_float: int) -> Iterator[tuple[int, list[int], np.ndarray]]:
    """Yield (line number, integer columns, float columns) of a comma-separated file; '#' lines are comments."""
    n_columns = n_int + n_float
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise UtiasFormatError(path, f"not a text file ({exc})") from exc
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = [field.strip() for field in stripped.split(",")]
        if len(fields) != n_columns:
            raise UtiasFormatError(
                path,
                f"expected {n_columns} comma-separated columns, found {len(fields)}",
                line_no,
                min(len(fields), n_columns) + 1,
            )
        ints = []
        for column, field in enumerate(fields[:n_int], start=1):
            try:
                value = float(field)
            except ValueError:
                value = float("nan")
            if not (np.isfinite(value) and value == int(value)):
                raise UtiasFormatError(path, f"expected an integer id, found {field!r}", line_no, column)
            ints.append(int(value))
        floats = np.empty(n_float)
        for i, field in enumerate(fields[n_int:]):
            try:
                floats[i] = float(field)
            except ValueError:
                raise UtiasFormatError(path, f"expected a number, found {field!r}", line_no, n_int + i + 1) from None
            if not np.isfinite(floats[i]):
                raise UtiasFormatError(path, f"expected a finite number, found {field!r}", line_no, n_int + i + 1)
        yield line_no, ints, floats


def _rigid_from_row(path: Path, line_no: int, first_column: int, values: np.ndarray) -> np.ndarray:
    """4x4 from 16 row-major values; checks rigidity (tolerance 1e-3) and re-orthonormalises a rounded rotation."""
    T = values.reshape(4, 4).copy()
    if not transforms.is_rigid(T, tol=_RIGID_TOL):
        raise UtiasFormatError(
            path,
            "the 16 values are not a rigid transform (orthonormal rotation, last row 0 0 0 1)",
            line_no,
            first_column,
        )
    if not transforms.is_rigid(T, tol=1e-9):  # few printed digits: project onto SO(3), exact files stay exact
        U, _, Vt = np.linalg.svd(T[:3, :3])
        T[:3, :3] = U @ Vt
        T[3] = [0.0, 0.0, 0.0, 1.0]
    return T


def read_transforms_file(path: str | Path, expected_run_id: int) -> list[tuple[Vertex, Vertex, np.ndarray]]:
    """Rows of a transforms_temporal/spatial file as (this vertex, other vertex, T_other_this)."""
    path = Path(path)
    rows: list[tuple[Vertex, Vertex, np.ndarray]] = []
    seen: dict[tuple[int, int], int] = {}
    for line_no, ints, values in _read_rows(path, 4, 16):
        run_id, pose_id, other_run_id, other_pose_id = ints
        if run_id != expected_run_id:
            raise UtiasFormatError(
                path, f"row belongs to run {run_id}, but the file is in {run_dir_name(expected_run_id)}", line_no, 1
            )
        if (run_id, pose_id) in seen:
            raise UtiasFormatError(
                path, f"vertex ({run_id}, {pose_id}) repeats the row on line {seen[(run_id, pose_id)]}", line_no, 2
            )
        if (other_run_id, other_pose_id) == (run_id, pose_id):
            raise UtiasFormatError(path, "a vertex is linked to itself", line_no, 3)
        seen[(run_id, pose_id)] = line_no
        rows.append(((run_id, pose_id), (other_run_id, other_pose_id), _rigid_from_row(path, line_no, 5, values)))
    return rows


def read_times(path: str | Path) -> dict[int, int]:
    """{pose_id: stamp_ns} from times.txt."""
    path = Path(path)
    stamps: dict[int, int] = {}
    for line_no, ints, _ in _read_rows(path, 2, 0):
        if ints[0] in stamps:
            raise UtiasFormatError(path, f"pose {ints[0]} appears twice", line_no, 1)
        stamps[ints[0]] = ints[1]
    return stamps


def read_poses_world(path: str | Path) -> dict[int, np.ndarray]:
    """{pose_id: T_world_vehicle} from poses_world.txt."""
    path = Path(path)
    poses: dict[int, np.ndarray] = {}
    for line_no, ints, values in _read_rows(path, 1, 16):
        if ints[0] in poses:
            raise UtiasFormatError(path, f"pose {ints[0]} appears twice", line_no, 1)
        poses[ints[0]] = _rigid_from_row(path, line_no, 2, values)
    return poses


def format_matrix(T: np.ndarray) -> str:
    return ",".join(repr(float(x)) for x in np.asarray(T, dtype=np.float64).reshape(16))


def _read_yaml_mapping(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise UtiasFormatError(path, f"not valid YAML: {getattr(exc, 'problem', exc)}", line, column) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UtiasFormatError(path, f"the top level must be a mapping, found {type(data).__name__}", 1, 1)
    return data


def read_calibration(path: str | Path) -> StereoRig:
    path = Path(path)
    try:
        return StereoRig.from_dict(_read_yaml_mapping(path))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, UtiasFormatError):
            raise
        raise UtiasFormatError(path, f"not a valid StereoRig calibration: {exc}") from exc


def run_info_from_dict(run_id: int, data: dict) -> RunInfo:
    """RunInfo from a mapping with optional lighting (str), hour (number, 0-24), seed (int) and any other keys."""
    data = dict(data)
    lighting, hour, seed = data.pop("lighting", None), data.pop("hour", None), data.pop("seed", None)
    if lighting is not None and not isinstance(lighting, str):
        raise ValueError(f"'lighting' must be a string, found {lighting!r}")
    if hour is not None and (isinstance(hour, bool) or not isinstance(hour, (int, float)) or not 0 <= hour <= 24):
        raise ValueError(f"'hour' must be a number in [0, 24], found {hour!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"'seed' must be an integer, found {seed!r}")
    return RunInfo(int(run_id), lighting, None if hour is None else float(hour), seed, data)


def read_run_info(path: str | Path, run_id: int) -> RunInfo:
    path = Path(path)
    try:
        return run_info_from_dict(run_id, _read_yaml_mapping(path))
    except UtiasFormatError:
        raise
    except ValueError as exc:
        raise UtiasFormatError(path, str(exc)) from exc


def load_rgb_png(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an 8-bit PNG (grey and RGBA are converted)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint8:
        raise UtiasFormatError(path, "not an 8-bit image that OpenCV can decode")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def encode_rgb_png(image: np.ndarray, compression: int = 1) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 RGB image."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise ValueError("OpenCV could not encode the image as PNG")
    return data.tobytes()
