"""Test session setup: every ROS 2 process started by the tests stays on this machine (SHM transport, own domain)."""
from dlvf_ros.ros.environment import apply_isolated_ros_environment

apply_isolated_ros_environment()
