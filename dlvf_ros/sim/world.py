"""A seeded procedural outdoor world: heightfield terrain, a dirt two-track trail along a smooth path, rocks,
bushes and trees, and the textures that give them detail.

World frame: z up, metres; the taught path starts at the origin (arc length s = 0). The terrain is a regular grid
of `grid_step_m` split into triangles along the (i, j)-(i+1, j+1) diagonal; `World.terrain_height` evaluates that
exact triangulated surface, so back-projected depth can be checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from tqdm import tqdm

from dlvf_ros.sim import meshes
from dlvf_ros.sim.config import WorldConfig
from dlvf_ros.sim.noise import smoothstep, spectral_noise, to_unit
from dlvf_ros.sim.textures import GRASS, material_textures

PATH_STEP_M = 0.05  # resolution of the dense trail centreline


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
    splat: np.ndarray  # (Hs, Ws, 4) uint8 world-xy map: R dirt, G dry grass, B damp patches, A clumps
    splat_origin_xy_m: np.ndarray  # world xy of the splat texel [0, 0] centre
    textures: np.ndarray  # (layers, S, S, 4) uint8 material tiles (textures.py)
    chunks: list[Chunk]
    object_counts: dict[str, int]

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
        return cKDTree(self.path_xy_m).query(np.asarray(xy_m, np.float64).reshape(-1, 2))[0]


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


def _terrain(rng, cfg: WorldConfig, dist: np.ndarray) -> np.ndarray:
    """Rolling hills, flattened and slightly sunk along the trail (heights at the grid nodes, metres)."""
    step = cfg.grid_step_m
    hills = spectral_noise(rng, dist.shape, 3.6, 12.0 / step, 160.0 / step) * cfg.terrain_relief_m * 0.5
    bumps = spectral_noise(rng, dist.shape, 2.0, 2.0, 6.0 / step) * 0.06
    smooth = ndimage.gaussian_filter(hills, 8.0 / step)
    half = cfg.trail_width_m / 2
    flat = 1.0 - smoothstep(half + 0.3, half + 7.0, dist)
    heights = hills * (1 - flat) + smooth * flat + bumps * smoothstep(half, half + 1.5, dist)
    heights -= 0.05 * (1.0 - smoothstep(half - 0.4, half + 0.2, dist))
    return heights


def _splat(rng, cfg: WorldConfig, path_xy, origin, shape) -> np.ndarray:
    """World-space material map (uint8 RGBA): R dirt (two wheel tracks), G dry grass, B damp patches, A clumps
    (non-periodic brightness variation that breaks up the repeating material tiles)."""
    texel = cfg.splat_texel_m
    dist = _distance_map(path_xy, origin, shape, texel)
    half = cfg.trail_width_m / 2
    wobble = spectral_noise(rng, shape, 2.0, 2.0, 3.0 / texel) * 0.12
    edge = 1.0 - smoothstep(half - 0.3, half + 0.25, dist + wobble)
    centre_strip = 1.0 - smoothstep(0.18, 0.42, dist + 0.6 * wobble)
    bare = smoothstep(0.78, 0.9, to_unit(spectral_noise(rng, shape, 2.2, 4.0, 8.0 / texel)))
    dirt = np.clip(edge * (1.0 - 0.75 * centre_strip) + 0.8 * bare * (1 - edge), 0, 1)
    dry = to_unit(spectral_noise(rng, shape, 2.0, 3.0, 25.0 / texel))
    damp = to_unit(spectral_noise(rng, shape, 2.5, 4.0, 40.0 / texel))
    clumps = to_unit(spectral_noise(rng, shape, 1.5, 2.0, 2.0 / texel))
    splat = np.empty(shape + (4,), np.uint8)
    for k, channel in enumerate((dirt, dry, damp, clumps)):
        splat[..., k] = np.clip(channel * 255 + 0.5, 0, 255).astype(np.uint8)
    return splat


BUILDERS = {
    "rocks_near": meshes.rock,
    "rocks": meshes.rock,
    "bushes": meshes.bush,
    "trees": meshes.tree,
    "far_trees": meshes.tree,
}


def _place(rng, world: World, index: cKDTree, n: int, clearance, spread_m: float, size_fn):
    """Up to n (x, y, size) spots beside the trail, at least `clearance(size)` from the centreline (m), at an
    extra exponential distance of mean `spread_m`."""
    lo, hi = world.terrain_extent_m
    out = []
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


def _clutter_spots(rng, world: World) -> dict[str, list[tuple[float, float, float]]]:
    """Positions and sizes (m; height for trees) of each kind of clutter, denser near the trail."""
    cfg = world.config
    index = cKDTree(world.path_xy_m)
    per_100m = (world.path_s_m[-1] - world.path_s_m[0]) / 100.0

    def log_uniform(a, b):
        return lambda: float(np.exp(rng.uniform(np.log(a), np.log(b))))

    n_rocks = int(round(cfg.rocks_per_100m * per_100m))
    n_near = int(n_rocks * 0.45)
    # kind: (count, clearance(size), mean extra distance, size sampler)
    kinds = {
        "rocks_near": (n_near, lambda size: cfg.rock_clearance_m + size / 2, 2.5, log_uniform(0.08, 0.5)),
        "rocks": (n_rocks - n_near, lambda size: cfg.rock_clearance_m + 1.0 + size / 2, 14.0, log_uniform(0.25, 1.8)),
        "bushes": (
            int(round(cfg.bushes_per_100m * per_100m)),
            lambda size: cfg.plant_clearance_m + size / 2,
            9.0,
            log_uniform(0.6, 2.2),
        ),
        "trees": (
            int(round(cfg.trees_per_100m * per_100m)),
            lambda size: cfg.plant_clearance_m + 2.0,
            16.0,
            lambda: rng.uniform(4.0, 12.0),
        ),
        "far_trees": (
            int(round(cfg.far_trees_per_100m * per_100m)),
            lambda size: 25.0,
            25.0,
            lambda: rng.uniform(6.0, 14.0),
        ),
    }
    return {kind: _place(rng, world, index, *spec) for kind, spec in kinds.items()}


def generate_world(seed: int, config: WorldConfig | None = None, progress: bool = False) -> World:
    """Build the world of `seed` (deterministic: the same seed and config give the same world)."""
    cfg = config or WorldConfig()
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"generate_world: seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng([int(seed), 0x5EED])
    steps = tqdm(total=4, desc=f"world {seed}", disable=not progress, leave=False)

    s, path_xy, heading = _centreline(rng, cfg)
    step = cfg.grid_step_m
    lo = np.floor((path_xy.min(0) - cfg.margin_m) / step) * step
    hi = np.ceil((path_xy.max(0) + cfg.margin_m) / step) * step
    nx, ny = np.round((hi - lo) / step).astype(int) + 1
    heights = _terrain(rng, cfg, _distance_map(path_xy, lo, (ny, nx), step))
    steps.update()

    splat_shape = tuple(int(np.ceil((hi - lo)[k] / cfg.splat_texel_m)) + 1 for k in (1, 0))
    splat = _splat(rng, cfg, path_xy, lo, splat_shape)
    textures = material_textures(rng, cfg.texture_size)
    steps.update()

    world = World(int(seed), cfg, s, path_xy, heading, lo, heights, splat, lo.copy(), textures, [], {})
    spots = _clutter_spots(rng, world)
    objects: list[tuple[np.ndarray, list[meshes.Mesh], bool]] = []
    for kind, kind_spots in spots.items():
        for x, y, size in kind_spots:
            ground_z = float(world.terrain_height(x, y))
            object_seed = int(rng.integers(2**63))  # the same shape at every level of detail
            lods = [
                BUILDERS[kind](np.random.default_rng(object_seed), x, y, ground_z, size, detail)
                for detail in reversed(range(meshes.LEVELS_OF_DETAIL))
            ]
            small = kind == "bushes" or (kind.startswith("rocks") and size < 0.6)
            objects.append((np.array([x, y]), lods, small))
    steps.update()

    world.chunks = _chunks(world, objects)
    world.object_counts = {kind: len(kind_spots) for kind, kind_spots in spots.items()}
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
    return meshes.Mesh(positions, normals, np.ones((n, 3)), np.full(n, float(GRASS)), faces)


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
