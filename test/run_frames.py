"""Test support: the stereo frame record that the data, bag, simulator and training tests build their runs from.

`UtiasWriter.add_frame` and `write_run_bag` take any object with these fields (like `dlvf_ros.sim.frames.SimFrame`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    """One stereo frame of a test run: RGB uint8 images, ground truth and (where the test has it) odometry."""

    pose_id: int
    stamp_ns: int
    left: np.ndarray
    right: np.ndarray
    T_world_vehicle: np.ndarray
    T_odom_vehicle: np.ndarray | None = None  # None: no odometry (the UTIAS layout has none)
