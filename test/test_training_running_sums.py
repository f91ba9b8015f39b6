"""Named running sums: add by name, read by name, reduce in one collective."""

import pytest
import torch

from dlvf_ros.training.distributed import DistributedContext
from dlvf_ros.training.running_sums import RunningSums


def test_sums_by_name_and_ratio():
    sums = RunningSums(("loss", "n"))
    sums.add(loss=2.0, n=1)
    sums.add(loss=4.0, n=2)
    reduced = sums.reduced(DistributedContext(0, 1, 0, torch.device("cpu")))
    assert reduced["loss"] == 6.0 and reduced.ratio("loss", "n") == 2.0
    assert RunningSums(("loss", "n")).ratio("loss", "n") == 0.0  # an empty epoch: 0, not NaN
    with pytest.raises(ValueError):
        sums.add(los=1.0)
    with pytest.raises(ValueError, match="duplicate"):
        RunningSums(("a", "a"))
