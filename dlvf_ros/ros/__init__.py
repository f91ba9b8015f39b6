"""ROS 2 wiring: nodes, message conversions, bag player. The only sub-package that imports rclpy."""
