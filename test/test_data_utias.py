"""UTIAS layout: writer -> reader round trip, pose-graph composition against ground truth, malformed files."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from run_frames import Frame

from dlvf_ros.data.utias import NoPathError, UnknownVertexError, UtiasDataset, UtiasFormatError, UtiasWriter
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig

RIG = StereoRig().scaled(64, 48)


def path_pose(s_m: float, lateral_m: float = 0.0, dyaw: float = 0.0) -> np.ndarray:
    """Vehicle pose on a gentle S-curve at arc-ish parameter s, offset sideways, with a small roll/pitch."""
    x, y = s_m, 2.0 * np.sin(0.15 * s_m)
    yaw = np.arctan2(0.3 * np.cos(0.15 * s_m), 1.0)
    x, y = x - np.sin(yaw) * lateral_m, y + np.cos(yaw) * lateral_m
    return transforms.from_xyz_rpy(x, y, 0.1 * np.sin(s_m), 0.01 * s_m % 0.05, 0.02, yaw + dyaw)


def make_frames(run_id: int, n: int, spacing_m: float, lateral_m: float, rng) -> list[Frame]:
    frames = []
    for i in range(n):
        left = rng.integers(0, 256, (RIG.height, RIG.width, 3), dtype=np.uint8)
        right = rng.integers(0, 256, (RIG.height, RIG.width, 3), dtype=np.uint8)
        T = path_pose(i * spacing_m + 0.1 * run_id, lateral_m * np.sin(0.3 * i + run_id), 0.03 * run_id)
        frames.append(Frame(i, 1_000_000_000 * run_id + 100_000_000 * i + 7, left, right, T))
    return frames


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("utias")
    rng = np.random.default_rng(3)
    writer = UtiasWriter(root, RIG)
    runs = {
        0: (make_frames(0, 12, 0.5, 0.0, rng), {"lighting": "noon", "hour": 12.0, "seed": 5}),
        1: (make_frames(1, 10, 0.6, 0.5, rng), {"lighting": "night", "hour": 23.5, "seed": 5, "note": "x"}),
        2: (make_frames(2, 14, 0.42, 0.7, rng), {"lighting": "dusk", "hour": 19.0, "seed": 5}),
    }
    for run_id, (frames, info) in runs.items():
        with writer.add_run(run_id, info) as run:
            for frame in frames:
                run.add_frame(frame)
    return root, runs


def test_round_trip(written):
    root, runs = written
    data = UtiasDataset(root)
    assert data.rig.matches(RIG, tol=1e-12) and data.rig_source.endswith("calibration.yaml")
    assert data.run_ids == [0, 1, 2] and data.repeat_run_ids == [1, 2]
    for run_id, (frames, info) in runs.items():
        assert data.pose_ids(run_id) == [f.pose_id for f in frames]
        read_info = data.run_info(run_id)
        assert (read_info.lighting, read_info.hour, read_info.seed) == (info["lighting"], info["hour"], info["seed"])
        assert data.stamps_ns(run_id) == {f.pose_id: f.stamp_ns for f in frames}
        for frame in frames[::4]:
            left, right = data.load_stereo((run_id, frame.pose_id))
            assert left.dtype == np.uint8 and np.array_equal(left, frame.left) and np.array_equal(right, frame.right)
            assert np.array_equal(data.T_world_vehicle((run_id, frame.pose_id)), frame.T_world_vehicle)
    assert data.run_info(1).extra == {"note": "x"}
    assert len(data.vertices()) == 12 + 10 + 14


def test_composed_transforms_equal_ground_truth(written):
    data = UtiasDataset(written[0])
    vertices = data.vertices()
    rng = np.random.default_rng(0)
    for i, j in rng.integers(0, len(vertices), (60, 2)):
        a, b = vertices[i], vertices[j]
        T_gt = transforms.invert(data.T_world_vehicle(a)) @ data.T_world_vehicle(b)
        np.testing.assert_allclose(data.transform(a, b), T_gt, atol=1e-9)


def test_composition_is_consistent_along_the_graph(written):
    data = UtiasDataset(written[0])
    triples = [((1, 3), (0, 5), (2, 7)), ((1, 0), (2, 13), (1, 9)), ((0, 0), (1, 9), (0, 11)), ((2, 2), (2, 9), (1, 4))]
    for a, b, c in triples:
        np.testing.assert_allclose(data.transform(a, b) @ data.transform(b, c), data.transform(a, c), atol=1e-9)
        np.testing.assert_allclose(data.transform(a, c) @ data.transform(c, a), np.eye(4), atol=1e-12)
    np.testing.assert_array_equal(data.transform((1, 2), (1, 2)), np.eye(4))


def test_spatial_links_go_to_the_metrically_closest_teach_vertex(written):
    data = UtiasDataset(written[0])
    teach = data.poses_world(0)
    teach_xyz = np.stack([teach[p][:3, 3] for p in sorted(teach)])
    for run_id in (1, 2):
        for pose_id in data.pose_ids(run_id):
            (linked,) = list(data.neighbours((run_id, pose_id), 1))
            position = data.T_world_vehicle((run_id, pose_id))[:3, 3]
            assert linked == (0, int(np.argmin(np.linalg.norm(teach_xyz - position, axis=1))))


def test_topological_distance_and_neighbours(written):
    data = UtiasDataset(written[0])
    (teach_vertex,) = data.neighbours((1, 4), 1)
    assert data.topological_distance((1, 4), teach_vertex) == 1
    assert data.topological_distance((0, 0), (0, 11)) == 11
    near = data.neighbours((1, 4), 4)
    assert all(1 <= d <= 4 for d in near.values()) and (1, 4) not in near
    for vertex, distance in near.items():
        assert data.topological_distance((1, 4), vertex) == distance
    far = [v for v in data.vertices() if v != (1, 4) and v not in near]
    assert far and all(data.topological_distance((1, 4), v) > 4 for v in far)
    # repeat vertices of other runs linked to the same teach vertex are 2 edges away
    same_place = [v for v in data.vertices(2) if teach_vertex in data.neighbours(v, 1)]
    assert all(near[v] == 2 for v in same_place)


def test_closest_vertex_matches_ground_truth(written):
    data = UtiasDataset(written[0])
    for pose_id in (0, 5, 9):
        best, T = data.closest_vertex((1, pose_id), 2)
        position = data.T_world_vehicle((1, pose_id))[:3, 3]
        others = data.poses_world(2)
        gt_best = min(others, key=lambda p: np.linalg.norm(others[p][:3, 3] - position))
        assert best == (2, gt_best)
        np.testing.assert_allclose(T, data.transform((1, pose_id), best), atol=1e-12)


def test_unknown_and_disconnected_vertices(tmp_path, written):
    data = UtiasDataset(written[0])
    with pytest.raises(UnknownVertexError, match=r"\(7, 0\)"):
        data.transform((7, 0), (0, 0))
    # a repeat run linked to a teach vertex that does not exist: its own component
    run = tmp_path / "run_000000"
    run.mkdir()
    identity = ",".join(str(x) for x in np.eye(4).reshape(-1))
    (run / "transforms_temporal.txt").write_text(f"0,0,0,1,{identity}\n")
    (tmp_path / "run_000001").mkdir()
    (tmp_path / "run_000001" / "transforms_spatial.txt").write_text(f"1,0,0,50,{identity}\n")
    with pytest.raises(NoPathError, match="no path"):
        UtiasDataset(tmp_path).transform((1, 0), (0, 0))


def _write_real_like_dataset(root, rows_teach: list[str], rows_repeat: list[str] | None = None):
    """Layout of the real UTIAS dataset: transforms and images only, no calibration.yaml, times or ground truth."""
    (root / "run_000000").mkdir(parents=True, exist_ok=True)
    (root / "run_000000" / "transforms_temporal.txt").write_text("\n".join(rows_teach) + "\n")
    if rows_repeat is not None:
        (root / "run_000001").mkdir(exist_ok=True)
        (root / "run_000001" / "transforms_spatial.txt").write_text("\n".join(rows_repeat) + "\n")


def _row(run, pose, other_run, other_pose, T, digits=6):
    return ",".join([str(run), str(pose), str(other_run), str(other_pose)] + [f"{x:.{digits}f}" for x in T.reshape(-1)])


def test_real_layout_without_calibration_and_with_a_loop_closure(tmp_path):
    step = transforms.from_xyz_rpy(1.0, 0.0, 0.0, yaw=2 * np.pi / 8)  # 8 steps around a closed octagon
    rows = [_row(0, i, 0, (i + 1) % 8, transforms.invert(step)) for i in range(8)]  # T_next_this
    _write_real_like_dataset(tmp_path, rows, [_row(1, 0, 0, 7, transforms.from_xyz_rpy(0.2, 0.1, 0.0))])
    data = UtiasDataset(tmp_path)
    assert data.rig.matches(StereoRig()) and "no calibration.yaml" in data.rig_source
    assert data.stamps_ns(0) is None and data.poses_world(1) is None and data.run_info(1).lighting is None
    # around the loop the short way: vertex 0 -> 7 is one (loop-closure) edge
    assert data.topological_distance((0, 0), (0, 7)) == 1
    np.testing.assert_allclose(data.transform((0, 0), (0, 7)), transforms.invert(step), atol=1e-5)
    np.testing.assert_allclose(data.transform((0, 7), (1, 0)), transforms.from_xyz_rpy(0.2, 0.1, 0.0), atol=1e-5)
    custom = StereoRig(baseline=0.239946)
    assert UtiasDataset(tmp_path, rig=custom).rig is custom


def test_image_size_must_match_the_rig(tmp_path, written):
    data = UtiasDataset(written[0])
    with pytest.raises(ValueError, match="does not match"):
        UtiasDataset(written[0], rig=StereoRig())
    with pytest.raises(FileNotFoundError, match="000099.png"):
        data.load_image((0, 99))
    other = UtiasDataset(written[0])
    other.rig = StereoRig()
    with pytest.raises(UtiasFormatError, match="64x48 but the rig"):
        other.load_image((0, 0))


@pytest.mark.parametrize(
    "mutate, line, column, message",
    [
        (lambda r: r[:-2], 2, 19, "expected 20 comma-separated columns"),
        (lambda r: r[:5] + ["abc"] + r[6:], 2, 6, "expected a number"),
        (lambda r: ["0", "1.5"] + r[2:], 2, 2, "expected an integer id"),
        (lambda r: r[:4] + ["2.0"] + r[5:], 2, 5, "not a rigid transform"),
        (lambda r: r[:19] + ["0.5"], 2, 5, "not a rigid transform"),
        (lambda r: ["3"] + r[1:], 2, 1, "belongs to run 3"),
        (lambda r: r[:1] + ["0"] + r[2:], 2, 2, "repeats the row on line 1"),
        (lambda r: r[:4] + ["nan"] + r[5:], 2, 5, "finite number"),
    ],
)
def test_malformed_transforms_name_file_line_and_column(tmp_path, mutate, line, column, message):
    good = [_row(0, i, 0, i + 1, transforms.from_xyz_rpy(-1.0, 0.0, 0.0)) for i in range(3)]
    bad_fields = mutate(good[1].split(","))
    _write_real_like_dataset(tmp_path, [good[0], ",".join(bad_fields), good[2]])
    with pytest.raises(UtiasFormatError) as info:
        UtiasDataset(tmp_path)
    error = info.value
    assert (error.line, error.column) == (line, column) and message in str(error)
    assert "transforms_temporal.txt" in str(error) and f"line {line}, column {column}" in str(error)


def test_malformed_metadata_files(tmp_path, written):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(written[0], root)
    (root / "run_000001" / "times.txt").write_text("0,5\n1,x\n")
    (root / "run_000001" / "run_info.yaml").write_text("lighting: [night\nhour: 3\n")
    (root / "run_000002" / "poses_world.txt").write_text("0," + ",".join(["1"] * 16) + "\n")
    data = UtiasDataset(root)
    with pytest.raises(UtiasFormatError, match=r"times.txt, line 2, column 2: expected an integer id"):
        data.stamps_ns(1)
    with pytest.raises(UtiasFormatError, match=r"run_info.yaml, line \d+, column \d+: not valid YAML"):
        data.run_info(1)
    with pytest.raises(UtiasFormatError, match=r"poses_world.txt, line 1, column 2: .*not a rigid"):
        data.poses_world(2)
    (root / "run_000002" / "run_info.yaml").write_text("hour: noon\n")
    with pytest.raises(UtiasFormatError, match=r"run_info.yaml: 'hour' must be a number"):
        data.run_info(2)
    (root / "calibration.yaml").write_text("width: 64\nfocal: 3\n")
    with pytest.raises(UtiasFormatError, match=r"calibration.yaml: not a valid StereoRig calibration: .*focal"):
        UtiasDataset(root)


def test_writer_rejects_bad_input(tmp_path):
    writer = UtiasWriter(tmp_path, RIG)
    with pytest.raises(ValueError, match="write the teach run"):
        writer.add_run(1)
    with pytest.raises(ValueError, match="'hour' must be a number"):
        writer.add_run(0, {"hour": 30})
    run = writer.add_run(0, {"lighting": "noon"})
    frame = make_frames(0, 1, 0.5, 0.0, np.random.default_rng(0))[0]
    with pytest.raises(ValueError, match=r"left image is uint8 \(48, 32, 3\)"):
        run.add_frame(dataclasses.replace(frame, left=frame.left[:, :32]))
    run.add_frame(frame)
    with pytest.raises(ValueError, match="pose_id 0 was already added"):
        run.add_frame(frame)
    with pytest.raises(ValueError, match="stamp_ns must increase"):
        run.add_frame(dataclasses.replace(frame, pose_id=1, stamp_ns=0))
    with pytest.raises(ValueError, match="too few frames"):
        run.close()
    assert not (tmp_path / "run_000000" / "transforms_temporal.txt").exists()
    # nothing half-written is left behind by the atomic writes
    assert not list(itertools.chain(tmp_path.rglob("*.tmp")))
