"""dlvf_ros: long-term visual teach and repeat with learned stereo features.

The data flow follows the sub-packages: `sim` and `data` (images, poses, bags) -> `features` (the network and
classical baselines) -> `matching` and `geometry` (correspondences, stereo points, weighted SVD, RANSAC) ->
`localization` (map store, localizer) -> `ros` (thin ROS 2 nodes). `training`, `evaluation` and `replay` (bags
through the nodes) sit beside it. Everything outside `dlvf_ros.ros` and `dlvf_ros.replay` is pure Python and never
imports rclpy.
"""

__version__ = "0.1.0"
