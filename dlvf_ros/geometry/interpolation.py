"""Poses between time-stamped samples (odometry at an image stamp, ground truth at a frame's stamp)."""

from __future__ import annotations

import numpy as np

from dlvf_ros.geometry import transforms


def interpolate_poses(
    stamps_ns: np.ndarray, T_a_b: np.ndarray, query_ns: np.ndarray, max_gap_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Poses at `query_ns` between the two neighbouring samples (`transforms.interpolate`: linear in translation,
    slerp in rotation).

    Returns ((M, 4, 4) poses, (M,) valid). A query is invalid outside the sampled span or when its neighbours are
    more than `max_gap_ns` apart (identity returned there).
    """
    stamps_ns = np.asarray(stamps_ns, dtype=np.int64)
    query_ns = np.asarray(query_ns, dtype=np.int64)
    T_a_b = transforms.check_stack("T_a_b", T_a_b)
    if len(stamps_ns) != len(T_a_b):
        raise ValueError(f"interpolate_poses: {len(stamps_ns)} stamps for {len(T_a_b)} poses")
    out = np.tile(np.eye(4), (len(query_ns), 1, 1))
    valid = np.zeros(len(query_ns), dtype=bool)
    if len(stamps_ns) == 0 or len(query_ns) == 0:
        return out, valid
    order = np.argsort(stamps_ns, kind="stable")
    stamps_ns, T_a_b = stamps_ns[order], T_a_b[order]
    keep = np.concatenate([[True], np.diff(stamps_ns) > 0])
    stamps_ns, T_a_b = stamps_ns[keep], T_a_b[keep]
    exact = np.searchsorted(stamps_ns, query_ns)
    hit = (exact < len(stamps_ns)) & (stamps_ns[np.minimum(exact, len(stamps_ns) - 1)] == query_ns)
    out[hit] = T_a_b[exact[hit]]
    valid[hit] = True
    if len(stamps_ns) < 2:
        return out, valid
    inside = ~hit & (query_ns > stamps_ns[0]) & (query_ns < stamps_ns[-1])
    upper = np.searchsorted(stamps_ns, query_ns[inside])
    close = (stamps_ns[upper] - stamps_ns[upper - 1]) <= max_gap_ns
    idx = np.flatnonzero(inside)[close]
    for i, hi in zip(idx, upper[close]):
        t0, t1 = stamps_ns[hi - 1], stamps_ns[hi]
        out[i] = transforms.interpolate(T_a_b[hi - 1], T_a_b[hi], float(query_ns[i] - t0) / float(t1 - t0))
    valid[idx] = True
    return out, valid
