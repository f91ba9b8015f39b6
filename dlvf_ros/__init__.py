"""dlvf_ros: long-term visual teach and repeat with learned stereo features.

The data flow follows the sub-packages: `sim` and `data` (images, poses, bags) -> `features` (the network and
classical baselines) -> `matching` and `geometry` (correspondences, stereo points, weighted SVD, RANSAC) ->
`localization` (map store, localizer) -> `ros` (thin ROS 2 nodes). `training`, `evaluation` and `replay` (bags
through the nodes) sit beside it. Everything outside `dlvf_ros.ros` and `dlvf_ros.replay` is pure Python and never
imports rclpy.
"""

__version__ = "0.1.0"

import os as _os

# OpenMP threads that wait for work by sleeping, not spinning: on a busy 2-core robot computer spinning torch threads
# made a forward + backward pass ~10x slower (measured: 19.4 s against 1.4 s at load 15). Set before torch loads (its
# OpenMP runtime reads it once); an explicit OMP_WAIT_POLICY in the environment wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
