"""Regenerate config/teach_node.yaml and config/localizer_node.yaml from the nodes' parameter tables.

    python -m dlvf_ros.ros.write_parameter_files

Run it after a default changes in a config dataclass; test/test_launch_files.py fails until the files match.
"""

from __future__ import annotations

from pathlib import Path

from dlvf_ros import fileio
from dlvf_ros.ros import localizer_node, teach_node
from dlvf_ros.ros.node_parameters import parameter_file_text

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
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
}


def main() -> int:
    for name, (module, sources) in NODES.items():
        header = (
            f"{name} parameters. `ros2 param describe /{name} NAME` gives each one's description and range.\n"
            f"Defaults from {sources};\n"
            "regenerate with `python -m dlvf_ros.ros.write_parameter_files`."
        )
        path = CONFIG_DIR / f"{name}.yaml"
        fileio.atomic_write_text(path, parameter_file_text(name, module.parameter_specs(), header))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
