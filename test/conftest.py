"""Test session setup: every ROS 2 process started by the tests stays on this machine (SHM transport, own domain);
the session header says which implementation of message_filters, tf2_ros and cv_bridge the nodes use (the real
packages where installed, e.g. from ../shared/ros2-wheels by `make venv`; else dlvf_ros.ros.compat) and whether the
launch_testing tests run. torch's OpenMP threads here and in every child process wait passively."""

import os
import sys

# Idle OpenMP threads sleep instead of spinning. Spinning, 2 intra-op threads on a loaded 2-core machine burn the
# CPU their partner needs: a FeatureNet forward and backward pass (6 images, 128 x 96) took 19.4 s (2.7 s CPU)
# instead of 1.4 s (0.3 s CPU) at load 15.
# libgomp reads this once, when torch loads, so it is set before anything imports torch; children inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dlvf_ros.replay.environment import apply_isolated_ros_environment

apply_isolated_ros_environment()
# the ament index of this environment (launch's frontends, launch_ros' package lookups), as a sourced install has it
os.environ.setdefault("AMENT_PREFIX_PATH", sys.prefix)

import pytest  # noqa: E402 - the isolated ROS environment is applied before anything else is imported


def pytest_report_header(config):
    import importlib.util

    from dlvf_ros.ros import compat

    launch_testing = importlib.util.find_spec("launch_testing") is not None
    return [
        f"ROS 2 Python packages used by the nodes: {compat.describe()}",
        "launch_testing: " + ("installed (launch file tests run)" if launch_testing else "not installed (skipped)"),
    ]


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
