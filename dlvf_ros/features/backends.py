"""Feature backends behind one interface: the learned network (TorchScript), the classical ORB / SIFT baselines and
the optional XFeat baseline (`dlvf_ros.features.xfeat_backend`).

Every backend maps one RGB image (`uint8 (H, W, 3)`) to `Features`: keypoints `(N, 2)` float32 pixels (integer
values at pixel centres), descriptors `(N, C)` and scores `(N,)` float32 in [0, 1]. `descriptor_metric` says how
descriptors compare (see `dlvf_ros.matching.descriptor_matching`); `signature()` is what a map manifest records so
that a map is only ever localized against with the features it was built from. A backend that can describe other
pixels of an image it extracted (the learned one) also returns a `DescriptorField` (`extract_with_field`), which
match refinement uses (`dlvf_ros.matching.refinement`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from dlvf_ros import fileio

DESCRIPTOR_METRICS = ("zncc", "cosine", "hamming", "l2")
BACKEND_NAMES = ("learned", "orb", "sift", "xfeat")


@dataclass(frozen=True)
class Features:
    """Sparse features of one image: keypoints (N, 2) px float32, descriptors (N, C), scores (N,) float32 in [0, 1]."""

    keypoints: np.ndarray
    descriptors: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.keypoints)
        if self.keypoints.shape != (n, 2) or self.descriptors.shape[0] != n or self.scores.shape != (n,):
            raise ValueError(
                f"Features: inconsistent shapes keypoints {self.keypoints.shape}, descriptors "
                f"{self.descriptors.shape}, scores {self.scores.shape}; expected (N, 2), (N, C), (N,)"
            )

    def __len__(self) -> int:
        return len(self.keypoints)

    def subset(self, mask_or_index: np.ndarray) -> Features:
        return Features(self.keypoints[mask_or_index], self.descriptors[mask_or_index], self.scores[mask_or_index])


class DescriptorField(Protocol):
    """Descriptors of one extracted image at any of its pixels."""

    pixel_scale: float  # image pixels per pixel of the resolution the descriptors are computed at

    def __call__(self, points_px: np.ndarray) -> np.ndarray:
        """(M, 2) float (u, v) image pixels -> (M, C) float32 descriptors, normalised as the backend's."""
        ...


def check_image_rgb(image_rgb: np.ndarray, name: str = "image_rgb") -> np.ndarray:
    """Raise a clear ValueError unless `image_rgb` is a uint8 (H, W, 3) array."""
    if not isinstance(image_rgb, np.ndarray):
        raise ValueError(f"{name}: expected a numpy uint8 (H, W, 3) RGB array, got {type(image_rgb).__name__}")
    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(
            f"{name}: expected uint8 (H, W, 3) RGB, got {image_rgb.dtype} {image_rgb.shape}; convert grey or BGR "
            "images to RGB uint8 first"
        )
    return image_rgb


class FeatureBackend(abc.ABC):
    """One way of turning an RGB image into sparse features."""

    name: str
    descriptor_metric: str

    @abc.abstractmethod
    def extract(self, image_rgb: np.ndarray) -> Features:
        """Features of one uint8 (H, W, 3) RGB image."""

    def extract_with_field(self, image_rgb: np.ndarray) -> tuple[Features, DescriptorField | None]:
        """`extract` and the image's `DescriptorField`; None for backends that describe their keypoints only."""
        return self.extract(image_rgb), None

    @abc.abstractmethod
    def signature(self) -> dict:
        """JSON-serialisable identity of the features (backend, parameters or model SHA-256) for map manifests."""

    @property
    @abc.abstractmethod
    def descriptor_size(self) -> int:
        """Descriptor length C (bytes for binary descriptors)."""

    def keypoint_scale(self, image_width: int) -> float:
        """Pixels of an `image_width`-wide image per pixel of the resolution the keypoints are found at (1 for
        detectors that run on the image itself); keypoint noise, and the gates that allow for it, scale with it."""
        return 1.0


class _OpenCvBackend(FeatureBackend):
    """Shared OpenCV detect-and-describe wrapper; subclasses build the detector."""

    _descriptor_dtype: type[np.generic]

    def __init__(self, detector, params: dict) -> None:
        self._detector = detector
        self._params = params

    def extract(self, image_rgb: np.ndarray) -> Features:
        grey = cv2.cvtColor(check_image_rgb(image_rgb), cv2.COLOR_RGB2GRAY)
        cv_keypoints, descriptors = self._detector.detectAndCompute(grey, None)
        if descriptors is None or len(cv_keypoints) == 0:
            return Features(
                np.zeros((0, 2), np.float32),
                np.zeros((0, self.descriptor_size), self._descriptor_dtype),
                np.zeros((0,), np.float32),
            )
        keypoints = np.array([kp.pt for kp in cv_keypoints], dtype=np.float32)
        response = np.array([kp.response for kp in cv_keypoints], dtype=np.float32)
        peak = float(response.max())
        scores = response / peak if peak > 0 else np.ones_like(response)
        return Features(
            keypoints,
            np.ascontiguousarray(descriptors, dtype=self._descriptor_dtype),
            np.clip(scores, 0.0, 1.0).astype(np.float32),
        )

    def signature(self) -> dict:
        return {"backend": self.name, "opencv_version": cv2.__version__, "params": dict(self._params)}


class OrbBackend(_OpenCvBackend):
    """OpenCV ORB: 256-bit binary descriptors (32 bytes) compared by Hamming distance."""

    name = "orb"
    descriptor_metric = "hamming"
    descriptor_size = 32
    _descriptor_dtype = np.uint8

    def __init__(self, n_features: int = 1000, scale_factor: float = 1.2, n_levels: int = 8, fast_threshold: int = 20):
        params = {
            "n_features": n_features,
            "scale_factor": scale_factor,
            "n_levels": n_levels,
            "fast_threshold": fast_threshold,
        }
        super().__init__(
            cv2.ORB.create(
                nfeatures=n_features, scaleFactor=scale_factor, nlevels=n_levels, fastThreshold=fast_threshold
            ),
            params,
        )


class SiftBackend(_OpenCvBackend):
    """OpenCV SIFT: 128-D float descriptors compared by L2 distance with Lowe's ratio test."""

    name = "sift"
    descriptor_metric = "l2"
    descriptor_size = 128
    _descriptor_dtype = np.float32

    def __init__(self, n_features: int = 1000, contrast_threshold: float = 0.04):
        params = {"n_features": n_features, "contrast_threshold": contrast_threshold}
        super().__init__(cv2.SIFT.create(nfeatures=n_features, contrastThreshold=contrast_threshold), params)


class LearnedBackend(FeatureBackend):
    """The exported feature network (TorchScript with metadata, `dlvf_ros.features.model_file`); ZNCC descriptors."""

    name = "learned"
    descriptor_metric = "zncc"

    def __init__(self, model_path: str | Path) -> None:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(
                f"learned backend: model file {model_path} does not exist; pass --model PATH to an exported model "
                "(`dlvf export`) or use --backend orb|sift"
            )
        from dlvf_ros.features.model_file import load_feature_model

        self.model_path = model_path
        self.model_sha256 = fileio.sha256_file(model_path)
        self._model = load_feature_model(model_path)
        self.metadata = dict(self._model.metadata)

    def extract(self, image_rgb: np.ndarray) -> Features:
        return self._model.extract(image_rgb)

    def extract_with_field(self, image_rgb: np.ndarray) -> tuple[Features, DescriptorField | None]:
        return self._model.extract_with_field(image_rgb)

    @property
    def descriptor_size(self) -> int:
        return int(self.metadata["descriptor_size"])

    def keypoint_scale(self, image_width: int) -> float:
        return float(image_width) / float(self.metadata["input_width"])

    def signature(self) -> dict:
        return {
            "backend": self.name,
            "model_sha256": self.model_sha256,
            "model_file": self.model_path.name,
            "metadata": self.metadata,
        }


def make_backend(name: str, model_path: str | Path | None = None) -> FeatureBackend:
    """Backend by name: "learned" (needs `model_path`), "orb", "sift" or "xfeat" (optional extra)."""
    if name == "learned":
        if model_path is None:
            raise ValueError("make_backend: the learned backend needs a model path (--model PATH)")
        return LearnedBackend(model_path)
    if model_path is not None:
        raise ValueError(f"make_backend: --model is only used by the learned backend, not by {name!r}")
    if name == "orb":
        return OrbBackend()
    if name == "sift":
        return SiftBackend()
    if name == "xfeat":
        from dlvf_ros.features.xfeat_backend import XFeatBackend

        return XFeatBackend()
    raise ValueError(f"make_backend: unknown backend {name!r}; choose one of {list(BACKEND_NAMES)}")
