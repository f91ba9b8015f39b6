"""`dlvf bench features` end to end at a tiny size: every candidate timed, ratios, JSON, plot, training rows."""

import argparse
import json

import pytest

from dlvf_ros.bench import features


def test_bench_features_tiny_run_writes_table_json_and_plot(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    features.add_arguments(parser)
    args = parser.parse_args(
        [
            "--sizes",
            "64x128",
            "--m",
            "4",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--train-size",
            "64x96",
            "--train-repeats",
            "1",
            "--json",
            str(tmp_path / "bench.json"),
            "--plot",
            str(tmp_path / "bench.png"),
        ]
    )
    assert features.run(args) == 0  # the 384x512 floor is not measured at this size
    result = json.loads((tmp_path / "bench.json").read_text())
    candidates = [row["candidate"] for row in result["extraction"]]
    assert candidates == [
        features.REFERENCE,
        "eager (per-level sampling)",
        features.FLOOR_CANDIDATE,
        "ONNX Runtime",
        "OpenCV ORB (1000 kp)",
        "OpenCV SIFT (1000 kp)",
    ]
    assert all(row["median_ms"] > 0 and row["size"] == "64x128" for row in result["extraction"])
    assert result["extraction"][0]["ratio"] == 1.0 and result["floor"] is None
    assert [row["variant"].split(",")[0] for row in result["training"]] == ["training step"] * 2 + ["network only"]
    assert all(row["pairs_per_s"] > 0 for row in result["training"])
    # the synthetic pair's matches pass the ground-truth inlier gate: the pose loss is active
    assert result["training"][1]["pose_loss_active_fraction"] == 1.0
    assert all(row["steps"] == 2 for row in result["training"])
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "reference-style" in capsys.readouterr().out


def test_bad_size_is_refused():
    with pytest.raises(argparse.ArgumentTypeError, match="HEIGHTxWIDTH"):
        features.parse_size("384by512")
