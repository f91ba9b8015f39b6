"""Triangle meshes of the clutter in world coordinates (metres, z up): rocks (rounded, angular, slabs), bushes,
trees (conifer, pine, broadleaf), grass tufts, logs, stumps and man-made posts, fences, barrels and walls.

Every builder takes its own generator and a `detail` level (0 far .. 2 near), so one seed gives the same shape at
every level of detail."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.spatial import ConvexHull

from dlvf_ros.geometry import transforms
from dlvf_ros.sim.textures import BARK, BUILT, LEAVES, ROCK, SHRUB

VERTEX_FLOATS = 10  # position 3, normal 3, tint 3, material 1 (the shaders' vertex layout)
LEVELS_OF_DETAIL = 3  # detail 2 (near), 1, 0 (far): sphere subdivisions, and the sides of lathed shapes below
LATHE_SIDES = (5, 6, 8)
CONE_SIDES = (5, 7, 12)


@dataclass
class Mesh:
    """Indexed triangles: positions and normals (N, 3), tint (N, 3) linear-RGB multiplier, material (N,) texture
    layer, faces (M, 3) counter-clockwise seen from outside."""

    positions: np.ndarray
    normals: np.ndarray
    tint: np.ndarray
    material: np.ndarray
    faces: np.ndarray

    def vertex_data(self) -> np.ndarray:
        """(N, VERTEX_FLOATS) float32 interleaved vertex buffer."""
        return np.hstack([self.positions, self.normals, self.tint, self.material[:, None]]).astype(np.float32)


def concat(meshes: list[Mesh]) -> Mesh:
    """One mesh from many (face indices offset)."""
    offsets = np.cumsum([0] + [len(m.positions) for m in meshes[:-1]])
    return Mesh(
        np.concatenate([m.positions for m in meshes]),
        np.concatenate([m.normals for m in meshes]),
        np.concatenate([m.tint for m in meshes]),
        np.concatenate([m.material for m in meshes]),
        np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]).astype(np.uint32),
    )


def vertex_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals of an indexed mesh with counter-clockwise (outward) faces."""
    a, b, c = positions[faces[:, 0]], positions[faces[:, 1]], positions[faces[:, 2]]
    u, v = b - a, c - a
    face_normals = np.stack(
        [
            u[:, 1] * v[:, 2] - u[:, 2] * v[:, 1],
            u[:, 2] * v[:, 0] - u[:, 0] * v[:, 2],
            u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0],
        ],
        axis=1,
    )
    corners = faces.T.reshape(-1)  # every face's first corners, then the second, then the third
    weights = np.tile(face_normals, (3, 1))
    normals = np.stack(
        [np.bincount(corners, weights=weights[:, k], minlength=len(positions)) for k in range(3)], axis=1
    )
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


@lru_cache(maxsize=4)
def icosphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere (vertices (N, 3), outward faces (M, 3)) by subdividing an icosahedron."""
    t = (1.0 + 5.0**0.5) / 2.0
    verts = [
        (-1, t, 0),
        (1, t, 0),
        (-1, -t, 0),
        (1, -t, 0),
        (0, -1, t),
        (0, 1, t),
        (0, -1, -t),
        (0, 1, -t),
        (t, 0, -1),
        (t, 0, 1),
        (-t, 0, -1),
        (-t, 0, 1),
    ]
    faces = [
        (0, 11, 5),
        (0, 5, 1),
        (0, 1, 7),
        (0, 7, 10),
        (0, 10, 11),
        (1, 5, 9),
        (5, 11, 4),
        (11, 10, 2),
        (10, 7, 6),
        (7, 1, 8),
        (3, 9, 4),
        (3, 4, 2),
        (3, 2, 6),
        (3, 6, 8),
        (3, 8, 9),
        (4, 9, 5),
        (2, 4, 11),
        (6, 2, 10),
        (8, 6, 7),
        (9, 8, 1),
    ]
    vertices = [np.array(v, float) / np.linalg.norm(v) for v in verts]
    for _ in range(subdivisions):
        midpoint_cache: dict[tuple[int, int], int] = {}

        def midpoint(i: int, j: int) -> int:
            key = (min(i, j), max(i, j))
            if key not in midpoint_cache:
                m = vertices[i] + vertices[j]
                vertices.append(m / np.linalg.norm(m))
                midpoint_cache[key] = len(vertices) - 1
            return midpoint_cache[key]

        new_faces = []
        for a, b, c in faces:
            ab, bc, ca = midpoint(a, b), midpoint(b, c), midpoint(c, a)
            new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new_faces
    return np.array(vertices), np.array(faces, dtype=np.uint32)


def _lumpy(rng: np.random.Generator, directions: np.ndarray, roughness: float, waves: int = 6) -> np.ndarray:
    """Radial scale factors 1 + roughness * (sum of random plane waves over the unit directions)."""
    freqs = rng.normal(size=(waves, 3)) * rng.uniform(1.5, 4.5, size=(waves, 1))
    phases = rng.uniform(0, 2 * np.pi, size=waves)
    weights = rng.uniform(0.5, 1.0, size=waves)
    bumps = (np.sin(directions @ freqs.T + phases) * weights).sum(axis=1) / weights.sum()
    return 1.0 + roughness * bumps


def _blob(rng, centre, radii, yaw, subdivisions, roughness, tint, material, shade_bottom=0.0) -> Mesh:
    directions, faces = icosphere(subdivisions)
    local = directions * _lumpy(rng, directions, roughness)[:, None] * np.asarray(radii)
    R = transforms.rot_z(yaw)
    positions = local @ R.T + np.asarray(centre)
    # darker underneath (a cheap ambient-occlusion cue for bushes and canopies)
    shade = 1.0 - shade_bottom * np.clip(-directions[:, 2], 0.0, 1.0)
    tints = np.asarray(tint, float)[None, :] * shade[:, None]
    return Mesh(
        positions,
        vertex_normals(positions, faces),
        tints,
        np.full(len(positions), float(material)),
        faces.astype(np.uint32),
    )


def rock(rng: np.random.Generator, x: float, y: float, ground_z: float, size_m: float, detail: int = 2) -> Mesh:
    """A lumpy, flattened boulder of about `size_m` diameter, partly buried at ground height `ground_z`.

    `detail` (0, 1 or 2) is the sphere subdivision level: 20, 80 or 320 triangles."""
    radii = size_m / 2 * np.array([rng.uniform(0.8, 1.25), rng.uniform(0.7, 1.1), rng.uniform(0.45, 0.8)])
    centre = (x, y, ground_z + radii[2] * rng.uniform(0.0, 0.35))
    grey = rng.uniform(0.75, 1.15)
    tint = grey * np.array([1.0, rng.uniform(0.95, 1.02), rng.uniform(0.88, 1.0)])
    return _blob(rng, centre, radii, rng.uniform(0, 2 * np.pi), detail, 0.22, tint, ROCK, 0.3)


def bush(rng: np.random.Generator, x: float, y: float, ground_z: float, size_m: float, detail: int = 2) -> Mesh:
    """A cluster of 3-5 leafy blobs about `size_m` across (`detail`: sphere subdivision level)."""
    parts = []
    green = np.array([rng.uniform(0.7, 1.1), rng.uniform(0.85, 1.15), rng.uniform(0.6, 1.0)])
    for _ in range(rng.integers(3, 6)):
        r = size_m / 2 * rng.uniform(0.45, 0.75)
        offset = rng.normal(scale=size_m * 0.22, size=2)
        centre = (x + offset[0], y + offset[1], ground_z + r * rng.uniform(0.55, 0.95))
        parts.append(
            _blob(
                rng,
                centre,
                (r, r, r * rng.uniform(0.75, 1.0)),
                rng.uniform(0, 6.3),
                detail,
                0.25,
                green * rng.uniform(0.85, 1.1),
                LEAVES,
                0.55,
            )
        )
    return concat(parts)


def _lathe(radii: np.ndarray, heights: np.ndarray, sides: int, x: float, y: float, tint, material) -> Mesh:
    """Surface of revolution about the vertical through (x, y) from a profile of radii at heights (open ends)."""
    angles = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    positions = np.concatenate(
        [np.column_stack([x + r * ring[:, 0], y + r * ring[:, 1], np.full(sides, h)]) for r, h in zip(radii, heights)]
    )
    triangles = []
    for level in range(len(radii) - 1):
        for k in range(sides):
            a, b = level * sides + k, level * sides + (k + 1) % sides
            triangles += [(a, b, b + sides), (a, b + sides, a + sides)]
    faces = np.array(triangles, dtype=np.uint32)
    return Mesh(
        positions,
        vertex_normals(positions, faces),
        np.tile(np.asarray(tint, float), (len(positions), 1)),
        np.full(len(positions), float(material)),
        faces,
    )


def tree(rng: np.random.Generator, x: float, y: float, ground_z: float, height_m: float, detail: int = 2) -> Mesh:
    """Classic mix: a conifer (45 %) or a broadleaf tree, `height_m` tall."""
    trunk_r, bark_tint, green = _tree_basics(rng, height_m)
    if rng.random() < 0.45:
        return _conifer(rng, x, y, ground_z, height_m, detail, trunk_r, bark_tint, green)
    return _broadleaf(rng, x, y, ground_z, height_m, detail, trunk_r, bark_tint, green)


def conifer(rng: np.random.Generator, x: float, y: float, ground_z: float, height_m: float, detail: int = 2) -> Mesh:
    """A spruce-like conifer: stacked jagged cones on a trunk, `height_m` tall."""
    return _conifer(rng, x, y, ground_z, height_m, detail, *_tree_basics(rng, height_m))


def broadleaf(rng: np.random.Generator, x: float, y: float, ground_z: float, height_m: float, detail: int = 2) -> Mesh:
    """A broadleaf tree: a trunk and a crown of leafy blobs, `height_m` tall (crown blobs one subdivision coarser
    than the classic mix's: their foliage texture carries the detail)."""
    return _broadleaf(rng, x, y, ground_z, height_m, detail, *_tree_basics(rng, height_m), crown_detail=detail - 1)


def _tree_basics(rng: np.random.Generator, height_m: float) -> tuple[float, np.ndarray, np.ndarray]:
    trunk_r = height_m * rng.uniform(0.018, 0.03)
    bark_tint = rng.uniform(0.8, 1.2) * np.ones(3)
    green = np.array([rng.uniform(0.6, 1.0), rng.uniform(0.8, 1.1), rng.uniform(0.5, 0.9)])
    return trunk_r, bark_tint, green


def _conifer(rng, x, y, ground_z, height_m, detail, trunk_r, bark_tint, green) -> Mesh:
    """Stacked jagged cones (`detail`: the number of sides of the trunk and cones)."""
    trunk = _lathe(
        np.array([trunk_r * 1.3, trunk_r, trunk_r * 0.5]),
        ground_z + np.array([-0.3, 0.3, 0.9]) * height_m,
        LATHE_SIDES[detail],
        x,
        y,
        bark_tint,
        BARK,
    )
    parts = [trunk]
    tiers = int(rng.integers(3, 5))
    for tier in range(tiers):
        base = ground_z + height_m * (0.2 + 0.62 * tier / tiers)
        top = base + height_m * rng.uniform(0.3, 0.42)
        r = height_m * 0.24 * (1.0 - 0.6 * tier / tiers) * rng.uniform(0.85, 1.1)
        ring_r = np.array([r * 0.15, r, r * 0.55, 0.01])
        ring_h = np.array([base + 0.05 * height_m, base, base + 0.45 * (top - base), top])
        cone = _lathe(ring_r, ring_h, CONE_SIDES[detail], x, y, green * 0.75, LEAVES)
        # jagged silhouette
        d = cone.positions[:, :2] - (x, y)
        cone.positions[:, :2] = (x, y) + d * rng.uniform(0.8, 1.2, size=(len(d), 1))
        cone.normals = vertex_normals(cone.positions, cone.faces)
        parts.append(cone)
    return concat(parts)


def _broadleaf(rng, x, y, ground_z, height_m, detail, trunk_r, bark_tint, green, crown_detail=None) -> Mesh:
    """A trunk and a crown of 3-5 blobs (`detail`: the trunk's sides and the crown's sphere subdivision, unless
    `crown_detail` is given)."""
    trunk_top = ground_z + height_m * rng.uniform(0.45, 0.6)
    trunk = _lathe(
        np.array([trunk_r * 1.4, trunk_r, trunk_r * 0.7]),
        np.array([ground_z - 0.3, ground_z + 0.4, trunk_top + 0.5]),
        LATHE_SIDES[detail],
        x,
        y,
        bark_tint,
        BARK,
    )
    parts = [trunk]
    crown_r = height_m * rng.uniform(0.22, 0.3)
    crown_z = ground_z + height_m - crown_r
    for _ in range(rng.integers(3, 6)):
        off = rng.normal(scale=crown_r * 0.4, size=3)
        r = crown_r * rng.uniform(0.55, 0.85)
        parts.append(
            _blob(
                rng,
                (x + off[0], y + off[1], crown_z + 0.5 * off[2]),
                (r, r, r * 0.85),
                rng.uniform(0, 6.3),
                detail if crown_detail is None else max(crown_detail, 0),
                0.2,
                green * rng.uniform(0.8, 1.1),
                LEAVES,
                0.6,
            )
        )
    return concat(parts)


def pine(rng: np.random.Generator, x: float, y: float, ground_z: float, height_m: float, detail: int = 2) -> Mesh:
    """A pine: a tall bare trunk, a few branch stubs and a high, flat, clumpy crown of needle blobs."""
    trunk_r, bark_tint, green = _tree_basics(rng, height_m)
    lean = rng.normal(scale=0.03, size=2) * height_m
    trunk = _lathe(
        np.array([trunk_r * 1.3, trunk_r, trunk_r * 0.75, trunk_r * 0.4]),
        ground_z + np.array([-0.3, 0.3, 0.6 * height_m, 0.95 * height_m]),
        LATHE_SIDES[detail],
        x,
        y,
        bark_tint * np.array([1.1, 0.95, 0.85]),
        BARK,
    )
    top = trunk.positions[:, 2] > ground_z + 0.5 * height_m
    trunk.positions[top, :2] += lean * ((trunk.positions[top, 2:3] - ground_z) / height_m)
    parts = [trunk]
    for _ in range(rng.integers(3, 6)):
        r = height_m * rng.uniform(0.09, 0.15)
        h = rng.uniform(0.68, 0.95)
        off = rng.normal(scale=height_m * 0.07, size=2) + lean * h
        parts.append(
            _blob(
                rng,
                (x + off[0], y + off[1], ground_z + h * height_m),
                (r * 1.2, r, r * 0.55),
                rng.uniform(0, 6.3),
                max(detail - 1, 0),
                0.35,
                green * rng.uniform(0.7, 0.95),
                LEAVES,
                0.5,
            )
        )
    return concat(parts)


def _faceted(points: np.ndarray, centre: np.ndarray, tint, material: int) -> Mesh:
    """Flat-shaded convex hull of `points` (every face has its own vertices and normal), faces outward."""
    hull = ConvexHull(points)
    faces = hull.simplices.copy()
    a, b, c = (points[faces[:, k]] for k in range(3))
    normals = np.cross(b - a, c - a)
    inward = np.einsum("ij,ij->i", normals, a - centre) < 0
    faces[inward] = faces[inward][:, ::-1]
    normals[inward] *= -1
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    positions = points[faces.reshape(-1)]
    n = len(positions)
    shade = 1.0 - 0.25 * np.clip(-normals[:, 2], 0.0, 1.0)
    tints = np.repeat(np.asarray(tint, float)[None, :] * shade[:, None], 3, axis=0)
    return Mesh(
        positions,
        np.repeat(normals, 3, axis=0),
        tints,
        np.full(n, float(material)),
        np.arange(n, dtype=np.uint32).reshape(-1, 3),
    )


def angular_rock(rng: np.random.Generator, x: float, y: float, ground_z: float, size_m: float, detail: int = 2) -> Mesh:
    """A faceted block: the flat-shaded hull of 8, 12 or 18 points (by `detail`) in a box of about `size_m`."""
    radii = size_m / 2 * np.array([rng.uniform(0.8, 1.2), rng.uniform(0.6, 1.0), rng.uniform(0.5, 0.9)])
    shape_rng = np.random.default_rng(rng.integers(2**63))
    points = shape_rng.uniform(-1.0, 1.0, size=(18, 3))
    points = points[np.argsort(-np.abs(points).max(axis=1))][: (8, 12, 18)[detail]]  # the corners first
    yaw = rng.uniform(0, 2 * np.pi)
    centre = np.array([x, y, ground_z + radii[2] * rng.uniform(0.1, 0.5)])
    points = (points * radii) @ transforms.rot_z(yaw).T + centre
    tint = rng.uniform(0.8, 1.15) * np.array([1.0, rng.uniform(0.94, 1.0), rng.uniform(0.88, 0.98)])
    return _faceted(points, centre, tint, ROCK)


def slab_rock(rng: np.random.Generator, x: float, y: float, ground_z: float, size_m: float, detail: int = 2) -> Mesh:
    """One to three stacked flat slabs about `size_m` across, tilted a little and partly buried."""
    parts = []
    layers = int(rng.integers(1, 4))
    z = ground_z - 0.05 * size_m
    shape_rng = np.random.default_rng(rng.integers(2**63))
    for layer in range(layers):
        scale = size_m / 2 * (1.0 - 0.25 * layer)
        radii = scale * np.array([rng.uniform(0.9, 1.2), rng.uniform(0.6, 0.9), rng.uniform(0.12, 0.22)])
        points = shape_rng.uniform(-1.0, 1.0, size=(14, 3)) * [1.0, 1.0, 0.6]
        points = points[np.argsort(-np.abs(points[:, :2]).max(axis=1))][: (8, 10, 14)[detail]]
        points = np.vstack([points, [[0, 0, 1.0], [0, 0, -1.0]]])
        tilt = transforms.rot_x(rng.normal(scale=0.08)) @ transforms.rot_y(rng.normal(scale=0.08))
        R = transforms.rot_z(rng.uniform(0, 2 * np.pi)) @ tilt
        offset = rng.normal(scale=0.15 * scale, size=2)
        centre = np.array([x + offset[0], y + offset[1], z + radii[2]])
        parts.append(_faceted((points * radii) @ R.T + centre, centre, rng.uniform(0.85, 1.1) * np.ones(3), ROCK))
        z += 1.6 * radii[2]
    return concat(parts)


def tuft(rng: np.random.Generator, x: float, y: float, ground_z: float, size_m: float, detail: int = 2) -> Mesh:
    """A grass tuft `size_m` tall: 3, 5 or 8 thin leaning blades (by `detail`), drawn from both sides."""
    blades = (3, 5, 8)[detail]
    angles = rng.uniform(0, 2 * np.pi, blades)
    lean = rng.uniform(0.15, 0.6, blades) * size_m
    height = size_m * rng.uniform(0.6, 1.0, blades)
    width = size_m * rng.uniform(0.05, 0.1, blades)
    tint = rng.uniform(0.8, 1.15) * np.ones(3)
    corners: list[np.ndarray] = []
    ups: list[np.ndarray] = []
    for a, reach, h, w in zip(angles, lean, height, width):
        out = np.array([np.cos(a), np.sin(a), 0.0])
        side = np.array([-np.sin(a), np.cos(a), 0.0])
        base = np.array([x, y, ground_z - 0.03]) + out * rng.uniform(0.0, 0.15) * size_m
        tri = [base - side * w, base + side * w, base + out * reach + np.array([0.0, 0.0, h])]
        up = np.array([0.0, 0.0, 1.0]) + 0.3 * out  # lit like foliage from either side
        corners += tri + tri[::-1]
        ups += [up] * 6
    positions, normals = np.array(corners), np.array(ups)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    n = len(positions)
    shade = 0.55 + 0.45 * np.tile([0.0, 0.0, 1.0], n // 3)  # darker at the base
    return Mesh(
        positions,
        normals,
        tint[None, :] * shade[:, None],
        np.full(n, float(SHRUB)),
        np.arange(n, dtype=np.uint32).reshape(-1, 3),
    )


def _cylinder(
    start: np.ndarray, end: np.ndarray, radius: float, sides: int, tint, material: int, cap_tint=None
) -> Mesh:
    """A closed cylinder from `start` to `end` (flat end caps tinted `cap_tint`, default `tint`)."""
    axis = end - start
    length = np.linalg.norm(axis)
    w = axis / length
    helper = np.array([0.0, 0.0, 1.0]) if abs(w[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(w, helper)
    u /= np.linalg.norm(u)
    v = np.cross(w, u)
    angles = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    ring = np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v  # outward unit vectors
    side_pos = np.concatenate([start + radius * ring, end + radius * ring])
    side_faces = []
    for k in range(sides):
        a, b = k, (k + 1) % sides
        side_faces += [(a, b + sides, b), (a, a + sides, b + sides)]
    side = Mesh(
        side_pos,
        np.concatenate([ring, ring]),
        np.tile(np.asarray(tint, float), (2 * sides, 1)),
        np.full(2 * sides, float(material)),
        np.array(side_faces, dtype=np.uint32),
    )
    side.faces = _outward(side.positions, side.faces, (start + end) / 2)
    caps = []
    for centre, normal in ((start, -w), (end, w)):
        pos = np.vstack([centre, centre + radius * ring])
        faces = np.array([(0, 1 + k, 1 + (k + 1) % sides) for k in range(sides)], dtype=np.uint32)
        caps.append(
            Mesh(
                pos,
                np.tile(normal, (sides + 1, 1)),
                np.tile(np.asarray(cap_tint if cap_tint is not None else tint, float), (sides + 1, 1)),
                np.full(sides + 1, float(material)),
                _outward(pos, faces, centre - normal),
            )
        )
    return concat([side, *caps])


def _outward(positions: np.ndarray, faces: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Faces reordered to be counter-clockwise seen from outside (away from the point `inside`)."""
    a, b, c = (positions[faces[:, k]] for k in range(3))
    inward = np.einsum("ij,ij->i", np.cross(b - a, c - a), (a + b + c) / 3 - inside) < 0
    faces = faces.copy()
    faces[inward] = faces[inward][:, ::-1]
    return faces


def box(centre, size, yaw: float, tint, material: int) -> Mesh:
    """A flat-shaded box of `size` (x, y, z extents before the yaw), centred at `centre`."""
    corners = np.array([[sx, sy, sz] for sx in (-0.5, 0.5) for sy in (-0.5, 0.5) for sz in (-0.5, 0.5)])
    points = (corners * np.asarray(size, float)) @ transforms.rot_z(yaw).T + np.asarray(centre, float)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    positions, normals = [], []
    centre = np.asarray(centre, float)
    for q in quads:
        quad = points[list(q)]
        n = np.cross(quad[1] - quad[0], quad[2] - quad[0])
        if np.dot(n, quad.mean(0) - centre) < 0:
            quad = quad[::-1]
            n = -n
        n /= np.linalg.norm(n)
        positions += [quad[0], quad[1], quad[2], quad[0], quad[2], quad[3]]
        normals += [n] * 6
    count = len(positions)
    return Mesh(
        np.array(positions),
        np.array(normals),
        np.tile(np.asarray(tint, float), (count, 1)),
        np.full(count, float(material)),
        np.arange(count, dtype=np.uint32).reshape(-1, 3),
    )


def log(rng: np.random.Generator, x: float, y: float, ground_z: float, length_m: float, detail: int = 2) -> Mesh:
    """A fallen log `length_m` long, half sunk into the ground at (x, y), bark sides and pale cut ends."""
    radius = rng.uniform(0.1, 0.28)
    yaw = rng.uniform(0, np.pi)
    d = 0.5 * length_m * np.array([np.cos(yaw), np.sin(yaw), rng.normal(scale=0.03)])
    centre = np.array([x, y, ground_z + radius * 0.45])
    tint = rng.uniform(0.6, 1.0) * np.array([1.0, 0.95, 0.9])
    return _cylinder(centre - d, centre + d, radius, LATHE_SIDES[detail] + 1, tint, BARK, cap_tint=(1.9, 1.6, 1.2))


def stump(rng: np.random.Generator, x: float, y: float, ground_z: float, size_m: float, detail: int = 2) -> Mesh:
    """A cut stump `size_m` across: a flared short trunk with a pale cut top."""
    radius = size_m / 2
    height = radius * rng.uniform(0.8, 2.2)
    sides = LATHE_SIDES[detail] + 2
    trunk = _lathe(
        radius * np.array([1.5, 1.1, 1.0]),
        ground_z + np.array([-0.2, 0.15 * height, height]),
        sides,
        x,
        y,
        rng.uniform(0.7, 1.1) * np.ones(3),
        BARK,
    )
    angles = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    top_z = ground_z + height
    pos = np.vstack(
        [
            [x, y, top_z + 0.02],
            np.column_stack([x + radius * np.cos(angles), y + radius * np.sin(angles), np.full(sides, top_z)]),
        ]
    )
    faces = np.array([(0, 1 + k, 1 + (k + 1) % sides) for k in range(sides)], dtype=np.uint32)
    top = Mesh(
        pos,
        np.tile([0.0, 0.0, 1.0], (sides + 1, 1)),
        np.tile([1.8, 1.5, 1.1], (sides + 1, 1)),
        np.full(sides + 1, float(BARK)),
        _outward(pos, faces, np.array([x, y, top_z - 1.0])),
    )
    return concat([trunk, top])


def post(rng: np.random.Generator, x: float, y: float, ground_z: float, height_m: float, detail: int = 2) -> Mesh:
    """A square wooden marker post `height_m` tall with a painted band near the top."""
    width = rng.uniform(0.1, 0.16)
    yaw = rng.uniform(0, np.pi / 2)
    band = [(0.9, 0.9, 0.9), (1.6, 0.35, 0.25), (1.5, 1.3, 0.3), (0.4, 0.7, 1.5)][rng.integers(4)]
    wood = box((x, y, ground_z + (height_m - 0.3) / 2), (width, width, height_m + 0.3), yaw, np.ones(3), BUILT)
    paint = box((x, y, ground_z + height_m - 0.12), (width + 0.01, width + 0.01, 0.12), yaw, band, BUILT)
    return concat([wood, paint])


def fence(rng: np.random.Generator, posts_xyz: np.ndarray, detail: int = 2) -> Mesh:
    """A post-and-rail fence through `posts_xyz` (k, 3) ground points: posts 1.1-1.3 m, two rails (one at detail 0)."""
    height = rng.uniform(1.0, 1.3)
    tint = rng.uniform(0.8, 1.1) * np.ones(3)
    parts = []
    for p in posts_xyz:
        parts.append(box((p[0], p[1], p[2] + (height - 0.3) / 2), (0.14, 0.14, height + 0.3), 0.0, tint, BUILT))
    rails = (0.85,) if detail == 0 else (0.45, 0.85)
    for a, b in itertools.pairwise(posts_xyz):
        span = b[:2] - a[:2]
        yaw = float(np.arctan2(span[1], span[0]))
        for level in rails:
            mid = (a + b) / 2 + np.array([0.0, 0.0, level * height])
            rail = box(mid, (np.linalg.norm(span) + 0.1, 0.05, 0.1), yaw, tint * 0.9, BUILT)
            rise = (b[2] - a[2]) / max(np.linalg.norm(span), 1e-6)  # follow the ground between the posts
            along = (rail.positions[:, :2] - mid[:2]) @ (span / np.linalg.norm(span))
            rail.positions[:, 2] += rise * along
            parts.append(rail)
    return concat(parts)


def barrel(rng: np.random.Generator, x: float, y: float, ground_z: float, size_m: float, detail: int = 2) -> Mesh:
    """A 200 l drum (about `size_m` tall): ribbed steel, a random paint colour, a lid."""
    colours = [(0.25, 0.4, 1.1), (1.2, 0.3, 0.2), (0.3, 0.75, 0.35), (1.25, 1.0, 0.2), (0.6, 0.45, 0.35)]
    tint = np.array(colours[rng.integers(len(colours))]) * rng.uniform(0.8, 1.1)
    r = 0.29 * size_m / 0.9
    profile_r = r * np.array([0.96, 1.0, 1.04, 1.0, 1.0, 1.04, 1.0, 0.96])
    profile_h = ground_z - 0.02 + size_m * np.array([0.0, 0.03, 0.33, 0.36, 0.64, 0.67, 0.97, 1.0])
    sides = (6, 9, 14)[detail]
    body = _lathe(profile_r, profile_h, sides, x, y, tint, BUILT)
    angles = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    top_z = profile_h[-1]
    ring = np.column_stack(
        [x + profile_r[-1] * np.cos(angles), y + profile_r[-1] * np.sin(angles), np.full(sides, top_z)]
    )
    pos = np.vstack([[x, y, top_z], ring])
    faces = np.array([(0, 1 + k, 1 + (k + 1) % sides) for k in range(sides)], dtype=np.uint32)
    lid = Mesh(
        pos,
        np.tile([0.0, 0.0, 1.0], (sides + 1, 1)),
        np.tile(tint * 0.8, (sides + 1, 1)),
        np.full(sides + 1, float(BUILT)),
        _outward(pos, faces, np.array([x, y, top_z - 1.0])),
    )
    return concat([body, lid])


def wall(
    rng: np.random.Generator, start_xyz: np.ndarray, end_xyz: np.ndarray, facing_xy: np.ndarray, detail: int = 2
) -> Mesh:
    """A building wall from `start_xyz` to `end_xyz` (ground points): brick, a concrete coping and dark windows on
    the side facing `facing_xy` (a unit vector)."""
    height = rng.uniform(2.6, 4.0)
    span = end_xyz[:2] - start_xyz[:2]
    length = float(np.linalg.norm(span))
    yaw = float(np.arctan2(span[1], span[0]))
    base_z = min(start_xyz[2], end_xyz[2]) - 0.3
    mid = (start_xyz[:2] + end_xyz[:2]) / 2
    thickness = 0.35
    parts = [
        box((mid[0], mid[1], base_z + height / 2), (length, thickness, height), yaw, np.ones(3), BUILT),
        box(
            (mid[0], mid[1], base_z + height + 0.06), (length + 0.1, thickness + 0.1, 0.12), yaw, (1.7, 1.8, 1.9), BUILT
        ),
    ]
    if detail > 0:
        along = span / length
        side = np.asarray(facing_xy, float)
        for k in range(int(rng.integers(1, max(2, int(length / 3.5)) + 1))):
            u = (k + 0.5) / max(1, int(length / 3.5)) - 0.5
            centre = mid + along * u * length * 0.8 + side * (thickness / 2 + 0.02)
            size = (rng.uniform(0.8, 1.4), 0.02, rng.uniform(0.9, 1.4))
            glass = rng.uniform(0.12, 0.25) * np.array([0.8, 0.9, 1.1])
            parts.append(box((centre[0], centre[1], base_z + 0.3 + height * 0.55), size, yaw, glass, BUILT))
    return concat(parts)
