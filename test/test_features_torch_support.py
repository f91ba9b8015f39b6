"""The supported torch range, checked at node start-up against the installed torch and the model's recorded one."""

from pathlib import Path

import pytest
import torch

from dlvf_ros.features.torch_support import (
    SUPPORTED_TORCH,
    TorchVersionError,
    check_torch_version,
    parse_version,
    recorded_torch_version,
)

ROOT = Path(__file__).resolve().parents[1]


def test_versions_parse_and_the_installed_torch_is_supported():
    assert parse_version("2.13.0+cpu") == (2, 13) and parse_version("3.0") == (3, 0)
    with pytest.raises(ValueError, match="not a version"):
        parse_version("nightly")
    check_torch_version(torch.__version__)  # the lock's torch is in the range the package states
    low, below = SUPPORTED_TORCH
    assert low <= parse_version(torch.__version__) < below


def test_an_unsupported_or_too_old_torch_is_refused_naming_the_fix():
    with pytest.raises(TorchVersionError, match=r"torch 2\.1\.2 is not supported \(supported: torch>=2\.13,<3\.0\)"):
        check_torch_version("2.1.2")
    with pytest.raises(TorchVersionError, match="torch 3.1.0 is not supported"):
        check_torch_version("3.1.0")
    with pytest.raises(TorchVersionError, match=r"model m\.pt was exported with torch 2\.15\.0, newer than .*2\.13"):
        check_torch_version("2.13.1", "2.15.0", "model m.pt")
    check_torch_version("2.14.0", "2.13.0+cpu")  # a newer torch loads an older model


def test_the_shipped_model_records_its_torch_and_other_files_record_none(tmp_path):
    (model,) = (ROOT / "models").glob("*.pt")
    assert parse_version(recorded_torch_version(model)) <= parse_version(torch.__version__)
    (tmp_path / "x.pt").write_bytes(b"not a zip")
    assert recorded_torch_version(tmp_path / "x.pt") is None and recorded_torch_version(tmp_path / "none") is None
