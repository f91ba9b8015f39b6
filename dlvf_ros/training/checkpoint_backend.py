"""A `dlvf train` checkpoint (or an untrained network) as a feature backend, for `dlvf test`.

`load_backend` takes a training checkpoint (.pt, `features.checkpoint.TrainingCheckpoint`), an exported model (the
runtime `LearnedBackend`), or None (an untrained default FeatureNet, seeded, for before/after comparisons).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from dlvf_ros.features.backends import (
    DescriptorField,
    FeatureBackend,
    Features,
    LearnedBackend,
    check_image_rgb,
)
from dlvf_ros.features.checkpoint import TrainingCheckpoint
from dlvf_ros.features.sampling import sample_descriptors
from dlvf_ros.features.unet import FeatureNet


class NetworkBackend(FeatureBackend):
    """A FeatureNet in memory (from a training checkpoint, or untrained) as a feature backend; ZNCC descriptors."""

    name = "learned"
    descriptor_metric = "zncc"

    def __init__(self, network: FeatureNet, description: dict) -> None:
        self.network = network.eval()
        self.description = description

    def extract(self, image_rgb: np.ndarray) -> Features:
        return self.extract_with_field(image_rgb)[0]

    def extract_with_field(self, image_rgb: np.ndarray) -> tuple[Features, DescriptorField | None]:
        image = (
            torch.from_numpy(np.ascontiguousarray(check_image_rgb(image_rgb))).permute(2, 0, 1)[None].float() / 255.0
        )
        with torch.inference_mode():
            out = self.network({"image": image})
        features = Features(
            out["keypoints"][0].numpy().astype(np.float32),
            out["descriptors"][0].numpy().astype(np.float32),
            out["keypoint_scores"][0].numpy().astype(np.float32),
        )
        return features, _EncoderField(out["encoder_maps"], (int(image.shape[2]), int(image.shape[3])))

    @property
    def descriptor_size(self) -> int:
        return self.network.descriptor_dim

    def signature(self) -> dict:
        return {"backend": self.name, **self.description}


class _EncoderField:
    """Descriptors of one image at any pixel, from its encoder maps (`backends.DescriptorField`)."""

    pixel_scale = 1.0

    def __init__(self, encoder_maps: list[torch.Tensor], image_size: tuple[int, int]) -> None:
        self._encoder_maps = encoder_maps
        self._image_size = image_size

    def __call__(self, points_px: np.ndarray) -> np.ndarray:
        points = torch.from_numpy(np.asarray(points_px, np.float32))[None]
        with torch.inference_mode():
            return sample_descriptors(self._encoder_maps, points, self._image_size)[0].numpy()


def _is_exported_model(path: Path) -> bool:
    """True for a `dlvf export` TorchScript archive (it embeds extra/metadata.json); False for a checkpoint."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/extra/metadata.json") for name in archive.namelist())


def load_backend(model: str | Path | None) -> tuple[FeatureBackend, tuple[int, int] | None]:
    """Feature backend and its preferred (width, height): a `dlvf train` checkpoint (.pt), an exported model, or
    None for an untrained default FeatureNet (seeded, for comparisons)."""
    if model is None:
        torch.manual_seed(0)
        return NetworkBackend(FeatureNet(), {"model": "untrained FeatureNet (seed 0)"}), None
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(
            f"--model {path} does not exist; pass a checkpoint (checkpoints/best.pt) or an exported model"
        )
    if _is_exported_model(path):
        backend = LearnedBackend(path)
        return backend, (int(backend.metadata["input_width"]), int(backend.metadata["input_height"]))
    checkpoint = TrainingCheckpoint.load(path)
    height_width = checkpoint.input_size
    size = (height_width[1], height_width[0]) if height_width is not None else None
    return NetworkBackend(checkpoint.network(), {"checkpoint": str(path), "epoch": checkpoint.epoch}), size
