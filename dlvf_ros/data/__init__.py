"""Data formats: the UTIAS long-term dataset layout and rosbag2 bags."""
