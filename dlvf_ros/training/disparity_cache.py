"""SGBM disparity computed once per training image and cached as atomic .npy files (never per epoch).

Images are resized to the training size first (`resized_rgb`), so the cached disparity (float32 px, NaN invalid,
`dlvf_ros.geometry.stereo_matching.disparity_sgbm`) is that of the images the network sees. The cache directory
name is a hash of the image size and the SGBM parameters, so changing either never reuses stale files.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from dlvf_ros import fileio
from dlvf_ros.config import to_dict
from dlvf_ros.data.utias_files import image_relpath, load_rgb_png
from dlvf_ros.geometry.stereo_matching import SgbmConfig, disparity_sgbm


def resized_rgb(root: Path, vertex: tuple[int, int], side: str, width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8 RGB image of a vertex, resized with area averaging when its size differs."""
    image = load_rgb_png(Path(root) / image_relpath(vertex, side))
    if image.shape[:2] == (height, width):
        return image
    source_aspect, target_aspect = image.shape[1] / image.shape[0], width / height
    if abs(source_aspect - target_aspect) > 1e-3 * target_aspect:
        raise ValueError(
            f"{Path(root) / image_relpath(vertex, side)}: a {image.shape[1]}x{image.shape[0]} image cannot be resized "
            f"to {width}x{height} without changing its aspect ratio; pick an image size with the same aspect"
        )
    interpolation = cv2.INTER_AREA if width < image.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def cache_key(width: int, height: int, sgbm: SgbmConfig) -> str:
    description = json.dumps({"width": width, "height": height, "sgbm": to_dict(sgbm)}, sort_keys=True)
    return f"{width}x{height}_{fileio.sha256_bytes(description.encode())[:12]}"


class DisparityCache:
    """Cached disparities of the images of several dataset roots: `directory/<key>/root_<i>/run_XXXXXX/XXXXXX.npy`."""

    def __init__(self, directory: str | Path, roots: list[Path], width: int, height: int, sgbm: SgbmConfig) -> None:
        self.roots = [Path(root) for root in roots]
        self.width, self.height, self.sgbm = width, height, sgbm
        self.directory = Path(directory) / cache_key(width, height, sgbm)

    def path(self, root_index: int, vertex: tuple[int, int]) -> Path:
        run_id, pose_id = vertex
        return self.directory / f"root_{root_index}" / f"run_{int(run_id):06d}" / f"{int(pose_id):06d}.npy"

    def compute(self, root_index: int, vertex: tuple[int, int]) -> np.ndarray:
        root = self.roots[root_index]
        left = resized_rgb(root, vertex, "left", self.width, self.height)
        right = resized_rgb(root, vertex, "right", self.width, self.height)
        return disparity_sgbm(left, right, self.sgbm)

    def store(self, item: tuple[int, tuple[int, int]]) -> None:
        """Compute the disparity of (root_index, vertex) and write it to its cache file (atomically)."""
        buffer = io.BytesIO()
        np.save(buffer, self.compute(*item), allow_pickle=False)
        fileio.atomic_write_bytes(self.path(*item), buffer.getvalue())

    def ensure(self, items: list[tuple[int, tuple[int, int]]], description: str = "disparity", workers: int = 1) -> int:
        """Compute and store every missing (root_index, vertex), in `workers` processes; returns how many were
        computed (the files are the same for any number of workers)."""
        missing = [item for item in dict.fromkeys(items) if not self.path(*item).is_file()]
        with tqdm(total=len(missing), desc=description, unit="image", leave=False) as progress:
            if workers > 1 and len(missing) > 1:
                with ProcessPoolExecutor(min(workers, len(missing))) as pool:
                    for _ in pool.map(self.store, missing, chunksize=8):
                        progress.update()
            else:
                for item in missing:
                    self.store(item)
                    progress.update()
        return len(missing)

    def load(self, root_index: int, vertex: tuple[int, int]) -> np.ndarray:
        """(height, width) float32 disparity (px, NaN invalid)."""
        path = self.path(root_index, vertex)
        if not path.is_file():
            raise FileNotFoundError(f"disparity {path} is not cached; run `dlvf dataset` again to fill the cache")
        disparity = np.load(path, allow_pickle=False)
        if disparity.shape != (self.height, self.width) or disparity.dtype != np.float32:
            raise ValueError(
                f"{path}: cached disparity is {disparity.dtype} {disparity.shape}, expected float32 "
                f"({self.height}, {self.width}); delete the file and run `dlvf dataset` again"
            )
        return disparity
