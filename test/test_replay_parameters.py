"""The parameter file `dlvf replay` writes for localizer_node: the package's file with the run's overrides."""

from pathlib import Path

import yaml

from dlvf_ros.replay.replay_cli import default_params_file, write_node_parameters


def test_overrides_set_top_level_and_nested_parameters_and_keep_the_rest(tmp_path):
    out = write_node_parameters(
        default_params_file(),
        tmp_path / "localizer_params.yaml",
        {"map_path": "/maps/teach", "use_sim_time": True, "localizer.initial_keyframe_id": 0},
    )
    base = yaml.safe_load(Path(default_params_file()).read_text())
    written = yaml.safe_load(out.read_text())
    (key,) = written
    parameters, base_parameters = written[key]["ros__parameters"], base[key]["ros__parameters"]
    assert parameters["map_path"] == "/maps/teach" and parameters["use_sim_time"] is True
    assert parameters["localizer"]["initial_keyframe_id"] == 0
    base_parameters["localizer"]["initial_keyframe_id"] = 0  # nothing else changed
    assert {k: v for k, v in parameters.items() if k not in ("map_path", "use_sim_time")} == {
        k: v for k, v in base_parameters.items() if k not in ("map_path", "use_sim_time")
    }
