"""Path following on the taught path (no ROS here): `path_tracker.PathTracker`, driven by path_tracker_node."""
