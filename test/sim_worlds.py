"""Small simulated worlds for the tests: a short trail with 5 m of lead-in and little terrain around it, so that
generating and rendering one takes seconds. Vary them with `dataclasses.replace`."""

from dlvf_ros.sim import WorldConfig

# 30 m of trail and terrain beyond the path, 128-texel material tiles, 0.2 m splat texels: rendering checks
SMALL_WORLD = WorldConfig(
    path_length_m=20.0, path_lead_in_m=5.0, path_lead_out_m=30.0, margin_m=30.0, texture_size=128, splat_texel_m=0.2
)
# 25 m of trail and terrain beyond the path, 64-texel material tiles, 0.25 m splat texels: runs of frames
TINY_WORLD = WorldConfig(
    path_length_m=3.0, path_lead_in_m=5.0, path_lead_out_m=25.0, margin_m=25.0, texture_size=64, splat_texel_m=0.25
)
# a bare 60 m trail (no rocks, bushes or trees), coarse splat texels: trajectories and the vehicle, not rendered
BARE_WORLD = WorldConfig(
    path_length_m=60.0,
    path_lead_in_m=5.0,
    path_lead_out_m=10.0,
    margin_m=15.0,
    texture_size=64,
    splat_texel_m=0.5,
    **{f"{kind}_per_100m": 0.0 for kind in ("rocks", "bushes", "trees", "far_trees")},
)
