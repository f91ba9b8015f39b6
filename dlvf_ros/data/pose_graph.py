"""A pose graph of vehicle-frame vertices `(run_id, pose_id)` joined by rigid transforms.

Each edge stores `T_other_this` (maps points in this vertex's vehicle frame to the other's, metres) and its inverse,
so the graph can be walked both ways. `transform(a, b)` composes `T_a_b` along the topologically shortest path
(breadth-first search; ties broken by insertion order, so results are deterministic).
"""

from __future__ import annotations

import itertools
from collections import deque

import numpy as np

from dlvf_ros.geometry import transforms

Vertex = tuple[int, int]


class UnknownVertexError(ValueError):
    """A vertex id that is not in the pose graph."""


class NoPathError(ValueError):
    """Two vertices that are not connected in the pose graph."""


class PoseGraph:
    """Undirected graph of vertices with a rigid transform on every edge."""

    def __init__(self, name: str = "pose graph") -> None:
        self.name = name
        # vertex -> {neighbour: T_neighbour_vertex}
        self._edges: dict[Vertex, dict[Vertex, np.ndarray]] = {}

    def add_vertex(self, vertex: Vertex) -> None:
        self._edges.setdefault(_as_vertex(vertex), {})

    def add_edge(self, this: Vertex, other: Vertex, T_other_this: np.ndarray) -> None:
        """Join `this` and `other`; `T_other_this` maps points in `this` to `other`."""
        this, other = _as_vertex(this), _as_vertex(other)
        if this == other:
            raise ValueError(f"{self.name}: a vertex cannot be joined to itself: {this}")
        T_other_this = np.asarray(T_other_this, dtype=np.float64)
        if not transforms.is_rigid(T_other_this, tol=1e-6):
            raise ValueError(f"{self.name}: edge {this} -> {other} is not a rigid 4x4 transform")
        self._edges.setdefault(this, {})[other] = T_other_this
        self._edges.setdefault(other, {})[this] = transforms.invert(T_other_this)

    def __contains__(self, vertex: object) -> bool:
        return vertex in self._edges

    def __len__(self) -> int:
        return len(self._edges)

    def runs(self) -> list[int]:
        return sorted({run for run, _ in self._edges})

    def vertices(self, run_id: int | None = None) -> list[Vertex]:
        """All vertices sorted by (run_id, pose_id), or those of one run."""
        return sorted(v for v in self._edges if run_id is None or v[0] == run_id)

    def edges_of(self, vertex: Vertex) -> dict[Vertex, np.ndarray]:
        """{neighbour: T_neighbour_vertex} of one vertex (a copy)."""
        return dict(self._edges[self._check(vertex)])

    def path(self, vertex_a: Vertex, vertex_b: Vertex) -> list[Vertex]:
        """Topologically shortest path [a, ..., b]; raises NoPathError if they are not connected."""
        a, b = self._check(vertex_a), self._check(vertex_b)
        previous: dict[Vertex, Vertex | None] = {a: None}
        queue = deque([a])
        while queue and b not in previous:
            vertex = queue.popleft()
            for neighbour in self._edges[vertex]:
                if neighbour not in previous:
                    previous[neighbour] = vertex
                    queue.append(neighbour)
        if b not in previous:
            raise NoPathError(f"{self.name}: no path between vertices {a} and {b} (different components)")
        path = [b]
        while path[-1] != a:
            step = previous[path[-1]]
            assert step is not None  # only `a` has no predecessor
            path.append(step)
        return path[::-1]

    def transform(self, vertex_a: Vertex, vertex_b: Vertex) -> np.ndarray:
        """`T_a_b`: maps points in vertex b's vehicle frame to vertex a's, composed along the shortest path."""
        path = self.path(vertex_a, vertex_b)
        T_a_b = np.eye(4)
        for nearer, farther in itertools.pairwise(path):
            T_a_b = T_a_b @ self._edges[farther][nearer]
        return T_a_b

    def topological_distance(self, vertex_a: Vertex, vertex_b: Vertex) -> int:
        """Number of edges on the shortest path between two vertices."""
        return len(self.path(vertex_a, vertex_b)) - 1

    def neighbours(self, vertex: Vertex, max_edges: int) -> dict[Vertex, int]:
        """{vertex: edge count} of every other vertex within `max_edges` edges, in breadth-first order."""
        if max_edges < 0:
            raise ValueError(f"{self.name}: max_edges must be >= 0, got {max_edges}")
        start = self._check(vertex)
        distance = {start: 0}
        queue = deque([start])
        while queue:
            current = queue.popleft()
            if distance[current] == max_edges:
                continue
            for neighbour in self._edges[current]:
                if neighbour not in distance:
                    distance[neighbour] = distance[current] + 1
                    queue.append(neighbour)
        del distance[start]
        return distance

    def _check(self, vertex: Vertex) -> Vertex:
        vertex = _as_vertex(vertex)
        if vertex not in self._edges:
            runs = self.runs()
            raise UnknownVertexError(
                f"{self.name}: vertex {vertex} (run_id, pose_id) is not in the graph; it has runs {runs} "
                f"and {len(self._edges)} vertices"
            )
        return vertex


def _as_vertex(vertex) -> Vertex:
    try:
        run_id, pose_id = vertex
        return int(run_id), int(pose_id)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a vertex is a (run_id, pose_id) pair of integers, got {vertex!r}") from exc
