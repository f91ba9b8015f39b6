"""Regenerate config/<node>.yaml of teach_node, localizer_node, sim_node and path_tracker_node from the nodes' config
dataclasses.

    python tools/write_parameter_files.py      (from the repository root, with dlvf_ros importable: `make venv`)

Run it after a setting is added or its default, description or range changes; test/test_launch_files.py fails until
the files match.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dlvf_ros import fileio
from dlvf_ros.ros import localizer_node, path_tracker_node, sim_node, teach_node
from dlvf_ros.ros.node_parameters import parameter_file_text

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
NODES = {
    "teach_node": (
        teach_node,
        "TeachNodeConfig (dlvf_ros/ros/teach_node.py) and\nTeachConfig (dlvf_ros/localization/teach.py)",
    ),
    "localizer_node": (
        localizer_node,
        "LocalizerNodeConfig (dlvf_ros/ros/localizer_node.py) and\n"
        "LocalizerConfig (dlvf_ros/localization/localizer.py)",
    ),
    "sim_node": (
        sim_node,
        "SimNodeConfig (dlvf_ros/ros/sim_node.py),\n"
        "LiveSimConfig (dlvf_ros/sim/live.py) and VehicleConfig (dlvf_ros/sim/vehicle.py)",
    ),
    "path_tracker_node": (
        path_tracker_node,
        "PathTrackerNodeConfig (dlvf_ros/ros/path_tracker_node.py) and\n"
        "PathTrackerConfig (dlvf_ros/control/path_tracker.py)",
    ),
}


def main() -> int:
    for name, (module, sources) in NODES.items():
        header = (
            f"{name} parameters. `ros2 param describe /{name} NAME` gives each one's description and range.\n"
            f"Defaults, descriptions and [ranges] from {sources};\n"
            "regenerate with `python tools/write_parameter_files.py`."
        )
        path = CONFIG_DIR / f"{name}.yaml"
        fileio.atomic_write_text(path, parameter_file_text(name, module.parameter_specs(), header))
        logging.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(main())
