"""Reading an exported feature model at run time: load, check its metadata and contract, extract features.

Contract of an exported model file (`dlvf export`):
- input: image [1, 3, H, W] float32 RGB in [0, 1] (uint8 / 255, no mean/std), H x W = metadata input_height x
  input_width (multiples of 16).
- `forward(image) -> (keypoints [1, 2, N], descriptors [1, C, N], scores [1, 1, N])`: keypoints (u, v) in pixels with
  integer values at pixel centres, one per 16x16 cell in row-major cell order, N = (H/16)(W/16); descriptors sampled
  at the keypoints and normalised over channels (zero mean, unit std: dot / C is the ZNCC); scores in (0, 1).
- `dense(image) -> (descriptor_map [1, C, H, W], score_map [1, 1, H, W])` for consumers that sample their own points
  (VT&R3 style): the full-resolution descriptor map normalised per pixel (re-normalise after sub-pixel sampling) and
  the score map after the sigmoid. It builds the 31m-channel full-resolution map, ~5x the cost of `forward`.
- `forward_with_maps(image) -> (keypoints, descriptors, scores, encoder_maps)` and
  `describe(encoder_maps, points [1, 2, M]) -> descriptors [1, C, M]`: descriptors at any sub-pixel points of the
  image, normalised as `forward`'s (which equal `describe` at the keypoints), for match refinement. Models exported
  before these existed lack them; they still load, and their matches are not refined.
- `metadata.json` (torch.jit extra file): see `build_metadata` (architecture, m, descriptor_size C, cell_size,
  input size, colour order, pixel convention, training config, data hash, creation time, torch version).
`load_feature_model` refuses a file that breaks the contract (naming the file, what was expected and what was found),
a training checkpoint passed in its place, and a model whose forward does not return within a time limit.
"""

from __future__ import annotations

import contextlib
import json
import threading
import warnings
from pathlib import Path
from typing import Tuple

import cv2
import numpy as np
import torch

from dlvf_ros.features.backends import Features, check_image_rgb
from dlvf_ros.features.checkpoint import is_training_checkpoint

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
CONTRACT_CHECK_TIMEOUT_S = 120.0  # the check's forward takes ~0.1-1 s on a CPU; a hung model fails start-up


class ModelContractError(ValueError):
    """A model file does not meet the exported-model contract (names the file, what was expected and found)."""


@contextlib.contextmanager
def quiet_jit():
    """Silence torch's "torch.jit.* is deprecated" warnings: TorchScript is the deployment contract (VT&R3 loads it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning)
        yield


def contract_test_image(height: int, width: int) -> torch.Tensor:
    """A deterministic textured [1, 3, H, W] test image in [0, 1] (non-constant, so descriptors have variance)."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    channels = [
        0.5 + 0.5 * torch.sin(u * 0.37 + v * 0.11 * k + k) * torch.cos(v * 0.23 - u * 0.05 * k) for k in (1, 2, 3)
    ]
    return torch.stack(channels).unsqueeze(0)


def can_describe(module: torch.jit.ScriptModule) -> bool:
    """True when an exported model has `forward_with_maps` and `describe` (see the module docstring)."""
    return hasattr(module, "describe") and hasattr(module, "forward_with_maps")


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

    @property
    def can_describe(self) -> bool:
        """True when the model has `forward_with_maps` and `describe` (see the module docstring)."""
        return can_describe(self.module)

    def extract(self, image_rgb: np.ndarray) -> Features:
        """uint8 (H, W, 3) RGB -> features in the image's own pixels (float32).

        An image of another size is resized (cv2 INTER_AREA when shrinking, INTER_LINEAR otherwise) to the model input
        size; keypoints map back with the pixel-centre convention: u = (u_model + 0.5) W / W_model - 0.5, likewise v.
        """
        image, scale = self._input(image_rgb)
        with torch.inference_mode():
            outputs = self.module(image)
        return self._features(outputs, scale)

    def extract_with_field(self, image_rgb: np.ndarray) -> tuple[Features, ModelDescriptorField | None]:
        """`extract` and the image's descriptor field (None when the model cannot `describe`)."""
        if not self.can_describe:
            return self.extract(image_rgb), None
        image, scale = self._input(image_rgb)
        with torch.inference_mode():
            *outputs, encoder_maps = self.module.forward_with_maps(image)
        return self._features(tuple(outputs), scale), ModelDescriptorField(self.module, encoder_maps, scale)

    def _input(self, image_rgb: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """The model's input tensor for `image_rgb` and the (u, v) image pixels per model pixel."""
        height, width = check_image_rgb(image_rgb, "FeatureModel.extract: image_rgb").shape[:2]
        model_height, model_width = self.input_size
        resized = image_rgb
        if (height, width) != (model_height, model_width):
            shrinking = model_height * model_width < height * width
            resized = cv2.resize(
                image_rgb, (model_width, model_height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
            )
        image = torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        return image, np.array([width / model_width, height / model_height], dtype=np.float32)

    @staticmethod
    def _features(outputs: tuple, scale: np.ndarray) -> Features:
        keypoints, descriptors, scores = outputs
        keypoints = (keypoints[0].T.numpy().astype(np.float32) + 0.5) * scale - 0.5
        return Features(
            keypoints,
            np.ascontiguousarray(descriptors[0].T.numpy(), dtype=np.float32),
            scores[0, 0].numpy().astype(np.float32),
        )


class ModelDescriptorField:
    """An exported model's descriptors of one image at any of its pixels (`backends.DescriptorField`)."""

    def __init__(self, module: torch.jit.ScriptModule, encoder_maps: list[torch.Tensor], scale: np.ndarray) -> None:
        self._module = module
        self._encoder_maps = encoder_maps
        self._scale = scale  # (u, v) image pixels per model pixel
        self.pixel_scale = float(scale[0])

    def __call__(self, points_px: np.ndarray) -> np.ndarray:
        model_points = (np.asarray(points_px, np.float32) + 0.5) / self._scale - 0.5
        with torch.inference_mode():
            descriptors = self._module.describe(self._encoder_maps, torch.from_numpy(model_points.T[None].copy()))
        return np.ascontiguousarray(descriptors[0].T.numpy(), dtype=np.float32)


def read_metadata(path: str | Path) -> dict:
    """The metadata.json of an exported model file, without checking the network."""
    return _load(Path(path))[1]


def _load(path: Path) -> Tuple[torch.jit.ScriptModule, dict]:
    if not path.is_file():
        raise ModelContractError(f"model file {path} does not exist; create one with `dlvf export`")
    if is_training_checkpoint(path):
        raise ModelContractError(
            f"model file {path} is a training checkpoint, not an exported model; export it with "
            f"`dlvf export --checkpoint {path} --out MODEL.pt`"
        )
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


def _forward_within(method, image: torch.Tensor, timeout_s: float, path: Path, name: str = "forward"):
    """method(image) (the module's `name`) run on a helper thread; ModelContractError when it fails or has not
    returned after `timeout_s` (the thread cannot be stopped; the caller fails start-up and the process exits)."""
    result: dict = {}

    def forward() -> None:
        try:
            with torch.inference_mode():
                result["outputs"] = method(image)
        except Exception as exc:  # a TorchScript runtime error of any type
            result["error"] = exc

    thread = threading.Thread(target=forward, name="model_contract_check", daemon=True)
    thread.start()
    thread.join(timeout_s)
    shape = "[" + ",".join(str(size) for size in image.shape) + "]"
    if thread.is_alive():
        raise ModelContractError(
            f"model file {path}: {name} on a {shape} image did not return within {timeout_s:g} s; "
            "the model hangs or is far too slow for this machine"
        )
    if "error" in result:
        raise ModelContractError(f"model file {path}: {name} on a {shape} image failed: {result['error']}") from (
            result["error"]
        )
    return result["outputs"]


def check_contract(
    module: torch.jit.ScriptModule, metadata: dict, path: Path, timeout_s: float = CONTRACT_CHECK_TIMEOUT_S
) -> None:
    """Dummy forward on the contract test image (within `timeout_s`): shapes, dtypes, finiteness, keypoint range,
    normalisation; for a model that can describe, `describe` at the keypoints equals forward's descriptors."""
    height, width = int(metadata["input_height"]), int(metadata["input_width"])
    n, c = int(metadata["num_keypoints"]), int(metadata["descriptor_size"])
    if not hasattr(module, "dense"):
        raise ModelContractError(f"model file {path}: has no exported `dense` method; re-export it with `dlvf export`")
    image = contract_test_image(height, width)
    outputs = _forward_within(module, image, timeout_s, path)
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
    if can_describe(module):
        encoder_maps = _forward_within(module.forward_with_maps, image, timeout_s, path, "forward_with_maps")[3]
        with torch.inference_mode():
            described = module.describe(encoder_maps, keypoints)
        if described.shape != descriptors.shape or not torch.allclose(described, descriptors, atol=1e-3):
            raise ModelContractError(f"model file {path}: describe at the keypoints differs from forward's descriptors")


def load_feature_model(
    path: str | Path,
    expected_input_size: Tuple[int, int] | None = None,
    check_timeout_s: float = CONTRACT_CHECK_TIMEOUT_S,
) -> FeatureModel:
    """Load an exported model, check its metadata and its contract with a dummy forward -> FeatureModel.

    `expected_input_size` (H, W), if given, must equal the model's input size; the dummy forward must return within
    `check_timeout_s`. Raises ModelContractError naming the file, what was expected and what was found.
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
    check_contract(module, metadata, path, check_timeout_s)
    return FeatureModel(module, metadata, path)
