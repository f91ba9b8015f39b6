"""Evaluation: interpolation, errors in the vehicle frame, map-frame ground truth, records, summaries, TUM, plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlvf_ros.evaluation import evaluate, metrics, plots, records, report, tum
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.interpolation import interpolate_poses
from dlvf_ros.localization.frame_record import FrameRecord

S = 1_000_000_000


def test_interpolate_poses_linear_translation_and_slerp():
    stamps = np.array([0, 2 * S, 10 * S])
    T = np.stack(
        [
            transforms.from_xyz_rpy(0, 0, 0),
            transforms.from_xyz_rpy(2, 4, 0, yaw=np.pi / 2),
            transforms.from_xyz_rpy(3, 4, 0),
        ]
    )
    query = np.array([S, 2 * S, 5 * S, -1, 11 * S])
    out, valid = interpolate_poses(stamps, T, query, max_gap_ns=3 * S)
    assert valid.tolist() == [True, True, False, False, False]  # 2 s..10 s gap is over 3 s; outside the span
    np.testing.assert_allclose(out[0][:3, 3], [1, 2, 0])
    assert transforms.yaw_of(out[0]) == pytest.approx(np.pi / 4)
    np.testing.assert_allclose(out[1], T[1])


def test_pose_errors_are_in_the_true_vehicle_frame():
    T_gt = transforms.from_xyz_rpy(5, 1, 0, yaw=np.pi / 2)  # vehicle heading along map +y
    T_est = T_gt @ transforms.from_xyz_rpy(0.3, -0.1, 0.02, yaw=np.radians(2))
    errors = metrics.pose_errors(T_est[None], T_gt[None])
    assert errors["along_track_m"][0] == pytest.approx(0.3)
    assert errors["lateral_m"][0] == pytest.approx(-0.1)
    assert errors["vertical_m"][0] == pytest.approx(0.02)
    assert errors["heading_deg"][0] == pytest.approx(2.0)
    assert errors["translation_m"][0] == pytest.approx(np.hypot(0.3, 0.1))


def test_ground_truth_in_map_follows_the_nearest_keyframe_through_drift():
    T_world_kf = np.stack([transforms.from_xyz_rpy(x, 0, 0) for x in (0.0, 5.0, 10.0)])
    drift = [transforms.from_xyz_rpy(0.1 * i, 0.05 * i, 0, yaw=0.01 * i) for i in range(3)]
    T_map_kf = np.stack([d @ T for d, T in zip(drift, T_world_kf)])
    vehicle = np.stack([transforms.from_xyz_rpy(9.0, 0.4, 0, yaw=0.1), T_world_kf[1]])
    T_map_vehicle, index = metrics.ground_truth_in_map(vehicle, T_map_kf, T_world_kf)
    assert index.tolist() == [2, 1]
    np.testing.assert_allclose(T_map_vehicle[1], T_map_kf[1], atol=1e-12)
    relative_world = transforms.invert(T_world_kf[2]) @ vehicle[0]
    relative_map = transforms.invert(T_map_kf[2]) @ T_map_vehicle[0]
    np.testing.assert_allclose(relative_map, relative_world, atol=1e-12)


def test_bad_shapes_and_nan_are_rejected():
    with pytest.raises(ValueError, match="T_map_vehicle_est"):
        metrics.pose_errors(np.eye(4), np.eye(4)[None])
    with pytest.raises(ValueError, match="NaN"):
        metrics.pose_errors(np.full((1, 4, 4), np.nan), np.eye(4)[None])
    with pytest.raises(ValueError, match="max_heading_error_deg"):
        metrics.SuccessCriteria(max_heading_error_deg=0)
    with pytest.raises(ValueError, match="min_inliers"):
        metrics.SuccessCriteria(min_inliers=-1)


def test_errors_in_sigmas_use_the_planar_block_and_the_yaw_variance():
    T_gt = np.stack([transforms.from_xyz_rpy(1.0, 2.0, 0.0, yaw=0.5)] * 2)
    T_est = T_gt @ transforms.from_xyz_rpy(0.3, 0.0, 0.0, yaw=0.02)  # 0.3 m ahead of the vehicle, turned 0.02 rad
    covariance = np.stack([np.diag([0.01, 0.04, 1.0, 1.0, 1.0, 0.0001])] * 2)
    covariance[1, :2, :2] = np.diag([0.09, 0.09])
    heading_deg = metrics.pose_errors(T_est, T_gt)["heading_deg"]
    in_sigmas = metrics.errors_in_sigmas(T_est[:, :2, 3] - T_gt[:, :2, 3], heading_deg, covariance)
    dx, dy = 0.3 * np.cos(0.5), 0.3 * np.sin(0.5)  # the error in the map frame
    np.testing.assert_allclose(in_sigmas["position"], [np.hypot(dx / 0.1, dy / 0.2), 1.0], rtol=1e-9)
    np.testing.assert_allclose(in_sigmas["heading"], [2.0, 2.0], rtol=1e-9)
    certain = metrics.errors_in_sigmas(  # a covariance that claims no error at all
        T_est[:1, :2, 3] - T_gt[:1, :2, 3], heading_deg[:1], np.zeros((1, 6, 6))
    )
    assert certain["position"][0] == np.inf and certain["heading"][0] == np.inf


def test_success_criteria_presets_and_wrong_fixes():
    assert metrics.SuccessCriteria() == metrics.SUCCESS
    assert (metrics.SUCCESS.max_translation_error_m, metrics.SUCCESS.max_heading_error_deg) == (0.25, 2.0)
    assert (metrics.STRICT.max_translation_error_m, metrics.STRICT.max_heading_error_deg) == (0.10, 0.5)
    errors = {
        "translation_m": np.array([0.05, 0.2, 0.3, 0.05, np.nan, 0.05]),
        "heading_deg": np.array([0.1, -1.0, 0.0, 2.5, np.nan, 0.1]),
    }
    localized = np.array([True, True, True, True, False, True])
    inliers = np.array([50, 50, 50, 50, 0, 9])
    success = metrics.success_mask(errors, localized, inliers, metrics.SUCCESS)
    assert success.tolist() == [True, True, False, False, False, False]  # the last has 9 < 10 inliers
    assert metrics.success_mask(errors, localized, inliers, metrics.STRICT).tolist() == [True] + [False] * 5
    # a wrong fix: localized outside the error bounds, whatever its inliers
    assert metrics.wrong_fix_mask(errors, localized, metrics.SUCCESS).tolist() == [
        False,
        False,
        True,
        True,
        False,
        False,
    ]


def test_frame_record_round_trips_through_status_values():
    record = FrameRecord(123, "DEGRADED", 42, 87.25, 7, "")
    values = record.to_dict()
    assert all(isinstance(v, str) for v in values.values())
    assert FrameRecord.from_dict(values) == FrameRecord(123, "DEGRADED", 42, 87.2, 7, "")  # latency to 0.1 ms
    lost = FrameRecord.from_dict({**FrameRecord(5, "LOST").to_dict(), "fixed": "False"})
    assert lost.keyframe_id == -1 and lost.inliers == 0 and np.isnan(lost.latency_ms)
    with pytest.raises(ValueError, match="frame_stamp_ns"):
        FrameRecord.from_dict({"state": "LOST"})


def test_read_jsonl_tolerates_only_a_truncated_last_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3')
    assert records.read_jsonl(path) == [{"a": 1}, {"a": 2}]
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(records.ReplayRecordError, match="x.jsonl:2"):
        records.read_jsonl(path)


def _write_replay(directory, frames, legacy: bool):
    """frames: (stamp_ns, T_map_vehicle or None, inliers, latency_ms, state). `legacy`: as recorded before the
    per-frame results had their own topic (frame records among the /diagnostics statuses, no frame_status.jsonl)."""
    poses = records.JsonlWriter(directory / records.POSES_FILE)
    diagnostics = records.JsonlWriter(directory / records.DIAGNOSTICS_FILE)
    frame_status = diagnostics if legacy else records.JsonlWriter(directory / records.FRAME_STATUS_FILE)
    for stamp_ns, T, inliers, latency_ms, state in frames:
        if T is not None:
            poses.write(records.pose_record(stamp_ns, T, np.eye(6) * 0.01, stamp_ns + 5))
        frame_status.write(
            {
                "stamp_ns": stamp_ns,
                "name": "localizer_node: frame",
                "level": 0,
                "message": state,
                "hardware_id": "",
                "values": FrameRecord(stamp_ns, state, inliers, latency_ms).to_dict(),
            }
        )
    diagnostics.write(
        {
            "stamp_ns": 0,
            "name": "localizer_node: summary",
            "level": 1,
            "message": "no stereo pair",
            "hardware_id": "",
            "values": {},
        }
    )
    poses.close()
    diagnostics.close()
    frame_status.close()
    (directory / records.MANIFEST_FILE).write_text(json.dumps({"bag": "b", "map": "m"}))


@pytest.mark.parametrize("legacy", [False, True], ids=["frame_status", "legacy_diagnostics"])
def test_evaluate_replay_counts_success_and_statistics(tmp_path, legacy):
    # Ground truth: straight line along world x at 1 m/s, 10 Hz; the map frame is world shifted by 2 m in y.
    gt_stamps = np.arange(0, 21) * S // 10
    T_world_vehicle = np.stack([transforms.from_xyz_rpy(0.1 * i, 0, 0) for i in range(21)])
    T_world_kf = T_world_vehicle[::5]
    T_map_kf = np.stack([transforms.from_xyz_rpy(0, 2, 0) @ T for T in T_world_kf])
    truth = evaluate.GroundTruth(gt_stamps, T_world_vehicle, T_map_kf, T_world_kf)
    offsets = [0.0, 0.1, -0.2, 0.8, None, 0.05]  # along-track error per frame; None = not localized
    frames = []
    for k, offset in enumerate(offsets):
        stamp = int(gt_stamps[2 * k + 1])
        T_map_gt = transforms.from_xyz_rpy(0.1 * (2 * k + 1), 2, 0)
        T = None if offset is None else T_map_gt @ transforms.from_xyz_rpy(offset, 0, 0)
        frames.append((stamp, T, 100 + k, 50.0 + k, "localized" if T is not None else "lost"))
    _write_replay(tmp_path, frames, legacy)
    replay = records.read_replay(tmp_path)
    assert len(replay.other_statuses) == 1
    criteria = metrics.SuccessCriteria(max_translation_error_m=0.5, max_heading_error_deg=5.0)
    run = evaluate.evaluate_replay(replay, truth, n_images=12, criteria=criteria, lighting="noon")
    assert run.localized.tolist() == [True, True, True, True, False, True]
    assert run.success.tolist() == [True, True, True, False, False, True]
    assert run.strict_success.tolist() == [True, True, False, False, False, True]  # within 0.1 m
    assert run.wrong_fix.tolist() == [False, False, False, True, False, False]  # 0.8 m off
    np.testing.assert_allclose(run.errors["along_track_m"][[0, 1, 2, 3, 5]], [0, 0.1, -0.2, 0.8, 0.05], atol=1e-9)
    np.testing.assert_allclose(run.errors["lateral_m"][[0, 1, 2, 3, 5]], 0, atol=1e-9)
    # the published covariance is 0.01 * I: 0.1 m (x, y) and 0.1 rad (yaw) standard deviations
    np.testing.assert_allclose(run.errors_in_sigmas["position"][[0, 1, 2, 3, 5]], [0, 1, 2, 8, 0.5], atol=1e-9)
    np.testing.assert_allclose(run.errors_in_sigmas["heading"][[0, 1, 2, 3, 5]], 0, atol=1e-9)
    assert np.isnan(run.errors_in_sigmas["position"][4])
    summary = evaluate.summarize([run])
    assert summary["position_error_sigmas_p95"] == pytest.approx(np.percentile([0, 1, 2, 8, 0.5], 95))
    assert summary["success_rate"] == pytest.approx(4 / 6)
    assert summary["strict_success_rate"] == pytest.approx(3 / 6)
    assert summary["wrong_fix_rate"] == pytest.approx(1 / 5) and summary["wrong_fixes"] == 1
    table = report.summary_table({"noon": {report.NODES: summary, report.PER_FRAME: summary}})
    assert "20.0% (1/5)" in table and "per frame" in table and "66.7%" in table
    assert summary["processed_fraction"] == pytest.approx(0.5)
    assert summary["along_track_m"]["max_abs"] == pytest.approx(0.8)
    assert summary["inliers_median"] == pytest.approx(102.5)
    assert summary["latency_ms_median"] == pytest.approx(52.5)
    assert set(evaluate.summarize_by_lighting([run])) == {"noon"}

    stamps, T = run.stamp_ns[run.localized], run.T_map_vehicle_est[run.localized]
    tum.write_tum(tmp_path / "est.tum", stamps, T)
    stamps_back, T_back = tum.read_tum(tmp_path / "est.tum")
    np.testing.assert_array_equal(stamps_back, stamps)
    np.testing.assert_allclose(T_back, T, atol=1e-8)

    plots.plot_errors([run], tmp_path / "errors.png", 0.5, 5.0)
    plots.plot_inliers_latency([run], tmp_path / "inliers.png")
    plots.plot_per_lighting(evaluate.summarize_by_lighting([run]), tmp_path / "lighting.png")
    plots.plot_trajectories([run], tmp_path / "traj.png")
    for name in ("errors", "inliers", "lighting", "traj"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_replay_without_manifest_is_reported_as_interrupted(tmp_path):
    with pytest.raises(records.ReplayRecordError, match="did not finish"):
        records.read_replay(tmp_path)
