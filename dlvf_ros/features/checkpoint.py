"""The training checkpoint `dlvf train` writes (RUN/checkpoints/last.pt, best.pt, initial.pt), as one typed record.

Written by the trainer and read by resume, `dlvf train --init` (fine-tuning), `dlvf export` and `dlvf test`. On disk
it is a `torch.save` mapping of the `TrainingCheckpoint` fields (tensors, numbers, strings, lists and dicts only, so
it loads with `weights_only=True`). It is not a deployable model: `dlvf export` turns it into one
(`dlvf_ros.features.model_file`).
"""

from __future__ import annotations

import dataclasses
import io
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dlvf_ros import fileio
from dlvf_ros.features.unet import FeatureNet


class CheckpointError(ValueError):
    """A training checkpoint is missing, unreadable or does not fit the network it describes."""


@dataclass
class TrainingCheckpoint:
    """Weights, optimizer state and provenance of a training run after `epoch`."""

    model: dict  # FeatureNet state_dict
    model_config: dict  # FeatureNet.conf (network options)
    config: dict  # the TrainConfig as a dict
    epoch: int = -1  # the last finished epoch; -1: the weights before training
    data_hash: str | None = None  # of the `dlvf dataset` it was trained on
    optimizer: dict | None = None  # Adam state_dict, for an exact resume
    best_val: float = math.inf  # best validation loss so far
    stale_epochs: int = 0  # epochs since the validation loss last improved (early stopping)
    skipped: dict = field(default_factory=dict)  # skipped batches per reason, all ranks
    image_size: list[int] | None = None  # training images [width, height] (px)
    rig: dict | None = None  # StereoRig.to_dict() of the first dataset root at the training size
    initial_validation: dict | None = None  # validation metrics of the weights before training
    init_from: dict | None = None  # provenance of `--init` weights (path, epoch, data hash, weights SHA-256)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> TrainingCheckpoint:
        """From the mapping `torch.save` stored; a checkpoint without "model_config" takes the network options from
        its config's "model" entry. Unknown keys are an error naming them."""
        if not isinstance(data, dict) or "model" not in data:
            found = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise CheckpointError(f"checkpoint {source}: expected a dict with a 'model' state_dict, found {found}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CheckpointError(f"checkpoint {source}: unknown key(s) {unknown}; known: {sorted(known)}")
        values = dict(data)
        values.setdefault("config", {})
        if not values.get("model_config"):
            config = values["config"]
            values["model_config"] = dict(config.get("model", {})) if isinstance(config, dict) else {}
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> TrainingCheckpoint:
        """Read a checkpoint file; CheckpointError naming the file and the fix when it is missing or not one."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path} does not exist; pass a file written by `dlvf train`")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a corrupt or foreign file
            raise CheckpointError(f"checkpoint {path} cannot be read as a torch checkpoint: {exc}") from exc
        return cls.from_dict(data, str(path))

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def save(self, path: str | Path) -> None:
        """Write atomically (a checkpoint killed mid-write never replaces a good one)."""
        buffer = io.BytesIO()
        torch.save(self.to_dict(), buffer)
        fileio.atomic_write_bytes(path, buffer.getvalue())

    def network(self) -> FeatureNet:
        """The FeatureNet with these weights, in eval mode."""
        try:
            net = FeatureNet(self.model_config)
            net.load_state_dict(self.model)
        except (ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"checkpoint weights do not fit FeatureNet({self.model_config}) (config 'model' options): {exc}"
            ) from exc
        return net.eval()

    @property
    def input_size(self) -> tuple[int, int] | None:
        """(H, W) of the training images, or None when not recorded."""
        if self.image_size is None:
            return None
        if len(self.image_size) != 2:
            raise CheckpointError(f"checkpoint image_size must be [width, height], found {self.image_size!r}")
        return int(self.image_size[1]), int(self.image_size[0])


def is_training_checkpoint(path: str | Path) -> bool:
    """True for a file `torch.save` wrote (a zip with data.pkl and no TorchScript code), such as a `dlvf train`
    checkpoint; False for an exported TorchScript model or anything else."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(n.endswith("/data.pkl") for n in names) and not any(n.endswith("/constants.pkl") for n in names)
