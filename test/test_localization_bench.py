"""`dlvf bench localize` at a tiny size: the table, the JSON report and the learned-model path."""

import argparse
import json

import pytest

from dlvf_ros.bench import localize


@pytest.mark.slow  # ~15 s: renders a small world
def test_bench_localize_small(tmp_path, capsys):
    import torch

    from dlvf_ros.features.export import export_feature_net
    from dlvf_ros.features.unet import FeatureNet

    torch.manual_seed(0)
    export_feature_net(FeatureNet(m=4), tmp_path / "tiny.pt", (96, 128))
    parser = argparse.ArgumentParser()
    localize.add_arguments(parser)
    args = parser.parse_args(
        [
            "--backends",
            "learned,orb",
            "--model",
            str(tmp_path / "tiny.pt"),
            "--width",
            "256",
            "--height",
            "192",
            "--frames",
            "2",
            "--warmup",
            "1",
            "--stereo",
            "sgbm_half_refined,sgbm",
            "--ransac-sampling",
            "uniform,weighted",
            "--json",
            str(tmp_path / "b.json"),
        ]
    )
    exit_code = localize.run(args)
    out = capsys.readouterr().out
    assert "x learned" in out and "x orb" in out and "x sgbm_half_refined" in out and "x uniform" in out
    assert "floor: learned (sgbm_half_refined, uniform)" in out
    report = json.loads((tmp_path / "b.json").read_text())
    # the floor verdict depends on the machine's load; the exit code must agree with it
    assert exit_code == (0 if report["floor_ok"] else 1)
    rows = {(r["backend"], r["stereo"], r["ransac_sampling"]): r for r in report["results"]}
    assert report["floor_ok"] == (rows[("learned", "sgbm_half_refined", "uniform")]["hz"] >= localize.FLOOR_HZ)
    assert report["width"] == 256 and str(tmp_path / "tiny.pt") in report["learned_model"]
    assert report["stereo_methods"] == ["sgbm_half_refined", "sgbm"]
    assert report["ransac_samplings"] == ["uniform", "weighted"]
    assert set(rows) == {
        (b, m, s) for b in ("learned", "orb") for m in ("sgbm_half_refined", "sgbm") for s in ("uniform", "weighted")
    }
    for (backend, stereo, sampling), row in rows.items():
        assert row["frames"] == 2 and row["median_ms"] > 0 and row["p90_ms"] >= row["median_ms"]
        assert row["hz"] == pytest.approx(1000 / row["median_ms"])
        assert set(row["stage_median_ms"]) == {"features", "stereo", "matching", "ransac"}
        learned = rows[("learned", stereo, sampling)]["median_ms"]
        orb = rows[("orb", stereo, sampling)]["median_ms"]
        first_stereo = rows[(backend, "sgbm_half_refined", sampling)]["median_ms"]
        first_sampling = rows[(backend, stereo, "uniform")]["median_ms"]
        assert row["ratio_to_learned"] == pytest.approx(row["median_ms"] / learned)
        assert row["ratio_to_orb"] == pytest.approx(row["median_ms"] / orb)
        assert row["ratio_to_sgbm_half_refined"] == pytest.approx(row["median_ms"] / first_stereo)
        assert row["ratio_to_uniform"] == pytest.approx(row["median_ms"] / first_sampling)
        # rendered frames: the error of the fixes against ground truth, when there are fixes
        assert (row["median_error_m"] is None) == (row["fixed"] == 0)


def test_bench_localize_argument_errors():
    parser = argparse.ArgumentParser()
    localize.add_arguments(parser)
    with pytest.raises(SystemExit, match="both --teach-bag and --repeat-bag"):
        localize.run(parser.parse_args(["--teach-bag", "x"]))
    with pytest.raises(SystemExit, match="--frames >= 1"):
        localize.run(parser.parse_args(["--frames", "0"]))
    with pytest.raises(SystemExit, match=r"unknown backend\(s\) \['surf'\]"):
        localize.run(parser.parse_args(["--backends", "orb,surf"]))
    with pytest.raises(SystemExit, match="--stereo takes"):
        localize.run(parser.parse_args(["--stereo", "sgbm,census"]))
    with pytest.raises(SystemExit, match=r"--ransac-sampling takes .*\['lo'\]"):
        localize.run(parser.parse_args(["--ransac-sampling", "uniform,lo"]))
