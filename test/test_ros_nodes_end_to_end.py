"""End to end over real DDS on the package's own synthetic world: `dlvf sim --bags` renders a noon teach run and a
late-afternoon (17:00) repeat run (0.5 m-0.75 m aside, other speed, drifting odometry); teach_node builds the map
from the teach bag; `dlvf replay` plays the repeat bag with /clock through localizer_node; `dlvf evaluate` scores
it; its per-frame mode on the bag agrees frame by frame with `dlvf test` on the same world.

Backend: ORB, so the test needs no trained model (the shipped learned model is exercised by `dlvf demo` and
test_training_learns.py). Measured on this world: 88-92 % success within 0.5 m and 5 deg (the first frame is held
back until the second confirms it), 68 % within the default 0.25 m and 2 deg (ORB's lateral error reaches 0.2-0.4 m
near the path's end), median |lateral| 0.03-0.06 m. Thresholds: success rate >= 0.7 (within 0.5 m and 5 deg),
median |lateral| < 0.15 m, median |along-track| < 0.25 m, median |heading| < 1 deg, 95th percentile |lateral|
< 0.6 m. Medians, not RMSE: a start-up search could once pick a wrong keyframe (seen once: 1.8 m; now held back
until the next frame agrees), which the success rate already counts.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from dlvf_ros.evaluation import records, tum

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from ros_nodes_support import teach_through_node

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(300)]

REPEAT_LIGHTING = "17"  # 17:00, late afternoon: ORB keeps enough inliers for the start-up bar of the fix gate
REPEAT_LABEL = "hour 17"  # the simulator's lighting label of that run


def _dlvf(*args: str, timeout: float = 240.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dlvf_ros.cli", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    world = root / "world"
    result = _dlvf(
        "sim",
        "--out",
        str(world),
        "--seed",
        "7",
        "--lightings",
        REPEAT_LIGHTING,
        "--path-length",
        "12",
        "--spacing",
        "0.5",
        "--bags",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    teach_bag, bag = world / "bags" / "run_000000", world / "bags" / "run_000001"
    map_path = root / "map"
    teach_through_node(teach_bag, map_path, root, {"backend": "orb", "teach.keyframe_distance_m": 1.0})
    out = root / "recording"
    result = _dlvf(
        "replay", "--bag", str(bag), "--map", str(map_path), "--out", str(out), "--drain-s", "2", "--rate", "0.5"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    n_frames = len((world / "run_000001" / "times.txt").read_text().splitlines())
    return root, world, bag, map_path, out, n_frames


def test_teach_node_built_the_map_from_the_bag(recorded):
    from dlvf_ros.data.bags import read_stereo_bag
    from dlvf_ros.localization.map_store import MapStore

    _, world, _, map_path, _, _ = recorded
    store = MapStore.open(map_path)
    assert store.manifest["backend"] == "orb"
    assert 10 <= len(store) <= 14  # a 12 m path with a keyframe every 1 m
    _, frames = read_stereo_bag(world / "bags" / "run_000000")
    T_world_vehicle = {frame.stamp_ns: frame.T_world_vehicle for frame in frames}
    for entry in store.entries:
        keyframe = store.keyframe(entry.keyframe_id)
        np.testing.assert_allclose(keyframe.T_world_keyframe, T_world_vehicle[keyframe.stamp_ns], atol=1e-6)


def test_replay_records_the_node_outputs(recorded):
    _, _, bag, map_path, out, n_frames = recorded
    replay = records.read_replay(out)
    # the lighting label comes from the simulator's run_info.yaml beside the bag
    assert replay.manifest["bag_frames"] == n_frames and replay.manifest["lighting"] == REPEAT_LABEL
    assert replay.manifest["localizer_exit_code"] == 0 and replay.manifest["bag_player_exit_code"] == 0
    assert (out / "localizer_params.yaml").is_file()
    # per-frame results from their own topic; /diagnostics held only the node's health summaries
    assert (out / records.FRAME_STATUS_FILE).is_file() and replay.manifest["frame_results"] == len(
        replay.frames.stamp_ns
    )
    assert replay.other_statuses and {s["name"] for s in replay.other_statuses} == {"localizer_node: summary"}
    from dlvf_ros.data.bags import read_stereo_bag

    expected = {frame.stamp_ns for frame in read_stereo_bag(bag)[1]}
    assert set(replay.frames.stamp_ns.tolist()) <= expected
    # a loaded machine makes the node drop stale frames (by design); most must still be processed
    assert len(replay.frames.stamp_ns) >= n_frames // 2
    assert set(replay.pose_stamp_ns.tolist()) <= set(replay.frames.stamp_ns.tolist())
    # a pose is published for exactly the frames that matched a keyframe, and those are most frames
    fixed = replay.frames.stamp_ns[replay.frames.keyframe_id >= 0]
    assert set(replay.pose_stamp_ns.tolist()) == set(fixed.tolist())
    assert len(fixed) >= 0.7 * len(replay.frames.stamp_ns)
    assert not any(replay.frames.error), replay.frames.error


def test_evaluate_reports_errors_under_thresholds(recorded):
    root, _, bag, map_path, out, n_frames = recorded
    evaluation = root / "evaluation"
    bounds = ("--max-translation-error-m", "0.5", "--max-heading-error-deg", "5")  # what the thresholds are for
    result = _dlvf(
        "evaluate", "--replay", str(out), "--bag", str(bag), "--map", str(map_path), "--out", str(evaluation), *bounds
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "success" in result.stdout and REPEAT_LABEL in result.stdout
    summary = json.loads((evaluation / "summary.json").read_text())
    overall = summary["overall"]
    assert overall["images"] == n_frames
    assert overall["success_rate"] >= 0.7, overall
    assert overall["lateral_m"]["median_abs"] < 0.15 and overall["along_track_m"]["median_abs"] < 0.25, overall
    assert overall["heading_deg"]["median_abs"] < 1.0 and overall["lateral_m"]["p95_abs"] < 0.6, overall
    assert overall["inliers_median_localized"] >= 20, overall
    assert set(summary["by_lighting"]) == {REPEAT_LABEL}
    for name in ("errors", "inliers_latency", "per_lighting", "trajectories"):
        assert (evaluation / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    stamps, T_est = tum.read_tum(evaluation / "tum" / "recording_estimate.tum")
    _, T_gt = tum.read_tum(evaluation / "tum" / "recording_ground_truth.tum")
    assert len(stamps) == len(replay_poses(out)) and len(T_gt) >= len(stamps)
    assert (evaluation / "frames_recording.csv").read_text().count("\n") == overall["frames"] + 1


def replay_poses(out):
    return records.read_replay(out).pose_stamp_ns


def test_evaluate_names_bad_inputs(recorded, tmp_path):
    root, _, bag, map_path, out, _ = recorded
    result = _dlvf("evaluate", "--replay", str(tmp_path), "--bag", str(bag), "--out", str(tmp_path / "e"))
    assert result.returncode != 0 and "did not finish" in result.stderr
    result = _dlvf("evaluate", "--replay", str(out), "--bag", str(bag), "--bag", str(bag), "--out", str(tmp_path))
    assert result.returncode != 0 and "one --bag per --replay" in result.stderr


def test_per_frame_modes_of_dlvf_test_and_dlvf_evaluate_agree(recorded, tmp_path):
    """The same late-afternoon frames against the same noon frames: `dlvf test` (the world's UTIAS layout: images, pose
    graph) and `dlvf evaluate --per-frame` (the bag against a map with a keyframe at every teach frame) give the same
    success, strict success, wrong fixes and inliers for every frame."""
    import csv

    import yaml

    root, world, bag, _, out, n_frames = recorded
    # dense SGBM stereo, as `dlvf test` uses: `dlvf evaluate --per-frame` takes the map's stereo method
    (tmp_path / "teach.yaml").write_text(yaml.safe_dump({"keyframe_distance_m": 0.1, "stereo": {"method": "sgbm"}}))
    dense_map = tmp_path / "dense_map"
    result = _dlvf(
        "teach",
        "--bag",
        str(world / "bags" / "run_000000"),
        "--out",
        str(dense_map),
        "--backend",
        "orb",
        "--config",
        str(tmp_path / "teach.yaml"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    evaluation = tmp_path / "evaluation"
    result = _dlvf(
        "evaluate",
        "--replay",
        str(out),
        "--bag",
        str(bag),
        "--map",
        str(dense_map),
        "--out",
        str(evaluation),
        "--per-frame",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "per frame" in result.stdout and "nodes" in result.stdout
    # the localizer's SGBM, at any width
    (tmp_path / "test.yaml").write_text(yaml.safe_dump({"sgbm": {"num_disparities": 96}, "sgbm_width": None}))
    tested = tmp_path / "test"
    result = _dlvf(
        "test",
        "--data",
        str(world),
        "--backend",
        "orb",
        "--runs",
        "0",
        "1",
        "--map-run",
        "0",
        "--out",
        str(tested),
        "--config",
        str(tmp_path / "test.yaml"),
    )
    assert result.returncode == 0, result.stdout + result.stderr

    with open(evaluation / "frames_recording_per_frame.csv") as handle:
        by_evaluate = {int(row["stamp_ns"]): row for row in csv.DictReader(handle)}
    with open(tested / "frames.csv") as handle:
        by_test = {int(row["stamp_ns"]): row for row in csv.DictReader(handle)}
    assert len(by_test) == len(by_evaluate) == n_frames
    assert by_test.keys() == by_evaluate.keys()
    for stamp, row in by_test.items():
        other = by_evaluate[stamp]
        for key in ("localized", "success", "strict", "wrong_fix", "inliers"):
            assert row[key] == other[key], (stamp, key, row, other)
    per_frame = json.loads((evaluation / "summary.json").read_text())["per_frame"]["overall"]
    summary = json.loads((tested / "test_results.json").read_text())["summary"]
    for key in ("frames", "success_rate", "strict_success_rate", "wrong_fixes", "inliers_median"):
        assert summary[key] == per_frame[key], key
    assert summary["success_rate"] >= 0.3  # ORB at 17:00: a meaningful share of frames to agree on
