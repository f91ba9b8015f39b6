"""A seeded procedural outdoor world in a style (style.py): heightfield terrain, a trail along a smooth path,
rocks, bushes, trees, undergrowth and man-made objects, and the textures that give them detail.

World frame: z up, metres; the taught path starts at the origin (arc length s = 0). The terrain is a regular grid
of `grid_step_m` split into triangles along the (i, j)-(i+1, j+1) diagonal; `World.terrain_height` evaluates that
exact triangulated surface, so back-projected depth can be checked against it. Trail grading: a crown is part of
that surface; ruts are shading only (the renderer bends the normals), so depth stays exact.

Random streams: a classic world draws everything from one generator in the order of before styles (so old seeds
give the same world); any other world draws each component (path, terrain, splat, each texture layer, each kind
of object) from its own stream of the seed, so changing one family leaves the others' draws as they were.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from tqdm import tqdm

from dlvf_ros.sim import meshes
from dlvf_ros.sim.config import WorldConfig
from dlvf_ros.sim.noise import smoothstep, spectral_noise, to_unit
from dlvf_ros.sim.style import Style, parse_style
from dlvf_ros.sim.textures import GROUND, LAYERS, TRAIL_SURFACES, TrailSurface, material_textures

PATH_STEP_M = 0.05  # resolution of the dense trail centreline
CLASSIC_KINDS = ("rocks_near", "rocks", "bushes", "trees", "far_trees")  # the clutter of before styles
TRAIL_COORDS_TEXEL_M = 0.5  # resolution of the (arc length, lateral offset) map; both are smooth near the trail
TRAIL_COORDS_REACH_M = 12.0  # beyond this distance from the centreline the map holds no trail


@dataclass(frozen=True)
class Terrain:
    """Terrain member: relief (factor on WorldConfig.terrain_relief_m), tree cover (factors on the tree, skyline and
    bush densities, and on the trees' mean distance from the trail) and banks rising beside the trail (a cutting)."""

    relief: float
    trees: float
    far_trees: float
    bushes: float
    tree_spread: float
    bank_m: tuple[float, float] = (0.0, 0.0)


TERRAINS: dict[str, Terrain] = {
    "flat_open": Terrain(0.15, 0.35, 0.8, 0.8, 1.3),
    "rolling_open": Terrain(1.0, 1.0, 1.0, 1.0, 1.0),
    "rolling_forest": Terrain(1.0, 1.45, 1.4, 1.0, 0.55),
    "hilly_forest": Terrain(2.4, 1.3, 1.25, 1.0, 0.6),
    "sunken_cut": Terrain(0.8, 0.6, 1.0, 1.0, 1.0, (1.2, 2.6)),
}
ROCK_SHAPES = {"rounded": meshes.rock, "angular": meshes.angular_rock, "slabs": meshes.slab_rock}
TREE_KINDS = {"conifer": meshes.conifer, "pine": meshes.pine, "broadleaf": meshes.broadleaf, "mixed": meshes.tree}
# undergrowth member -> factors on WorldConfig's bush, tuft, stump and log densities
UNDERGROWTH: dict[str, dict[str, float]] = {
    "bushes": {"bushes": 1.0},
    "tufts": {"bushes": 0.35, "tufts": 1.0},
    "stumps": {"bushes": 0.6, "tufts": 0.3, "stumps": 1.0},
    "logs": {"bushes": 0.6, "stumps": 0.4, "logs": 1.0},
}
# man-made member -> (kind of object, factor on WorldConfig.man_made_per_100m)
MAN_MADE: dict[str, tuple[str, float]] = {
    "none": ("", 0.0),
    "posts": ("posts", 1.0),
    "fence": ("fences", 0.3),
    "barrels": ("barrels", 0.8),
    "wall": ("walls", 0.15),
}


@dataclass(frozen=True)
class TrailGeometry:
    """The trail of one world: half width (m), crown height (m, in the terrain) and rut depth (m, shading)."""

    half_width_m: float
    crown_m: float
    rut_depth_m: float


@dataclass
class Chunk:
    """Terrain patch and the objects standing on it, culled as one draw call."""

    lod_meshes: list[meshes.Mesh]  # finest first; the same terrain in each, clutter with fewer triangles
    bounds_min: np.ndarray  # (3,) world metres
    bounds_max: np.ndarray
    max_distance_m: float = float("inf")  # not drawn when the camera is farther than this from the box


@dataclass
class World:
    seed: int
    config: WorldConfig
    path_s_m: np.ndarray  # (M,) arc length of the dense centreline; 0 at the start of the taught path
    path_xy_m: np.ndarray  # (M, 2) centreline in the world frame
    path_heading_rad: np.ndarray  # (M,) direction of travel
    terrain_origin_xy_m: np.ndarray  # (2,) world xy of height node [0, 0]
    terrain_heights_m: np.ndarray  # (ny, nx): node [j, i] is at origin + (i, j) * grid_step_m
    splat: np.ndarray  # (Hs, Ws, 4) uint8 world-xy map: R trail, G ground patches, B damp patches, A clumps
    splat_origin_xy_m: np.ndarray  # world xy of the splat texel [0, 0] centre
    textures: np.ndarray  # (layers, S, S, 4) uint8 material tiles (textures.py)
    chunks: list[Chunk]
    object_counts: dict[str, int]
    style: Style
    trail: TrailGeometry
    # (Ht, Wt, 4) float32 world-xy map at TRAIL_COORDS_TEXEL_M: arc length s (m), lateral offset d (m, left +),
    # and the unit lateral direction (x, y) of the nearest centreline point
    trail_coords: np.ndarray
    trail_coords_origin_xy_m: np.ndarray

    @property
    def terrain_extent_m(self) -> tuple[np.ndarray, np.ndarray]:
        """(min xy, max xy) of the terrain in the world frame."""
        ny, nx = self.terrain_heights_m.shape
        return self.terrain_origin_xy_m, self.terrain_origin_xy_m + self.config.grid_step_m * np.array([nx - 1, ny - 1])

    def terrain_height(self, x_m, y_m) -> np.ndarray:
        """Exact height (m) of the triangulated terrain surface at world (x, y); raises outside the terrain."""
        x_m, y_m = np.asarray(x_m, np.float64), np.asarray(y_m, np.float64)
        step = self.config.grid_step_m
        gx = (x_m - self.terrain_origin_xy_m[0]) / step
        gy = (y_m - self.terrain_origin_xy_m[1]) / step
        ny, nx = self.terrain_heights_m.shape
        if np.any((gx < 0) | (gy < 0) | (gx > nx - 1) | (gy > ny - 1)):
            raise ValueError("terrain_height: point outside the terrain; check World.terrain_extent_m")
        i = np.minimum(np.floor(gx).astype(int), nx - 2)
        j = np.minimum(np.floor(gy).astype(int), ny - 2)
        fx, fy = gx - i, gy - j
        h = self.terrain_heights_m
        ha, hb, hc, hd = h[j, i], h[j, i + 1], h[j + 1, i], h[j + 1, i + 1]
        lower = ha + fx * (hb - ha) + fy * (hd - hb)  # triangle (a, b, d) where fx >= fy
        upper = ha + fy * (hc - ha) + fx * (hd - hc)  # triangle (a, d, c)
        return np.where(fx >= fy, lower, upper)

    def path_pose(self, s_m) -> tuple[np.ndarray, np.ndarray]:
        """Centreline ((N, 2) xy, (N,) heading rad) at arc lengths `s_m`, linearly interpolated."""
        s_m = np.atleast_1d(np.asarray(s_m, np.float64))
        if np.any((s_m < self.path_s_m[0]) | (s_m > self.path_s_m[-1])):
            raise ValueError(
                f"path_pose: arc length outside the trail [{self.path_s_m[0]:.1f}, {self.path_s_m[-1]:.1f}] m"
            )
        xy = np.stack([np.interp(s_m, self.path_s_m, self.path_xy_m[:, k]) for k in range(2)], axis=1)
        heading = np.interp(s_m, self.path_s_m, np.unwrap(self.path_heading_rad))
        return xy, heading

    def distance_to_path(self, xy_m: np.ndarray) -> np.ndarray:
        """Distance (m) from (N, 2) world points to the trail centreline."""
        return self._path_index.query(np.asarray(xy_m, np.float64).reshape(-1, 2))[0]

    def heading_near(self, xy_m) -> float:
        """Direction of travel (rad, world frame) of the centreline point nearest to world (x, y)."""
        return float(self.path_heading_rad[self._path_index.query(np.asarray(xy_m, np.float64).reshape(2))[1]])

    @property
    def _path_index(self) -> cKDTree:
        if "_index" not in self.__dict__:
            self.__dict__["_index"] = cKDTree(self.path_xy_m)
        return self.__dict__["_index"]


def _centreline(rng: np.random.Generator, cfg: WorldConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense smooth trail (s, xy, heading) with bounded curvature that does not double back on itself."""
    s = np.arange(-cfg.path_lead_in_m, cfg.path_length_m + cfg.path_lead_out_m + PATH_STEP_M / 2, PATH_STEP_M)
    for _ in range(50):
        wavelengths = rng.uniform(25.0, 110.0, size=4)
        curvature = sum(
            rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * s / lam + rng.uniform(0, 2 * np.pi)) for lam in wavelengths
        )
        curvature *= rng.uniform(0.5, 1.0) * cfg.max_curvature_per_m / np.abs(curvature).max()
        heading = rng.uniform(-np.pi, np.pi) + np.concatenate([[0.0], np.cumsum(curvature[:-1]) * PATH_STEP_M])
        xy = np.concatenate([[[0.0, 0.0]], np.cumsum(np.stack([np.cos(heading), np.sin(heading)], 1)[:-1], 0)])
        xy *= PATH_STEP_M
        xy -= xy[np.argmin(np.abs(s))]
        # reject trails that come back within 30 m of themselves (they would share scenery)
        pairs = cKDTree(xy[::20]).query_pairs(30.0, output_type="ndarray")
        if len(pairs) == 0 or np.all(np.abs(pairs[:, 0] - pairs[:, 1]) * 20 * PATH_STEP_M < 60.0):
            return s, xy, heading
    raise RuntimeError("could not draw a non-self-intersecting trail; lower max_curvature_per_m")


def _distance_map(path_xy: np.ndarray, origin: np.ndarray, shape: tuple[int, int], step: float) -> np.ndarray:
    """Distance (m) from each node of a grid (origin, step) to the centreline (exact to about step / 2)."""
    mask = np.ones(shape, bool)
    idx = np.round((path_xy - origin) / step).astype(int)
    inside = (idx[:, 0] >= 0) & (idx[:, 1] >= 0) & (idx[:, 0] < shape[1]) & (idx[:, 1] < shape[0])
    mask[idx[inside, 1], idx[inside, 0]] = False
    return ndimage.distance_transform_edt(mask) * step


def _terrain(rng, cfg: WorldConfig, dist: np.ndarray, terrain: Terrain, trail: TrailGeometry, bank_m: float):
    """Rolling hills, flattened and slightly sunk along the trail, with the trail's crown and the banks of a cutting
    (heights at the grid nodes, metres)."""
    step = cfg.grid_step_m
    hills = (
        spectral_noise(rng, dist.shape, 3.6, 12.0 / step, 160.0 / step) * (cfg.terrain_relief_m * terrain.relief) * 0.5
    )
    bumps = spectral_noise(rng, dist.shape, 2.0, 2.0, 6.0 / step) * 0.06
    smooth = ndimage.gaussian_filter(hills, 8.0 / step)
    half = trail.half_width_m
    flat = 1.0 - smoothstep(half + 0.3, half + 7.0, dist)
    heights = hills * (1 - flat) + smooth * flat + bumps * smoothstep(half, half + 1.5, dist)
    heights -= 0.05 * (1.0 - smoothstep(half - 0.4, half + 0.2, dist))
    if trail.crown_m > 0:
        heights += trail.crown_m * np.clip(1.0 - (dist / half) ** 2, 0.0, 1.0)
    if bank_m > 0:
        heights += bank_m * smoothstep(half + 1.2, half + 5.0, dist)
    return heights


def _splat(rng, cfg: WorldConfig, path_xy, origin, shape, surface: TrailSurface, half: float) -> np.ndarray:
    """World-space material map (uint8 RGBA): R trail coverage (two wheel tracks, full or worn), G ground patches,
    B damp patches, A clumps (non-periodic brightness variation that breaks up the repeating material tiles)."""
    texel = cfg.splat_texel_m
    dist = _distance_map(path_xy, origin, shape, texel)
    wobble = spectral_noise(rng, shape, 2.0, 2.0, 3.0 / texel) * surface.wobble_m
    edge = 1.0 - smoothstep(half - surface.edge_m[0], half + surface.edge_m[1], dist + wobble)
    if surface.coverage == "full":
        trail = edge
    else:  # wheel tracks with a grassy strip between them
        strip = surface.strip_m
        centre_strip = 1.0 - smoothstep(strip[0], strip[1], dist + 0.6 * wobble)
        trail = edge * (1.0 - 0.75 * centre_strip)
    bare = smoothstep(0.78, 0.9, to_unit(spectral_noise(rng, shape, 2.2, 4.0, 8.0 / texel)))
    if surface.coverage == "worn":  # trampled in patches
        trail = trail * smoothstep(0.25, 0.6, to_unit(spectral_noise(rng, shape, 2.0, 3.0, 4.0 / texel)))
    trail = np.clip(trail + surface.bare_patches * bare * (1 - edge), 0, 1)
    patches = to_unit(spectral_noise(rng, shape, 2.0, 3.0, 25.0 / texel))
    damp = to_unit(spectral_noise(rng, shape, 2.5, 4.0, 40.0 / texel))
    clumps = to_unit(spectral_noise(rng, shape, 1.5, 2.0, 2.0 / texel))
    splat = np.empty(shape + (4,), np.uint8)
    for k, channel in enumerate((trail, patches, damp, clumps)):
        splat[..., k] = np.clip(channel * 255 + 0.5, 0, 255).astype(np.uint8)
    return splat


def _trail_coords(world_lo: np.ndarray, world_hi: np.ndarray, s, xy, heading) -> tuple[np.ndarray, np.ndarray]:
    """(map, origin): arc length, signed lateral offset and lateral unit vector of the nearest centreline point at
    each node of a TRAIL_COORDS_TEXEL_M grid (offset TRAIL_COORDS_REACH_M and s = 0 far from the trail)."""
    texel = TRAIL_COORDS_TEXEL_M
    nx, ny = (np.ceil((world_hi - world_lo) / texel).astype(int) + 1).tolist()
    gy, gx = np.mgrid[0:ny, 0:nx]
    points = world_lo + texel * np.stack([gx.ravel(), gy.ravel()], axis=1)
    dist, index = cKDTree(xy).query(points, distance_upper_bound=TRAIL_COORDS_REACH_M)
    near = np.isfinite(dist)
    index = np.where(near, index, 0)
    direction = np.stack([np.cos(heading[index]), np.sin(heading[index])], axis=1)
    lateral = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    rel = points - xy[index]
    coords = np.zeros((len(points), 4), np.float32)
    coords[:, 0] = np.where(near, s[index] + (rel * direction).sum(1), 0.0)
    coords[:, 1] = np.where(near, (rel * lateral).sum(1), TRAIL_COORDS_REACH_M)
    coords[:, 2:] = lateral
    return coords.reshape(ny, nx, 4), world_lo.astype(np.float64)


def _place(rng, world: World, index: cKDTree, n: int, clearance, spread_m: float, size_fn):
    """Up to n (x, y, size) spots beside the trail, at least `clearance(size)` from the centreline (m), at an
    extra exponential distance of mean `spread_m`."""
    lo, hi = world.terrain_extent_m
    out: list[tuple[float, float, float]] = []
    for _ in range(20 * n):
        if len(out) == n:
            break
        size = size_fn()
        xy, heading = world.path_pose(rng.uniform(world.path_s_m[0], world.path_s_m[-1]))
        offset = (clearance(size) + rng.exponential(spread_m)) * rng.choice([-1.0, 1.0])
        p = xy[0] + offset * np.array([-np.sin(heading[0]), np.cos(heading[0])]) + rng.normal(scale=0.5, size=2)
        if np.all(p > lo + 2.0) and np.all(p < hi - 2.0) and index.query(p)[0] >= clearance(size):
            out.append((float(p[0]), float(p[1]), float(size)))
    return out


def _log_uniform(rng, a, b):
    return lambda: float(np.exp(rng.uniform(np.log(a), np.log(b))))


def _clutter_spots(streams, world: World) -> dict[str, list[tuple[float, float, float]]]:
    """Positions and sizes (m; height for trees and posts, length for logs) of each kind of clutter, denser near
    the trail, at the densities of the world config scaled by the style's members."""
    cfg, style = world.config, world.style
    terrain, under = TERRAINS[style.terrain], UNDERGROWTH[style.undergrowth]
    man_made_kind, man_made_factor = MAN_MADE[style.man_made]
    index = world._path_index
    per_100m = (world.path_s_m[-1] - world.path_s_m[0]) / 100.0
    half = world.trail.half_width_m
    rock_clear = max(cfg.rock_clearance_m, half + 0.3)
    plant_clear = max(cfg.plant_clearance_m, half + 1.2)

    def count(per_100m_density, factor=1.0):
        return int(round(per_100m_density * factor * per_100m))

    n_rocks = count(cfg.rocks_per_100m)
    n_near = int(n_rocks * 0.45)
    # kind: (count, clearance(size), mean extra distance, size sampler(rng))
    kinds = {
        "rocks_near": (n_near, lambda size: rock_clear + size / 2, 2.5, lambda r: _log_uniform(r, 0.08, 0.5)),
        "rocks": (
            n_rocks - n_near,
            lambda size: rock_clear + 1.0 + size / 2,
            14.0,
            lambda r: _log_uniform(r, 0.25, 1.8),
        ),
        "bushes": (
            count(cfg.bushes_per_100m, terrain.bushes * under.get("bushes", 0.0)),
            lambda size: plant_clear + size / 2,
            9.0,
            lambda r: _log_uniform(r, 0.6, 2.2),
        ),
        "trees": (
            count(cfg.trees_per_100m, terrain.trees),
            lambda size: plant_clear + 2.0,
            16.0 * terrain.tree_spread,
            lambda r: lambda: r.uniform(4.0, 12.0),
        ),
        "far_trees": (
            count(cfg.far_trees_per_100m, terrain.far_trees),
            lambda size: 25.0,
            25.0,
            lambda r: lambda: r.uniform(6.0, 14.0),
        ),
        "tufts": (
            count(cfg.tufts_per_100m, under.get("tufts", 0.0)),
            lambda size: rock_clear - 0.2,
            4.0,
            lambda r: lambda: r.uniform(0.25, 0.6),
        ),
        "stumps": (
            count(cfg.stumps_per_100m, under.get("stumps", 0.0)),
            lambda size: rock_clear + 0.4 + size,
            8.0,
            lambda r: _log_uniform(r, 0.25, 0.75),
        ),
        "logs": (
            count(cfg.logs_per_100m, under.get("logs", 0.0)),
            lambda size: rock_clear + 0.3 + size / 2,
            9.0,
            lambda r: lambda: r.uniform(1.5, 5.0),
        ),
        "posts": (
            count(cfg.man_made_per_100m, man_made_factor if man_made_kind == "posts" else 0.0),
            lambda size: rock_clear,
            0.4,
            lambda r: lambda: r.uniform(0.9, 1.4),
        ),
        "barrels": (
            count(cfg.man_made_per_100m, man_made_factor if man_made_kind == "barrels" else 0.0),
            lambda size: rock_clear + 1.0,
            5.0,
            lambda r: lambda: r.uniform(0.85, 0.95),
        ),
    }
    spots = {}
    for kind, (n, clearance, spread, sizes) in kinds.items():
        rng = streams(f"place:{kind}")
        spots[kind] = _place(rng, world, index, n, clearance, spread, sizes(rng))
    return spots


def _objects(streams, world: World, spots) -> list[tuple[np.ndarray, list[meshes.Mesh], bool]]:
    """(xy, meshes at each level of detail (finest first), small) of every object; small ones are drawn only up
    to `detail_distance_m`."""
    style = world.style
    builders = {
        "rocks_near": ROCK_SHAPES[style.rocks],
        "rocks": ROCK_SHAPES[style.rocks],
        "bushes": meshes.bush,
        "trees": TREE_KINDS[style.trees],
        "far_trees": TREE_KINDS[style.trees],
        "tufts": meshes.tuft,
        "stumps": meshes.stump,
        "logs": meshes.log,
        "posts": meshes.post,
        "barrels": meshes.barrel,
    }
    objects = []
    for kind, kind_spots in spots.items():
        rng = streams(f"shape:{kind}")
        for x, y, size in kind_spots:
            ground_z = float(world.terrain_height(x, y))
            object_seed = int(rng.integers(2**63))  # the same shape at every level of detail
            lods = [
                builders[kind](np.random.default_rng(object_seed), x, y, ground_z, size, detail)
                for detail in reversed(range(meshes.LEVELS_OF_DETAIL))
            ]
            small = kind not in ("trees", "far_trees") and not (kind == "rocks" and size >= 0.6)
            objects.append((np.array([x, y]), lods, small))
    return objects


def _lined_objects(streams, world: World) -> tuple[list[tuple[np.ndarray, list[meshes.Mesh], bool]], dict[str, int]]:
    """Fences (post-and-rail runs following the trail) and building walls (straight, parallel to the trail)."""
    cfg, style = world.config, world.style
    kind, factor = MAN_MADE[style.man_made]
    if kind not in ("fences", "walls"):
        return [], {}
    rng = streams(f"place:{kind}")
    n = int(round(cfg.man_made_per_100m * factor * (world.path_s_m[-1] - world.path_s_m[0]) / 100.0))
    lo, hi = world.terrain_extent_m
    half = world.trail.half_width_m
    objects: list[tuple[np.ndarray, list[meshes.Mesh], bool]] = []
    for _ in range(20 * n):
        if len(objects) == n:
            break
        side = rng.choice([-1.0, 1.0])
        if kind == "fences":
            offset = max(cfg.rock_clearance_m + 0.8, half + 1.0) + rng.uniform(0.0, 1.5)
            s0 = rng.uniform(world.path_s_m[0], world.path_s_m[-1] - 25.0)
            s = s0 + 2.5 * np.arange(int(rng.integers(4, 10)))
            xy, heading = world.path_pose(s)
            points = xy + side * offset * np.stack([-np.sin(heading), np.cos(heading)], 1)
            clearance = offset - 0.3
        else:
            offset = rng.uniform(6.0, 12.0)
            length = rng.uniform(6.0, 14.0)
            xy, heading = world.path_pose(rng.uniform(world.path_s_m[0] + 10.0, world.path_s_m[-1] - 10.0))
            normal = side * np.array([-np.sin(heading[0]), np.cos(heading[0])])
            along = np.array([np.cos(heading[0]), np.sin(heading[0])])
            centre = xy[0] + offset * normal
            points = centre + np.outer(np.linspace(-0.5, 0.5, 9) * length, along)
            clearance = 5.0
        if np.any(points < lo + 2.0) or np.any(points > hi - 2.0) or world.distance_to_path(points).min() < clearance:
            continue
        ground = np.column_stack([points, world.terrain_height(points[:, 0], points[:, 1])])
        object_seed = int(rng.integers(2**63))
        if kind == "fences":
            lods = [
                meshes.fence(np.random.default_rng(object_seed), ground, detail)
                for detail in reversed(range(meshes.LEVELS_OF_DETAIL))
            ]
        else:
            lods = [
                meshes.wall(np.random.default_rng(object_seed), ground[0], ground[-1], -normal, detail)
                for detail in reversed(range(meshes.LEVELS_OF_DETAIL))
            ]
        objects.append((points[0], lods, False))
    return objects, {kind: len(objects)}


class _Streams:
    """The random generators of a world (see the module docstring)."""

    def __init__(self, seed: int, shared: bool):
        self.seed = seed
        self.shared = np.random.default_rng([seed, 0x5EED]) if shared else None

    def __call__(self, component: str, classic: bool = True) -> np.random.Generator:
        """The generator of `component`; `classic=False` marks components that classic worlds did not have."""
        if self.shared is not None and classic:
            return self.shared
        return np.random.default_rng([self.seed, 0x5EED, zlib.crc32(component.encode())])


def generate_world(seed: int, config: WorldConfig | None = None, progress: bool = False) -> World:
    """Build the world of `seed` in the style `config.style` (a spec for `style.parse_style`, resolved with the
    seed). Deterministic: the same seed and config give the same world."""
    cfg = config or WorldConfig()
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"generate_world: seed must be a non-negative integer, got {seed!r}")
    style = parse_style(cfg.style, int(seed))
    legacy = style.classic_world
    streams = _Streams(int(seed), shared=legacy)
    steps = tqdm(total=4, desc=f"world {seed}", disable=not progress, leave=False)

    surface = TRAIL_SURFACES[style.trail]
    terrain = TERRAINS[style.terrain]
    trail_rng = streams("trail", classic=False)
    width_scale = 1.0 if legacy else trail_rng.uniform(*surface.width_scale)
    trail = TrailGeometry(
        cfg.trail_width_m * width_scale / 2, float(trail_rng.uniform(*surface.crown_m)), surface.rut_depth_m
    )
    bank_m = float(trail_rng.uniform(*terrain.bank_m))

    s, path_xy, heading = _centreline(streams("path"), cfg)
    step = cfg.grid_step_m
    lo = np.floor((path_xy.min(0) - cfg.margin_m) / step) * step
    hi = np.ceil((path_xy.max(0) + cfg.margin_m) / step) * step
    nx, ny = np.round((hi - lo) / step).astype(int) + 1
    heights = _terrain(streams("terrain"), cfg, _distance_map(path_xy, lo, (ny, nx), step), terrain, trail, bank_m)
    steps.update()

    splat_shape = tuple(int(np.ceil((hi - lo)[k] / cfg.splat_texel_m)) + 1 for k in (1, 0))
    splat = _splat(streams("splat"), cfg, path_xy, lo, splat_shape, surface, trail.half_width_m)
    texture_rngs = [streams(f"texture:{k}", classic=k < 5) for k in range(LAYERS)]
    textures = material_textures(texture_rngs, cfg.texture_size, style)
    coords, coords_origin = _trail_coords(lo, hi, s, path_xy, heading)
    steps.update()

    world = World(
        int(seed),
        cfg,
        s,
        path_xy,
        heading,
        lo,
        heights,
        splat,
        lo.copy(),
        textures,
        [],
        {},
        style,
        trail,
        coords,
        coords_origin,
    )
    spots = _clutter_spots(lambda name: streams(name, classic=name.split(":")[1] in CLASSIC_KINDS), world)
    objects = _objects(lambda name: streams(name, classic=name.split(":")[1] in CLASSIC_KINDS), world, spots)
    lined, lined_counts = _lined_objects(lambda name: streams(name, classic=False), world)
    steps.update()

    world.chunks = _chunks(world, objects + lined)
    world.object_counts = {kind: len(kind_spots) for kind, kind_spots in spots.items()} | lined_counts
    steps.update()
    steps.close()
    return world


def _terrain_mesh(world: World, i0: int, i1: int, j0: int, j1: int) -> meshes.Mesh:
    """Nodes [j0..j1] x [i0..i1] of the heightfield as a mesh (faces along the exact-surface diagonal)."""
    step = world.config.grid_step_m
    h = world.terrain_heights_m
    dhdy, dhdx = np.gradient(h, step)
    jj, ii = np.mgrid[j0 : j1 + 1, i0 : i1 + 1]
    positions = np.stack(
        [world.terrain_origin_xy_m[0] + ii * step, world.terrain_origin_xy_m[1] + jj * step, h[jj, ii]], axis=-1
    ).reshape(-1, 3)
    normals = np.stack([-dhdx[jj, ii], -dhdy[jj, ii], np.ones(ii.shape)], axis=-1).reshape(-1, 3)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    w = i1 - i0 + 1
    a = (np.arange(j1 - j0)[:, None] * w + np.arange(i1 - i0)[None, :]).reshape(-1)
    b, c, d = a + 1, a + w, a + w + 1
    faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)]).astype(np.uint32)
    n = len(positions)
    return meshes.Mesh(positions, normals, np.ones((n, 3)), np.full(n, float(GROUND)), faces)


def _chunks(world: World, objects: list[tuple[np.ndarray, list[meshes.Mesh], bool]]) -> list[Chunk]:
    """Terrain tiles with the large objects on them, then tiles of small objects drawn only up to
    `detail_distance_m`; every chunk is one draw call at one level of detail."""
    step = world.config.grid_step_m
    ny, nx = world.terrain_heights_m.shape
    per = max(1, int(round(world.config.chunk_size_m / step)))
    base: dict[tuple[int, int], list[list[meshes.Mesh]]] = {}
    detail: dict[tuple[int, int], list[list[meshes.Mesh]]] = {}
    for j0 in range(0, ny - 1, per):
        for i0 in range(0, nx - 1, per):
            terrain = _terrain_mesh(world, i0, min(i0 + per, nx - 1), j0, min(j0 + per, ny - 1))
            base[(i0 // per, j0 // per)] = [[terrain] * meshes.LEVELS_OF_DETAIL]
    for xy, lods, small in objects:
        i, j = ((xy - world.terrain_origin_xy_m) / step).astype(int) // per
        key = (min(i, (nx - 2) // per), min(j, (ny - 2) // per))
        (detail if small else base).setdefault(key, []).append(lods)
    chunks = []
    for parts_by_key, max_distance in ((base, float("inf")), (detail, world.config.detail_distance_m)):
        for parts in parts_by_key.values():
            lod_meshes = [meshes.concat([p[level] for p in parts]) for level in range(meshes.LEVELS_OF_DETAIL)]
            lo = np.min([m.positions.min(0) for m in lod_meshes], axis=0)
            hi = np.max([m.positions.max(0) for m in lod_meshes], axis=0)
            chunks.append(Chunk(lod_meshes, lo, hi, max_distance))
    return chunks
