"""Geometry: SE(3) helpers, the stereo camera model, weighted SVD and RANSAC."""
