"""A training dataset on disk (`dlvf dataset`) and its torch view.

DATASET/dataset.json (the manifest) names the data roots, their runs, lighting and calibration, the splits, the
config, one `pairs_<split>.npz` per split (`PairSet`, no pickle) with its sha256, the disparity cache, and a
`data_hash` over all of it (root paths excluded, so the data may move). Every write is atomic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlvf_ros import fileio
from dlvf_ros.config import from_dict, to_dict
from dlvf_ros.data.pose_graph import Vertex
from dlvf_ros.data.utias import UtiasDataset
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.training.config import DatasetConfig
from dlvf_ros.training.disparity_cache import DisparityCache, resized_rgb
from dlvf_ros.training.pairs import SPLITS, PairSet, resolve_splits, sample_pairs

MANIFEST = "dataset.json"
FORMAT = "dlvf-training-dataset-1"


def _data_hash(manifest: dict) -> str:
    hashed = {key: value for key, value in manifest.items() if key not in ("data_hash", "disparity")}
    hashed["roots"] = [{k: v for k, v in root.items() if k != "path"} for root in manifest["roots"]]
    return fileio.sha256_bytes(json.dumps(hashed, sort_keys=True).encode())


def _vertex(row: np.ndarray) -> Vertex:
    """(run id, pose id) from a row of a PairSet's source or target array."""
    return int(row[0]), int(row[1])


@dataclass
class DatasetManifest:
    """A loaded, verified training dataset."""

    directory: Path
    data: dict

    @property
    def config(self) -> DatasetConfig:
        return from_dict(DatasetConfig, self.data["config"], f"{self.directory / MANIFEST}: config")

    @property
    def data_hash(self) -> str:
        return self.data["data_hash"]

    @property
    def roots(self) -> list[Path]:
        return [Path(root["path"]) for root in self.data["roots"]]

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the training images."""
        return int(self.data["image_width"]), int(self.data["image_height"])

    def rig(self, root_index: int) -> StereoRig:
        """The stereo rig of a root at the training image size."""
        width, height = self.image_size
        return StereoRig.from_dict(self.data["roots"][root_index]["rig"]).scaled(width, height)

    def members(self, split: str) -> list[tuple[int, int]]:
        return [tuple(member) for member in self.data["splits"][split]]

    def pairs(self, split: str) -> PairSet:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        return PairSet.from_npz(self.directory / self.data["pairs"][split]["file"])

    def disparity_cache(self) -> DisparityCache:
        config = self.config
        directory = Path(self.data["disparity"]["directory"])
        directory = directory if directory.is_absolute() else self.directory / directory
        return DisparityCache(directory, self.roots, config.image_width, config.image_height, config.sgbm)

    @classmethod
    def load(cls, directory: str | Path) -> DatasetManifest:
        directory = Path(directory)
        path = directory / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist; build the dataset with `dlvf dataset --data ROOT --out {directory}`"
            )
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: format {data.get('format')!r} is not {FORMAT!r}; rebuild with `dlvf dataset`")
        for entry in data["pairs"].values():
            pair_path = directory / entry["file"]
            if not pair_path.is_file() or fileio.sha256_file(pair_path) != entry["sha256"]:
                raise ValueError(
                    f"{pair_path}: missing or changed since {path} was written; rebuild with `dlvf dataset`"
                )
        if _data_hash(data) != data["data_hash"]:
            raise ValueError(f"{path}: its data_hash does not match its content; rebuild with `dlvf dataset`")
        return cls(directory, data)


def build_dataset(
    roots: list[str | Path],
    out: str | Path,
    config: DatasetConfig,
    cache_dir: str | Path | None = None,
    workers: int = 1,
) -> DatasetManifest:
    """Sample the pairs of every split, fill the disparity cache (in `workers` processes), write the manifest last
    (atomically)."""
    if not roots:
        raise ValueError("build_dataset: give at least one dataset root (--data ROOT [ROOT ...])")
    out = Path(out)
    datasets = [UtiasDataset(root) for root in roots]
    rng = np.random.default_rng(config.seed)
    members = resolve_splits(datasets, config.split, config.seed)
    counts = {"train": config.train_pairs, "validation": config.validation_pairs, "test": config.test_pairs}
    pair_sets = {}
    for split in SPLITS:
        pair_sets[split] = sample_pairs(
            datasets, members[split], counts[split], config.max_edges, rng, f"{split} pairs", config.anchor_run
        )
    cache_directory = Path(cache_dir) if cache_dir is not None else out / "disparity"
    cache = DisparityCache(
        cache_directory, [ds.root for ds in datasets], config.image_width, config.image_height, config.sgbm
    )
    images = [
        (int(root), _vertex(vertex))
        for pairs in pair_sets.values()
        for root, source, target in zip(pairs.root_index, pairs.source, pairs.target)
        for vertex in (source, target)
    ]
    cache.ensure(images, workers=workers)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "config": to_dict(config),
        "image_width": config.image_width,
        "image_height": config.image_height,
        "roots": [
            {
                "path": str(ds.root.resolve()),
                "runs": ds.run_ids,
                "lighting": {str(run): ds.run_info(run).lighting for run in ds.run_ids},
                "vertices": len(ds.graph),
                "rig": ds.rig.to_dict(),
            }
            for ds in datasets
        ],
        "splits": {split: [list(member) for member in members[split]] for split in SPLITS},
        "pairs": {},
        "disparity": {
            "directory": str(cache_directory if cache_dir is not None else Path("disparity")),
            "key": cache.directory.name,
            "images": len(set(images)),
        },
    }
    for split, pairs in pair_sets.items():
        data = pairs.to_npz_bytes()
        fileio.atomic_write_bytes(out / f"pairs_{split}.npz", data)
        manifest["pairs"][split] = {
            "file": f"pairs_{split}.npz",
            "count": len(pairs),
            "sha256": fileio.sha256_bytes(data),
        }
    manifest["data_hash"] = _data_hash(manifest)
    fileio.atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))
    return DatasetManifest.load(out)


class PairDataset(torch.utils.data.Dataset):
    """Training samples of one split. Item: dict of float32 tensors

    image_source / image_target [3, H, W] RGB in [0, 1]; disparity_source / disparity_target [1, H, W] (px, 0 where
    invalid) with valid_source / valid_target [1, H, W] (1 valid, 0 not); T_target_source [4, 4] (vehicle frames);
    intrinsics [4] = (f, cu, cv, baseline) at the training size; T_vehicle_camera [4, 4]; index (int).
    """

    def __init__(self, manifest: DatasetManifest, split: str) -> None:
        self.manifest = manifest
        self.pairs = manifest.pairs(split)
        self.cache = manifest.disparity_cache()
        self.width, self.height = manifest.image_size
        self.rigs = [manifest.rig(i) for i in range(len(manifest.roots))]

    def __len__(self) -> int:
        return len(self.pairs)

    def _image(self, root_index: int, vertex: tuple[int, int]) -> torch.Tensor:
        image = resized_rgb(self.manifest.roots[root_index], vertex, "left", self.width, self.height)
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255.0

    def _disparity(self, root_index: int, vertex: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        disparity = self.cache.load(root_index, vertex)
        valid = np.isfinite(disparity)
        return (
            torch.from_numpy(np.where(valid, disparity, 0.0).astype(np.float32)).unsqueeze(0),
            torch.from_numpy(valid.astype(np.float32)).unsqueeze(0),
        )

    def __getitem__(self, index: int) -> dict:
        root = int(self.pairs.root_index[index])
        source = _vertex(self.pairs.source[index])
        target = _vertex(self.pairs.target[index])
        rig = self.rigs[root]
        disparity_source, valid_source = self._disparity(root, source)
        disparity_target, valid_target = self._disparity(root, target)
        return {
            "image_source": self._image(root, source),
            "image_target": self._image(root, target),
            "disparity_source": disparity_source,
            "valid_source": valid_source,
            "disparity_target": disparity_target,
            "valid_target": valid_target,
            "T_target_source": torch.from_numpy(self.pairs.T_target_source[index]).float(),
            "intrinsics": torch.tensor([rig.f, rig.cu, rig.cv, rig.baseline], dtype=torch.float32),
            "T_vehicle_camera": torch.from_numpy(rig.T_vehicle_camera).float(),
            "index": index,
        }
