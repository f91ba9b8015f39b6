"""Path following on the taught path (no ROS here): `pure_pursuit.PathTracker`, driven by path_tracker_node."""
