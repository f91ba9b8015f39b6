"""dlvf_ros: long-term visual teach and repeat with learned stereo features.

The data flow follows the sub-packages: `sim` and `data` (images, poses, bags) -> `features` (the network and
classical baselines) -> `matching` and `geometry` (correspondences, stereo points, weighted SVD, RANSAC) ->
`localization` (map store, localizer) -> `ros` (thin ROS 2 nodes). `training`, `evaluation` and `replay` (bags
through the nodes) sit beside it. Everything outside `dlvf_ros.ros` and `dlvf_ros.replay` is pure Python and never
imports rclpy.
"""

__version__ = "0.1.0"

import os as _os

# Idle worker threads of torch's and numpy's thread pools sleep instead of spinning. Both runtimes read their setting
# once, when they load, so it is set here, before anything imports torch or numpy (every entry point imports this
# package first); a value already in the environment wins.
# - OMP_WAIT_POLICY=PASSIVE (torch's OpenMP threads): on a busy 2-core robot computer spinning threads made a forward +
#   backward pass ~10x slower (measured: 19.4 s against 1.4 s at load 15).
# - OPENBLAS_THREAD_TIMEOUT=4 (numpy's OpenBLAS: sleep after 2^4 cycles instead of 2^28, ~0.1 s): after each
#   descriptor-matching product its spinning workers took the two cores from the next frame's network forward
#   (`dlvf bench localize`, 2 threads, three runs each way: the learned features stage 35-37 ms against 44-54 ms,
#   1.89-1.90x ORB's time end to end against 1.90-2.24x).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
