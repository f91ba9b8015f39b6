"""Localization (no rclpy): the teach map store and the localizer.

Modules, in data-flow order: `frontend` (features + SGBM -> 3-D points), `teach` (keyframe selection ->
`map_store`, whose on-disk schema is `map_format`), `search_window` (which keyframes to try), `localizer` (matching,
RANSAC, `refine`, `covariance`, `health`), `reextract` (new features for an old map, schema-1 maps upgraded);
CLIs: `teach_cli` (`dlvf teach`), `map_cli` (`dlvf map`).
Import the modules directly: this package imports nothing, so `dlvf map info` never loads torch.
"""
