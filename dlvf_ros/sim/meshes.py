"""Triangle meshes of the clutter (rocks, bushes, trees) in world coordinates (metres, z up)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dlvf_ros.geometry import transforms
from dlvf_ros.sim.textures import BARK, LEAVES, ROCK

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
    face_normals = np.cross(b - a, c - a)
    normals = np.zeros_like(positions)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
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
    faces = []
    for level in range(len(radii) - 1):
        for k in range(sides):
            a, b = level * sides + k, level * sides + (k + 1) % sides
            faces += [(a, b, b + sides), (a, b + sides, a + sides)]
    faces = np.array(faces, dtype=np.uint32)
    return Mesh(
        positions,
        vertex_normals(positions, faces),
        np.tile(np.asarray(tint, float), (len(positions), 1)),
        np.full(len(positions), float(material)),
        faces,
    )


def tree(rng: np.random.Generator, x: float, y: float, ground_z: float, height_m: float, detail: int = 2) -> Mesh:
    """A conifer (stacked jagged cones) or a broadleaf tree (trunk and a crown of blobs), `height_m` tall.

    `detail` (0, 1 or 2) sets the crown's sphere subdivision and the number of sides of the trunk and cones."""
    trunk_r = height_m * rng.uniform(0.018, 0.03)
    bark_tint = rng.uniform(0.8, 1.2) * np.ones(3)
    green = np.array([rng.uniform(0.6, 1.0), rng.uniform(0.8, 1.1), rng.uniform(0.5, 0.9)])
    if rng.random() < 0.45:  # conifer
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
                detail,
                0.2,
                green * rng.uniform(0.8, 1.1),
                LEAVES,
                0.6,
            )
        )
    return concat(parts)
