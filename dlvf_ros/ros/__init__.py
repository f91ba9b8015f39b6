"""ROS 2 runtime: the nodes (teach_node, localizer_node) and their wiring (parameters, stereo input, odometry,
message conversions, launch arguments). With `dlvf_ros.replay` (offline tools), the only sub-packages that import
rclpy."""
