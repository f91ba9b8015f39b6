"""Test session setup: every ROS 2 process started by the tests stays on this machine (SHM transport, own domain)."""

from dlvf_ros.replay.environment import apply_isolated_ros_environment

apply_isolated_ros_environment()

import pytest  # noqa: E402 - the isolated ROS environment is applied before anything else is imported


@pytest.fixture
def restore_torch_threads():
    """Puts torch's intra-op thread count back after a test that changes it."""
    import torch

    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def one_torch_thread(restore_torch_threads):
    """One intra-op thread: on the shared 2-core machine more threads only spin against each other."""
    import torch

    torch.set_num_threads(1)
