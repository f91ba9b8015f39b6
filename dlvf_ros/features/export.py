"""TorchScript export of the feature network with embedded metadata, and the contract-checking loader.

Contract of an exported model file (`dlvf export`):
- input: image [1, 3, H, W] float32 RGB in [0, 1] (uint8 / 255, no mean/std), H x W = metadata input_height x
  input_width (multiples of 16).
- `forward(image) -> (keypoints [1, 2, N], descriptors [1, C, N], scores [1, 1, N])`: keypoints (u, v) in pixels with
  integer values at pixel centres, one per 16x16 cell in row-major cell order, N = (H/16)(W/16); descriptors sampled
  at the keypoints and normalised over channels (zero mean, unit std: dot / C is the ZNCC); scores in (0, 1).
- `dense(image) -> (descriptor_map [1, C, H, W], score_map [1, 1, H, W])` for consumers that sample their own points
  (VT&R3 style): the full-resolution descriptor map normalised per pixel (re-normalise after sub-pixel sampling) and
  the score map after the sigmoid. It builds the 31m-channel full-resolution map, ~5x the cost of `forward`.
- `metadata.json` (torch.jit extra file): see `build_metadata` (architecture, m, descriptor_size C, cell_size,
  input size, colour order, pixel convention, training config, data hash, creation time, torch version).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import io
import json
import warnings
from pathlib import Path
from typing import NamedTuple, Tuple

import cv2
import numpy as np
import torch
from torch import nn

from dlvf_ros import fileio
from dlvf_ros.features.keypoints import check_image_size, soft_argmax_keypoints
from dlvf_ros.features.sampling import dense_descriptors, normalize_descriptors, sample_descriptors, sample_scores
from dlvf_ros.features.unet import FeatureNet

FORMAT = "dlvf_ros.feature_model"
FORMAT_VERSION = 1
PIXEL_CONVENTION = "integer values at pixel centres; (0, 0) is the centre of the top-left pixel; u right, v down"
REQUIRED_METADATA = (
    "format",
    "format_version",
    "architecture",
    "m",
    "descriptor_size",
    "cell_size",
    "input_height",
    "input_width",
    "num_keypoints",
    "colour_order",
)


class ModelContractError(ValueError):
    """A model file or checkpoint does not meet the exported-model contract (names file, expected and found)."""


class ExportedFeatureNet(nn.Module):
    """The scriptable inference wrapper around a FeatureNet's modules (see the module docstring for the contract)."""

    def __init__(self, net: FeatureNet) -> None:
        super().__init__()
        self.encoder = net.encoder
        self.heads = net.heads
        self.cell: int = int(net.conf["cell"])
        self.temperature: float = float(net.conf["temperature"])

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        height, width = int(image.shape[2]), int(image.shape[3])
        encoder_maps = self.encoder(image.contiguous(memory_format=torch.channels_last))
        keypoint_logits, score_map = self.heads(encoder_maps)
        keypoints = soft_argmax_keypoints(keypoint_logits, self.cell, self.temperature)
        descriptors = sample_descriptors(encoder_maps, keypoints, (height, width))
        scores = sample_scores(score_map, keypoints)
        return keypoints.transpose(1, 2), descriptors.transpose(1, 2), scores.unsqueeze(1)

    @torch.jit.export
    def dense(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        encoder_maps = self.encoder(image.contiguous(memory_format=torch.channels_last))
        descriptor_map = normalize_descriptors(
            dense_descriptors(encoder_maps, (int(image.shape[2]), int(image.shape[3]))), dim=1
        )
        return descriptor_map, self.heads(encoder_maps)[1]


def build_metadata(
    net: FeatureNet,
    input_size: Tuple[int, int],
    training_config: dict | None = None,
    data_hash: str | None = None,
    source: dict | None = None,
    training_data: dict | None = None,
) -> dict:
    """The metadata.json embedded in an exported model."""
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
        },
        "training_config": training_config,
        "training_data": training_data,
        "data_hash": data_hash,
        "source": source or {},
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
    }


@contextlib.contextmanager
def quiet_jit():
    """Silence torch's "torch.jit.* is deprecated" warnings: TorchScript is the deployment contract (VT&R3 loads it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning)
        yield


def script_feature_net(net: FeatureNet) -> torch.jit.ScriptModule:
    """Frozen TorchScript module of `net` (eval mode) with `forward` and `dense` per the contract.

    Freezing inlines the weights as constants and folds each BatchNorm into its convolution (~10-25 % faster on CPU);
    weights and activations are channels-last (NHWC), which oneDNN convolves ~13 % faster on CPU (`dlvf bench
    features`). Outputs equal the eager network's within float rounding.
    """
    net = copy.deepcopy(net).eval().to(memory_format=torch.channels_last)
    with quiet_jit():
        scripted = torch.jit.script(ExportedFeatureNet(net).eval())
        return torch.jit.freeze(scripted, preserved_attrs=["dense"])


def onnx_model_bytes(net: FeatureNet, input_size: Tuple[int, int]) -> bytes:
    """ONNX (opset 17, fixed input size) of the contract's `forward`, for ONNX Runtime; `dense` is not included."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated in favour of onnxscript
        torch.onnx.export(
            ExportedFeatureNet(net.eval()).eval(),
            (torch.zeros(1, 3, *input_size),),
            buffer,
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
    """Script `net`, check it against the eager network on a test image, write `out_path` atomically; -> metadata."""
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
    metadata = build_metadata(net, (height, width), training_config, data_hash, source, training_data)
    buffer = io.BytesIO()
    with quiet_jit():
        torch.jit.save(scripted, buffer, _extra_files={"metadata.json": json.dumps(metadata, indent=2, default=str)})
    fileio.atomic_write_bytes(out_path, buffer.getvalue())
    return metadata


def load_checkpoint(checkpoint_path: str | Path) -> Tuple[FeatureNet, dict]:
    """A `dlvf train` checkpoint -> (FeatureNet in eval mode, checkpoint dict).

    Reads "model" (state_dict) and the network options from "model_config" (FeatureNet.conf), else the training
    config's "model" entry ("config" is the TrainConfig as a dict).
    """
    path = Path(checkpoint_path)
    if not path.is_file():
        raise ModelContractError(f"checkpoint {path} does not exist; pass a file written by `dlvf train`")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise ModelContractError(f"checkpoint {path} cannot be read as a torch checkpoint: {exc}") from exc
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ModelContractError(f"checkpoint {path}: expected a dict with a 'model' state_dict, found {found}")
    config = checkpoint.get("config") or {}
    model_options = checkpoint.get("model_config") or (config.get("model", {}) if isinstance(config, dict) else {})
    try:
        net = FeatureNet(model_options)
        net.load_state_dict(checkpoint["model"])
    except (ValueError, RuntimeError) as exc:
        raise ModelContractError(
            f"checkpoint {path}: weights do not fit FeatureNet({model_options}) (config 'model' options): {exc}"
        ) from exc
    return net.eval(), checkpoint


def contract_test_image(height: int, width: int) -> torch.Tensor:
    """A deterministic textured [1, 3, H, W] test image in [0, 1] (non-constant, so descriptors have variance)."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    channels = [
        0.5 + 0.5 * torch.sin(u * 0.37 + v * 0.11 * k + k) * torch.cos(v * 0.23 - u * 0.05 * k) for k in (1, 2, 3)
    ]
    return torch.stack(channels).unsqueeze(0)


class ExtractedFeatures(NamedTuple):
    """Features of one image in its original pixels: keypoints (N, 2) (u, v), descriptors (N, C), scores (N,)."""

    keypoints: np.ndarray
    descriptors: np.ndarray
    scores: np.ndarray


class FeatureModel:
    """A loaded, contract-checked exported model. Use `load_feature_model`."""

    def __init__(self, module: torch.jit.ScriptModule, metadata: dict, path: Path) -> None:
        self.module = module
        self.metadata = metadata
        self.path = path

    @property
    def input_size(self) -> Tuple[int, int]:
        """(H, W) the network runs at."""
        return int(self.metadata["input_height"]), int(self.metadata["input_width"])

    @property
    def descriptor_size(self) -> int:
        return int(self.metadata["descriptor_size"])

    def extract(self, image_rgb: np.ndarray) -> ExtractedFeatures:
        """uint8 (H, W, 3) RGB -> features in the image's own pixels (float32).

        An image of another size is resized (cv2 INTER_AREA when shrinking, INTER_LINEAR otherwise) to the model input
        size; keypoints map back with the pixel-centre convention: u = (u_model + 0.5) W / W_model - 0.5, likewise v.
        """
        if (
            not isinstance(image_rgb, np.ndarray)
            or image_rgb.dtype != np.uint8
            or image_rgb.ndim != 3
            or image_rgb.shape[2] != 3
        ):
            found = (
                f"{image_rgb.dtype} {image_rgb.shape}"
                if isinstance(image_rgb, np.ndarray)
                else type(image_rgb).__name__
            )
            raise ValueError(f"FeatureModel.extract: expected a uint8 (H, W, 3) RGB image, got {found}")
        height, width = image_rgb.shape[:2]
        model_height, model_width = self.input_size
        resized = image_rgb
        if (height, width) != (model_height, model_width):
            shrinking = model_height * model_width < height * width
            resized = cv2.resize(
                image_rgb, (model_width, model_height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
            )
        image = torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        with torch.inference_mode():
            keypoints, descriptors, scores = self.module(image)
        keypoints = keypoints[0].T.numpy().astype(np.float32)
        scale = np.array([width / model_width, height / model_height], dtype=np.float32)
        keypoints = (keypoints + 0.5) * scale - 0.5
        return ExtractedFeatures(
            keypoints,
            np.ascontiguousarray(descriptors[0].T.numpy(), dtype=np.float32),
            scores[0, 0].numpy().astype(np.float32),
        )


def read_metadata(path: str | Path) -> dict:
    """The metadata.json of an exported model file, without checking the network."""
    return _load(Path(path))[1]


def _load(path: Path) -> Tuple[torch.jit.ScriptModule, dict]:
    if not path.is_file():
        raise ModelContractError(f"model file {path} does not exist; create one with `dlvf export`")
    extra_files = {"metadata.json": ""}
    try:
        with quiet_jit():
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra_files)
    except Exception as exc:  # torch raises RuntimeError/ValueError/zip errors for corrupt files
        raise ModelContractError(
            f"model file {path} is not a readable TorchScript archive ({exc}); re-export it"
        ) from exc
    try:
        metadata = json.loads(extra_files["metadata.json"] or "null")
    except json.JSONDecodeError as exc:
        raise ModelContractError(f"model file {path}: metadata.json is not valid JSON: {exc}") from exc
    if not isinstance(metadata, dict):
        raise ModelContractError(
            f"model file {path}: expected an embedded metadata.json mapping, found none; "
            "re-export it with `dlvf export`"
        )
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ModelContractError(
            f"model file {path}: metadata.json lacks {missing}; expected keys {list(REQUIRED_METADATA)}"
        )
    if metadata["format"] != FORMAT or metadata["format_version"] != FORMAT_VERSION:
        raise ModelContractError(
            f"model file {path}: format {metadata['format']!r} v{metadata['format_version']}, "
            f"expected {FORMAT!r} v{FORMAT_VERSION}"
        )
    return module, metadata


def check_contract(module: torch.jit.ScriptModule, metadata: dict, path: Path) -> None:
    """Dummy forward on the contract test image: shapes, dtypes, finiteness, keypoint range, normalisation."""
    height, width = int(metadata["input_height"]), int(metadata["input_width"])
    n, c = int(metadata["num_keypoints"]), int(metadata["descriptor_size"])
    if not hasattr(module, "dense"):
        raise ModelContractError(f"model file {path}: has no exported `dense` method; re-export it with `dlvf export`")
    try:
        with torch.inference_mode():
            outputs = module(contract_test_image(height, width))
    except Exception as exc:  # a TorchScript runtime error of any type
        raise ModelContractError(f"model file {path}: forward on a [1,3,{height},{width}] image failed: {exc}") from exc
    if not isinstance(outputs, tuple) or len(outputs) != 3:
        raise ModelContractError(
            f"model file {path}: forward must return (keypoints, descriptors, scores), got {type(outputs).__name__}"
        )
    expected_shapes = {"keypoints": (1, 2, n), "descriptors": (1, c, n), "scores": (1, 1, n)}
    for (name, shape), tensor in zip(expected_shapes.items(), outputs):
        if tuple(tensor.shape) != shape or tensor.dtype != torch.float32:
            raise ModelContractError(
                f"model file {path}: {name} expected float32 {list(shape)}, found {tensor.dtype} {list(tensor.shape)}"
            )
        if not bool(torch.isfinite(tensor).all()):
            raise ModelContractError(f"model file {path}: {name} contain NaN or inf on the contract test image")
    keypoints, descriptors, scores = outputs
    if not (
        bool((keypoints[0, 0] >= 0).all() and (keypoints[0, 0] <= width - 1).all())
        and bool((keypoints[0, 1] >= 0).all() and (keypoints[0, 1] <= height - 1).all())
    ):
        raise ModelContractError(f"model file {path}: keypoints outside the {width}x{height} image")
    mean_error = float(descriptors.mean(dim=1).abs().max())
    power_error = float((descriptors.pow(2).mean(dim=1) - 1.0).abs().max())
    if mean_error > 1e-3 or power_error > 1e-2:
        raise ModelContractError(
            f"model file {path}: descriptors not normalised (expected zero mean, unit std over channels; found max "
            f"|mean| {mean_error:.3g}, max |mean square - 1| {power_error:.3g})"
        )
    if not bool(((scores >= 0) & (scores <= 1)).all()):
        raise ModelContractError(f"model file {path}: scores outside [0, 1]")


def load_feature_model(path: str | Path, expected_input_size: Tuple[int, int] | None = None) -> FeatureModel:
    """Load an exported model, check its metadata and its contract with a dummy forward -> FeatureModel.

    `expected_input_size` (H, W), if given, must equal the model's input size. Raises ModelContractError naming the
    file, what was expected and what was found.
    """
    path = Path(path)
    module, metadata = _load(path)
    found_size = (int(metadata["input_height"]), int(metadata["input_width"]))
    if expected_input_size is not None and tuple(expected_input_size) != found_size:
        raise ModelContractError(
            f"model file {path}: input size expected {tuple(expected_input_size)} (H, W), found {found_size}; "
            "re-export with --height/--width"
        )
    module.eval()
    check_contract(module, metadata, path)
    return FeatureModel(module, metadata, path)
