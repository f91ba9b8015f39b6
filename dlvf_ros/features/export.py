"""Writing an exported feature model: the network scripted (TorchScript) with its metadata embedded, or as ONNX.

The contract the written file meets is in `dlvf_ros.features.model_file`, which reads it back.
"""

from __future__ import annotations

import copy
import datetime
import io
import json
import warnings
from pathlib import Path
from typing import List, Tuple

import torch
from torch import nn

from dlvf_ros import fileio
from dlvf_ros.features.keypoints import check_image_size, soft_argmax_keypoints
from dlvf_ros.features.model_file import (
    FORMAT,
    FORMAT_VERSION,
    PIXEL_CONVENTION,
    ModelContractError,
    contract_test_image,
    quiet_jit,
)
from dlvf_ros.features.sampling import dense_descriptors, normalize_descriptors, sample_descriptors, sample_scores
from dlvf_ros.features.unet import FeatureNet


class ExportedFeatureNet(nn.Module):
    """The scriptable inference wrapper around a FeatureNet's modules (contract: `dlvf_ros.features.model_file`)."""

    def __init__(self, net: FeatureNet) -> None:
        super().__init__()
        self.encoder = net.encoder
        self.heads = net.heads
        self.cell: int = int(net.conf["cell"])
        self.temperature: float = float(net.conf["temperature"])

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        keypoints, descriptors, scores, _ = self.forward_with_maps(image)
        return keypoints, descriptors, scores

    @torch.jit.export
    def forward_with_maps(
        self, image: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        height, width = int(image.shape[2]), int(image.shape[3])
        encoder_maps = self.encoder(image.contiguous(memory_format=torch.channels_last))
        keypoint_logits, score_map = self.heads(encoder_maps)
        keypoints = soft_argmax_keypoints(keypoint_logits, self.cell, self.temperature)
        descriptors = sample_descriptors(encoder_maps, keypoints, (height, width))
        scores = sample_scores(score_map, keypoints)
        return keypoints.transpose(1, 2), descriptors.transpose(1, 2), scores.unsqueeze(1), encoder_maps

    @torch.jit.export
    def describe(self, encoder_maps: List[torch.Tensor], points: torch.Tensor) -> torch.Tensor:
        # level 0 has the input image's size
        image_size = (int(encoder_maps[0].shape[2]), int(encoder_maps[0].shape[3]))
        return sample_descriptors(encoder_maps, points.transpose(1, 2), image_size).transpose(1, 2)

    @torch.jit.export
    def dense(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        encoder_maps = self.encoder(image.contiguous(memory_format=torch.channels_last))
        descriptor_map = normalize_descriptors(
            dense_descriptors(encoder_maps, (int(image.shape[2]), int(image.shape[3]))), dim=1
        )
        return descriptor_map, self.heads(encoder_maps)[1]


def build_metadata(net: FeatureNet, input_size: Tuple[int, int], provenance: dict) -> dict:
    """The metadata.json embedded in an exported model; `provenance`: training_config, training_data, data_hash and
    source (see `export_feature_net`)."""
    height, width = input_size
    cell = int(net.conf["cell"])
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": "unet",
        "decoder": "shared" if net.conf["shared_decoder"] else "separate",
        "m": int(net.conf["m"]),
        "descriptor_size": net.descriptor_dim,
        "cell_size": cell,
        "softmax_temperature": float(net.conf["temperature"]),
        "input_height": int(height),
        "input_width": int(width),
        "num_keypoints": (height // cell) * (width // cell),
        "colour_order": "RGB",
        "input_range": [0.0, 1.0],
        "pixel_convention": PIXEL_CONVENTION,
        "outputs": {
            "forward": "keypoints [1,2,N] (u,v px), descriptors [1,C,N] (zero mean, unit std over C), scores [1,1,N]",
            "dense": "descriptor_map [1,C,H,W] (normalised per pixel), score_map [1,1,H,W] (after sigmoid)",
            "forward_with_maps": "forward's outputs and the encoder maps (a list), for describe",
            "describe": "descriptors [1,C,M] at points [1,2,M] (u,v px) of the image whose encoder maps are given",
        },
        **provenance,
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
    }


def script_feature_net(net: FeatureNet) -> torch.jit.ScriptModule:
    """Frozen TorchScript module of `net` (eval mode) with the contract's methods (`forward`, `dense`,
    `forward_with_maps`, `describe`).

    Freezing inlines the weights as constants and folds each BatchNorm into its convolution (~10-25 % faster on CPU);
    weights and activations are channels-last (NHWC), which oneDNN convolves ~13 % faster on CPU (`dlvf bench
    features`). Outputs equal the eager network's within float rounding.
    """
    # Module.to takes memory_format at run time; torch's type stubs lack that overload
    net = copy.deepcopy(net).eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    with quiet_jit():
        scripted = torch.jit.script(ExportedFeatureNet(net).eval())
        return torch.jit.freeze(scripted, preserved_attrs=["dense", "forward_with_maps", "describe"])


def onnx_model_bytes(net: FeatureNet, input_size: Tuple[int, int]) -> bytes:
    """ONNX (opset 17, fixed input size) of the contract's `forward`, for ONNX Runtime; `dense` is not included."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated in favour of onnxscript
        torch.onnx.export(
            ExportedFeatureNet(net.eval()).eval(),
            (torch.zeros(1, 3, *input_size),),
            buffer,  # type: ignore[arg-type]  # a file object is accepted at run time; the stubs name paths only
            dynamo=False,
            opset_version=17,
            input_names=["image"],
            output_names=["keypoints", "descriptors", "scores"],
        )
    return buffer.getvalue()


def export_feature_net(
    net: FeatureNet,
    out_path: str | Path,
    input_size: Tuple[int, int],
    training_config: dict | None = None,
    data_hash: str | None = None,
    source: dict | None = None,
    training_data: dict | None = None,
) -> dict:
    """Script `net`, check it against the eager network on a test image, write `out_path` atomically; -> metadata.

    Provenance recorded in the metadata: the training config (as a dict), what it was trained on (`dlvf export
    --dataset`), the dataset's data hash and the source (checkpoint file, SHA-256, epoch, ...).
    """
    height, width = int(input_size[0]), int(input_size[1])
    check_image_size(height, width, int(net.conf["cell"]), "export input size (--height/--width)")
    net = net.eval()
    scripted = script_feature_net(net)
    image = contract_test_image(height, width)
    with torch.no_grad():
        eager = net({"image": image})
        keypoints, descriptors, scores = scripted(image)
    expected = (
        eager["keypoints"].transpose(1, 2),
        eager["descriptors"].transpose(1, 2),
        eager["keypoint_scores"][:, None],
    )
    for name, found, reference in zip(
        ("keypoints", "descriptors", "scores"), (keypoints, descriptors, scores), expected
    ):
        if found.shape != reference.shape or not torch.allclose(found, reference, atol=1e-3, rtol=1e-4):
            raise ModelContractError(f"export to {out_path}: scripted {name} differ from the eager network's")
    provenance = {
        "training_config": training_config,
        "training_data": training_data,
        "data_hash": data_hash,
        "source": source or {},
    }
    metadata = build_metadata(net, (height, width), provenance)
    buffer = io.BytesIO()
    with quiet_jit():
        torch.jit.save(scripted, buffer, _extra_files={"metadata.json": json.dumps(metadata, indent=2, default=str)})
    fileio.atomic_write_bytes(out_path, buffer.getvalue())
    return metadata
