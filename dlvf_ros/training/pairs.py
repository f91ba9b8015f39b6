"""Cross-run training pairs from one or more UTIAS-layout pose graphs, and run-disjoint splits.

A pair is a random source vertex and a target vertex within `max_edges` pose-graph edges that lies in a *different*
run of the same split and the same dataset root, with the ground truth `T_target_source` (vehicle frames, metres)
composed along the pose graph; with an anchor run, every target lies in that run (the teach run, which repeats are
localized against) and no source does. A split member is `(root_index, run_id)`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from dlvf_ros.data.utias import UtiasDataset
from dlvf_ros.training.config import SplitConfig

SPLITS = ("train", "validation", "test")
Member = tuple[int, int]  # (root_index, run_id)


@dataclass(frozen=True)
class PairSet:
    """N pairs: root_index (N,), source and target (N, 2) as (run_id, pose_id), T_target_source (N, 4, 4),
    edges (N,) pose-graph edges between them."""

    root_index: np.ndarray
    source: np.ndarray
    target: np.ndarray
    T_target_source: np.ndarray
    edges: np.ndarray

    def __len__(self) -> int:
        return len(self.root_index)

    def to_npz_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            root_index=self.root_index,
            source=self.source,
            target=self.target,
            T_target_source=self.T_target_source,
            edges=self.edges,
        )
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, path) -> PairSet:
        with np.load(path, allow_pickle=False) as data:
            missing = {"root_index", "source", "target", "T_target_source", "edges"} - set(data.files)
            if missing:
                raise ValueError(
                    f"{path}: not a pair file, missing arrays {sorted(missing)}; rebuild with `dlvf dataset`"
                )
            return cls(data["root_index"], data["source"], data["target"], data["T_target_source"], data["edges"])


def resolve_splits(datasets: list[UtiasDataset], config: SplitConfig, seed: int) -> dict[str, list[Member]]:
    """Members of each split, run-disjoint (by run id) or world-disjoint (by root index)."""
    if config.by == "world":
        universe = list(range(len(datasets)))
        what = "dataset roots (worlds)"
    else:
        universe = sorted({run for ds in datasets for run in ds.run_ids})
        what = "run ids"
    if config.automatic:
        chosen = _automatic_split(universe, config.fractions, seed, minimum=1 if config.by == "world" else 2, what=what)
    else:
        chosen = {"train": config.train, "validation": config.validation, "test": config.test}
        unknown = sorted(set(config.train + config.validation + config.test) - set(universe))
        if unknown:
            raise ValueError(f"split: {unknown} are not {what} of the data; available: {universe}")
    members: dict[str, list[Member]] = {}
    for name in SPLITS:
        if config.by == "world":
            members[name] = [(root, run) for root in sorted(chosen[name]) for run in datasets[root].run_ids]
        else:
            members[name] = [
                (root, run) for root, ds in enumerate(datasets) for run in sorted(chosen[name]) if run in ds.run_ids
            ]
    return members


def _automatic_split(
    universe: list[int], fractions: list[float], seed: int, minimum: int, what: str
) -> dict[str, list[int]]:
    """Seeded shuffle of `universe` cut by `fractions`; every non-empty fraction gets at least `minimum` items."""
    wanted = [minimum if f > 0 else 0 for f in fractions]
    if len(universe) < sum(wanted):
        raise ValueError(
            f"automatic split: {len(universe)} {what} ({universe}) cannot fill train/validation/test with at least "
            f"{minimum} each; add data or list the splits in the config (split.train, split.validation, split.test)"
        )
    order = [universe[i] for i in np.random.default_rng(seed).permutation(len(universe))]
    total = sum(fractions)
    counts = [max(w, int(round(f / total * len(universe)))) for f, w in zip(fractions, wanted)]
    counts[0] = len(universe) - counts[1] - counts[2]
    if counts[0] < wanted[0]:
        raise ValueError(f"automatic split: too few {what} ({len(universe)}) for the fractions {fractions}")
    return {
        "train": order[: counts[0]],
        "validation": order[counts[0] : counts[0] + counts[1]],
        "test": order[counts[0] + counts[1] :],
    }


def sample_pairs(
    datasets: list[UtiasDataset],
    members: list[Member],
    count: int,
    max_edges: int,
    rng: np.random.Generator,
    description: str = "pairs",
    anchor_run: int | None = None,
) -> PairSet:
    """`count` random cross-run pairs among `members`, each target in `anchor_run` if given; raises ValueError if
    the members admit no pair at all."""
    runs_of_root: dict[int, set[int]] = {}
    for root, run in members:
        runs_of_root.setdefault(root, set()).add(run)
    targets_of_root = {root: runs if anchor_run is None else runs & {anchor_run} for root, runs in runs_of_root.items()}
    candidates = [
        (root, vertex)
        for root, runs in sorted(runs_of_root.items())
        for run in sorted(runs - {anchor_run})
        for vertex in datasets[root].graph.vertices(run)
    ]
    empty = PairSet(
        np.zeros(0, np.int32),
        np.zeros((0, 2), np.int64),
        np.zeros((0, 2), np.int64),
        np.zeros((0, 4, 4)),
        np.zeros(0, np.int32),
    )
    if count == 0:
        return empty
    if not candidates:
        raise ValueError(f"{description}: the split {sorted(members)} has no pose-graph vertices")
    partners: dict[int, list[tuple[tuple[int, int], int]]] = {}  # candidate index -> [(target vertex, edges)]
    alive = np.ones(len(candidates), dtype=bool)
    rows: list[tuple] = []
    with tqdm(total=count, desc=description, unit="pair", leave=False) as progress:
        while len(rows) < count:
            if not alive.any():
                raise ValueError(
                    f"{description}: no vertex of the split {sorted(members)} has a vertex of another run of the split "
                    f"{'' if anchor_run is None else f'(the anchor run {anchor_run}) '}within {max_edges} pose-graph "
                    "edges; raise max_edges or put more runs in the split"
                )
            index = int(rng.choice(np.flatnonzero(alive)))
            if index not in partners:
                root, vertex = candidates[index]
                partners[index] = [
                    (other, edges)
                    for other, edges in datasets[root].neighbours(vertex, max_edges).items()
                    if other[0] != vertex[0] and other[0] in targets_of_root[root]
                ]
                if not partners[index]:
                    alive[index] = False
                    continue
            root, source = candidates[index]
            target, edges = partners[index][int(rng.integers(len(partners[index])))]
            rows.append((root, source, target, datasets[root].transform(target, source), edges))
            progress.update(1)
    return PairSet(
        np.array([r[0] for r in rows], dtype=np.int32),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.stack([r[3] for r in rows]),
        np.array([r[4] for r in rows], dtype=np.int32),
    )
