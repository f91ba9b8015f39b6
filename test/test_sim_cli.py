"""`dlvf sim` writes a UTIAS-layout dataset (with the world's style in its metadata), bags and a contact sheet;
`dlvf bench render` prints and writes JSON."""

import dataclasses
import json

import numpy as np
import pytest
import yaml
from sim_worlds import TINY_WORLD

from dlvf_ros import cli
from dlvf_ros.config import to_dict
from dlvf_ros.sim import SimConfig
from dlvf_ros.sim.style import draw_style

SMALL_WORLD = dataclasses.replace(TINY_WORLD, path_length_m=4.0)


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "sim.yaml"
    config = SimConfig(world=SMALL_WORLD)
    config.render.shadow_map_size = 1024
    path.write_text(yaml.safe_dump(to_dict(config)))
    return path


@pytest.fixture(scope="module")
def dataset(small_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "ds"
    argv = [
        "sim",
        "--out",
        str(out),
        "--seed",
        "9",
        "--spacing",
        "1.0",
        "--size",
        "128x96",
        "--lightings",
        "noon,night",
        "--teach-lighting",
        "morning",
        "--config",
        str(small_config),
        "--bags",
        "--places",
        "3",
    ]
    assert cli.main(argv) == 0
    return out, argv


def test_sim_writes_the_utias_layout(dataset):
    from dlvf_ros.data.utias import UtiasDataset

    out, _ = dataset
    data = UtiasDataset(out)
    assert data.rig.width == 128 and data.rig.height == 96
    assert data.repeat_run_ids == [1, 2]
    assert len(data.pose_ids(0)) == 5  # 0..4 m every 1 m
    for run_id, lighting in ((0, "morning"), (1, "noon"), (2, "night")):
        info = data.run_info(run_id)
        assert info.lighting == lighting and info.seed == 9
        vertex = (run_id, data.pose_ids(run_id)[0])
        left, right = data.load_stereo(vertex)
        assert left.shape == (96, 128, 3) and right.dtype == np.uint8
        assert data.T_world_vehicle(vertex) is not None
    night_left = data.load_image((2, data.pose_ids(2)[0]))
    noon_left = data.load_image((1, data.pose_ids(1)[0]))
    assert night_left[:30].mean() < 0.5 * noon_left[:30].mean()  # night is dark far from the lights
    # the repeat runs link to the teach run with ground-truth transforms near the identity (same place)
    vertex = (1, data.pose_ids(1)[2])
    closest, T_teach_repeat = data.closest_vertex(vertex, 0)
    assert np.linalg.norm(T_teach_repeat[:3, 3]) < 1.0
    # the world's style (drawn from the seed) is recorded with the settings and in every run's info
    settings = yaml.safe_load((out / "sim_config.yaml").read_text())
    assert settings["style"] == draw_style(9).to_dict() and settings["world"]["style"] == "drawn"
    assert all(data.run_info(run_id).extra["style"] == settings["style"] for run_id in (0, 1, 2))


def test_sim_writes_bags_and_a_contact_sheet(dataset):
    import cv2

    from dlvf_ros.data.bags import read_stereo_bag

    out, _ = dataset
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] > sheet.shape[0]  # 3 columns (runs) x 3 rows (places)
    for run_id in (0, 1, 2):
        rig, frames = read_stereo_bag(out / "bags" / f"run_{run_id:06d}")
        frames = list(frames)
        assert rig.width == 128 and len(frames) >= 3
        assert all(f.T_odom_vehicle is not None and f.T_world_vehicle is not None for f in frames)
        np.testing.assert_allclose(frames[0].T_odom_vehicle, np.eye(4), atol=1e-6)


def test_sim_refuses_to_overwrite_and_bad_arguments(dataset, small_config, capsys):
    out, argv = dataset
    with pytest.raises(SystemExit, match="--overwrite"):
        cli.main(argv)
    with pytest.raises(SystemExit, match="unknown lighting"):
        cli.main(
            ["sim", "--out", str(out.parent / "other"), "--lightings", "noon,teatime", "--config", str(small_config)]
        )
    with pytest.raises(SystemExit, match="unknown ground 'lava'"):
        cli.main(["sim", "--out", str(out.parent / "other"), "--style", "ground=lava", "--config", str(small_config)])
    with pytest.raises(SystemExit, match="aspect ratio"):
        cli.main(["sim", "--out", str(out.parent / "other"), "--size", "100x100", "--config", str(small_config)])
    with pytest.raises(SystemExit):  # argparse: malformed size
        cli.main(["sim", "--out", str(out.parent / "other"), "--size", "big"])
    assert "512x384" in capsys.readouterr().err


def test_bench_render_prints_a_table_and_writes_json(small_config, tmp_path, capsys):
    path = tmp_path / "render.json"
    argv = [
        "bench",
        "render",
        "--sizes",
        "128x96,96x72",
        "--lightings",
        "noon,night",
        "--frames",
        "2",
        "--warmup",
        "1",
        "--config",
        str(small_config),
        "--json",
        str(path),
    ]
    assert cli.main(argv) == 0  # no floors at these sizes
    result = json.loads(path.read_text())
    assert [(r["size"], r["lighting"]) for r in result["rows"]] == [
        ("128x96", "noon"),
        ("128x96", "night"),
        ("96x72", "noon"),
        ("96x72", "night"),
    ]
    assert all(
        r["pairs_per_s"] > 0 and r["cpu_ms_per_pair"] > 0 and r["ratio_to_floor"] is None for r in result["rows"]
    )
    assert "pairs/s" in capsys.readouterr().out
