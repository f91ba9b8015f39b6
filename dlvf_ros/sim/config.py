"""Typed configuration of the synthetic world, its runs and the renderer (defaults here; YAML in config/sim.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dlvf_ros.sim.style import parse_style


@dataclass
class WorldConfig:
    """Procedural terrain, trail and clutter in a style. Lengths in metres.

    `style`: a spec for `style.parse_style`, resolved with the world seed: ``drawn`` (the seed's own style, never a
    held-out test member), ``training`` (neither held-out set), ``held_out_test``, ``held_out_validation``, a preset
    (``classic``: the look before styles, ``demo``) and/or ``family=member`` overrides. Densities are the full
    densities; the style's members scale them."""

    style: str = "drawn"
    path_length_m: float = 100.0  # taught path length; the trail continues before and after it
    path_lead_in_m: float = 20.0  # trail behind the start of the taught path
    path_lead_out_m: float = 60.0  # trail beyond its end (so the camera sees a trail ahead at the last frame)
    max_curvature_per_m: float = 0.045  # tightest turn radius ~22 m
    margin_m: float = 75.0  # terrain around the trail's bounding box
    grid_step_m: float = 1.0  # terrain mesh resolution
    chunk_size_m: float = 24.0  # culling granularity of the terrain and objects
    terrain_relief_m: float = 4.0  # amplitude of the rolling hills
    trail_width_m: float = 2.4  # trail width (the trail member scales it)
    splat_texel_m: float = 0.1  # resolution of the trail / grass-variation map
    # clutter per 100 m of trail (the trail is path_lead_in_m + path_length_m + path_lead_out_m long)
    rocks_per_100m: float = 220.0
    bushes_per_100m: float = 110.0
    trees_per_100m: float = 80.0
    far_trees_per_100m: float = 80.0  # sparse tree line far from the trail (skyline)
    tufts_per_100m: float = 200.0
    stumps_per_100m: float = 25.0
    logs_per_100m: float = 14.0
    man_made_per_100m: float = 12.0  # posts; fences, barrels and walls are fewer (world.MAN_MADE)
    detail_distance_m: float = 55.0  # small rocks and bushes are not drawn beyond this range
    lod_distances_m: tuple[float, float] = (20.0, 50.0)  # chunks beyond these ranges get coarser clutter meshes
    rock_clearance_m: float = 1.7  # from the trail centreline; repeat runs stay within ~0.75 m of it
    plant_clearance_m: float = 3.0
    texture_size: int = 512  # texels per material tile side
    # ground, patch and trail tiles mixed with a shifted copy by value noise, so that the surface never repeats a
    # whole tile (a tiled trail offers a pose one tile away as many matches as the true one: model card, stage 16)
    aperiodic_textures: bool = False

    def __post_init__(self) -> None:
        if self.path_length_m <= 0 or self.grid_step_m <= 0 or self.splat_texel_m <= 0:
            raise ValueError("WorldConfig: path_length_m, grid_step_m and splat_texel_m must be positive")
        if self.trail_width_m / 2 >= self.rock_clearance_m:
            raise ValueError(
                f"WorldConfig: rock_clearance_m ({self.rock_clearance_m}) must exceed half of trail_width_m "
                f"({self.trail_width_m}); rocks would lie on the trail"
            )
        if not 0 < self.lod_distances_m[0] <= self.lod_distances_m[1]:
            raise ValueError(
                f"WorldConfig: lod_distances_m must be increasing and positive, got {self.lod_distances_m}"
            )
        if self.texture_size < 64 or self.texture_size & (self.texture_size - 1):
            raise ValueError(f"WorldConfig: texture_size must be a power of two >= 64, got {self.texture_size}")
        parse_style(self.style, 0)  # raises a clear error for an unknown base, family or member


@dataclass
class TrajectoryConfig:
    """Teach and repeat runs along the trail."""

    spacing_m: float = 0.5  # teach frame spacing along the path
    speed_mps: float = 1.0  # nominal speed; frames come every spacing_m / speed_mps seconds
    speed_variation: float = 0.15  # repeat runs: +-15 % smooth speed changes (frames do not line up with teach)
    max_lateral_offset_m: float = 0.75  # repeat runs: bound of the smooth lateral offset from the teach path
    max_heading_offset_deg: float = 5.0  # repeat runs: bound of the heading offset from the teach path
    first_stamp_ns: int = 1_717_200_000_000_000_000  # 2024-06-01 00:00 UTC; run i starts on day i at its hour

    def __post_init__(self) -> None:
        if self.spacing_m <= 0 or self.speed_mps <= 0:
            raise ValueError("TrajectoryConfig: spacing_m and speed_mps must be positive")
        if not 0 <= self.speed_variation < 0.9:
            raise ValueError(f"TrajectoryConfig: speed_variation must be in [0, 0.9), got {self.speed_variation}")
        if self.max_lateral_offset_m < 0 or not 0 <= self.max_heading_offset_deg < 45:
            raise ValueError("TrajectoryConfig: offsets must be >= 0 and max_heading_offset_deg < 45")


@dataclass
class OdometryConfig:
    """Wheel-odometry error model; each run draws its own scale error and yaw-rate bias."""

    scale_error_std: float = 0.01  # relative distance error (1 %)
    yaw_rate_bias_std_deg_s: float = 0.02  # gyro-like heading drift
    translation_noise_m_per_sqrt_m: float = 0.005  # random walk per sqrt(metre travelled)
    yaw_noise_deg_per_sqrt_m: float = 0.05


@dataclass
class RenderConfig:
    """OpenGL renderer settings."""

    near_m: float = 0.2
    far_m: float = 260.0
    shadow_map_size: int = 4096
    shadows: bool = True
    sensor_noise: bool = True
    fog: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.near_m < self.far_m:
            raise ValueError(f"RenderConfig: need 0 < near_m < far_m, got {self.near_m}, {self.far_m}")
        if self.shadow_map_size < 256:
            raise ValueError(f"RenderConfig: shadow_map_size must be >= 256, got {self.shadow_map_size}")


@dataclass
class SimConfig:
    world: WorldConfig = field(default_factory=WorldConfig)
    trajectory: TrajectoryConfig = field(default_factory=TrajectoryConfig)
    odometry: OdometryConfig = field(default_factory=OdometryConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
