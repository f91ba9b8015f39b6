"""Which torch dlvf_ros supports, checked when a node starts (before any model is loaded).

torch runs the learned backend and RANSAC (every backend), so it is a declared dependency: package.xml names the
rosdep key `python3-torch`; requirements/requirements.in pins the tested version; docker/Dockerfile installs the CPU
wheel with pip (the documented step where the system package is older than `SUPPORTED_TORCH`).
A TorchScript model loads in the torch that exported it or a newer one, so the installed torch must also be at least
the version recorded in the model (`torch_version` of the metadata.json inside the file, read without torch).
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

SUPPORTED_TORCH = ((2, 13), (3, 0))  # [lowest tested, first unsupported) major.minor


class TorchVersionError(ValueError):
    """The installed torch is outside the supported range, or older than a model needs."""


def parse_version(text: str) -> tuple[int, int]:
    """(major, minor) of a version string such as "2.13.0+cpu"; ValueError when it has none."""
    match = re.match(r"(\d+)\.(\d+)", text.strip())
    if match is None:
        raise ValueError(f"not a version: {text!r}")
    return int(match.group(1)), int(match.group(2))


def recorded_torch_version(model_path: str | Path) -> str | None:
    """The torch version an exported model records (its metadata.json), or None when it records none."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            names = [n for n in archive.namelist() if n.endswith("extra/metadata.json")]
            return json.loads(archive.read(names[0])).get("torch_version") if names else None
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError):
        return None  # not a TorchScript archive: loading it reports the problem


def check_torch_version(installed: str, model_torch: str | None = None, model: str = "the model") -> None:
    """TorchVersionError naming the fix unless `installed` is in `SUPPORTED_TORCH` and at least `model_torch`."""
    low, below = SUPPORTED_TORCH
    supported = f">={low[0]}.{low[1]},<{below[0]}.{below[1]}"
    version = parse_version(installed)
    if not low <= version < below:
        raise TorchVersionError(
            f"torch {installed} is not supported (supported: torch{supported}); install a supported torch with pip "
            f'(pip install "torch{supported}"; docker/Dockerfile shows the CPU wheel)'
        )
    if model_torch is not None and version < parse_version(model_torch):
        raise TorchVersionError(
            f"{model} was exported with torch {model_torch}, newer than the installed {installed}; upgrade torch "
            f"(supported: torch{supported}) or export the model with this torch"
        )
