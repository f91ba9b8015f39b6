"""Closed-loop scoring against ground truth: lateral and heading error from the taught path (whole run and
settled), progress, standstills and the tracker's safety stops, speed and time; the results table."""

import numpy as np
import pytest

from dlvf_ros.evaluation import closed_loop, evaluate, metrics
from dlvf_ros.geometry import transforms
from dlvf_ros.localization.path_tracking import TaughtPath

DT_NS = 50_000_000
SIMULATOR = {"frames": "60", "sim_time_s": "12.0", "wall_time_s": "24.0", "clock": "realtime"}


def straight_path(length_m: float = 10.0) -> TaughtPath:
    return TaughtPath(np.stack([transforms.from_xyz_rpy(x, 0.0, 0.0) for x in np.arange(0.0, length_m + 1e-9, 1.0)]))


def no_localization() -> evaluate.RunEvaluation:
    n = 3
    T = np.tile(np.eye(4), (n, 1, 1))
    return evaluate.score_frames(
        "run", "noon", n, np.arange(n), np.ones(n, bool), np.array(["LOCALIZED"] * n), np.full(n, 50),
        np.full(n, 10.0), T, T, metrics.SuccessCriteria(),
    )  # fmt: skip


def drive(samples):
    """(x, y, yaw) samples every 50 ms -> ground-truth stamps and poses."""
    T = np.stack([transforms.from_xyz_rpy(x, y, 0.0, yaw=yaw) for x, y, yaw in samples])
    return np.arange(len(samples), dtype=np.int64) * DT_NS, T


def test_errors_progress_stops_and_speed():
    path = straight_path()
    samples = [(0.0, 0.3, 0.0)] * 10  # waiting at the start: not a stop
    x = 0.0
    for _ in range(100):  # 5 s at 1 m/s, the offset decaying linearly over the first 3 m
        x += 0.05
        samples.append((x, max(0.3 * (1 - x / 3.0), 0.0) + (0.02 if x > 3.0 else 0.0), np.deg2rad(1.0)))
    samples += [(x, 0.02, np.deg2rad(1.0))] * 20  # a 1 s stop in the middle
    for _ in range(100):
        x += 0.05
        samples.append((x, 0.02, np.deg2rad(1.0)))
    stamps, T = drive(samples)
    modes = np.array(["waiting"] * 10 + ["tracking"] * 100 + ["stopped"] * 20 + ["tracking"] * 99 + ["finished"])
    trace = closed_loop.trace_on_path(path, stamps, T)
    result = closed_loop.score_run(path, trace, stamps, modes, no_localization(), 12.0, SIMULATOR)
    assert result["finished"] and result["completed_fraction"] == pytest.approx(1.0)
    assert result["lateral_m"]["max_abs"] == pytest.approx(0.3, abs=0.02)
    assert result["lateral_settled_m"]["max_abs"] == pytest.approx(0.02, abs=1e-6)
    assert result["heading_settled_deg"]["rmse"] == pytest.approx(1.0, abs=1e-6)
    assert result["stops"] == 1 and result["stopped_s"] == pytest.approx(1.0, abs=0.11)
    assert result["safety_stops"] == 1 and result["safety_stopped_s"] == pytest.approx(1.0, abs=1e-6)
    assert result["distance_m"] == pytest.approx(10.0, abs=0.05)
    assert result["sim_time_s"] == pytest.approx(11.0, abs=0.1)
    assert result["localization"]["success_rate"] == 1.0
    assert result["simulator"] == {"frames": 60, "sim_s_per_wall_s": 0.5, "clock": "realtime"}
    statuses = [
        {"name": "sim_node: run", "values": {"sim_time_s": "1"}},
        {"name": "sim_node: run", "values": SIMULATOR},
    ]
    assert closed_loop.simulator_status([{"name": "x: summary", "values": {}}, *statuses]) == SIMULATOR
    table = closed_loop.results_table({"noon": result})
    assert "noon" in table and "100.0%" in table


def test_a_run_that_never_finishes_reports_its_progress():
    path = straight_path()
    stamps, T = drive([(0.05 * k, 0.0, 0.0) for k in range(80)])  # 4 m of 10
    modes = np.array(["tracking"] * 80)
    trace = closed_loop.trace_on_path(path, stamps, T)
    result = closed_loop.score_run(path, trace, stamps, modes, no_localization(), 5.0, {})
    assert not result["finished"] and result["completed_fraction"] == pytest.approx(0.395, abs=0.01)
    assert result["stops"] == 0 and result["mean_speed_mps"] == pytest.approx(1.0, abs=0.02)


def test_intervals():
    stamps = np.arange(6) * 10
    assert closed_loop.intervals(np.array([0, 1, 1, 0, 1, 1], bool), stamps) == [(10, 30), (40, 50)]
    assert closed_loop.intervals(np.zeros(6, bool), stamps) == []
