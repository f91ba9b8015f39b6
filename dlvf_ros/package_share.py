"""Where the package's share files are: config/*.yaml, launch/*.launch.py and the shipped model in models/.

An installed package (colcon, or `pip install .`, which both install `setup.py`'s data files) has them in
`PREFIX/share/dlvf_ros`, found through the ament index (`ament_index_python.get_package_share_directory` over
AMENT_PREFIX_PATH, then this interpreter's prefix, where pip puts the index marker). A source checkout (an editable
install, or the tree on PYTHONPATH) has them beside the `dlvf_ros/` package.
"""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "dlvf_ros"
INDEX_MARKER = Path("share") / "ament_index" / "resource_index" / "packages" / PACKAGE
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def package_share_directory() -> Path:
    """The share directory of the installed package, else the root of the source checkout this module is in.

    Raises FileNotFoundError naming the places searched when neither exists.
    """
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:  # a pip environment without the ROS 2 Python packages
        pass
    else:
        try:
            return Path(get_package_share_directory(PACKAGE, print_warning=False))
        except (PackageNotFoundError, OSError):  # not in the index, or AMENT_PREFIX_PATH unset
            pass
    if (Path(sys.prefix) / INDEX_MARKER).is_file():
        return Path(sys.prefix) / "share" / PACKAGE
    if (SOURCE_ROOT / "package.xml").is_file():
        return SOURCE_ROOT
    raise FileNotFoundError(
        f"the {PACKAGE} share directory (config/, launch/, models/) is neither in the ament index "
        f"(AMENT_PREFIX_PATH, {sys.prefix}) nor beside the source at {SOURCE_ROOT}; install the package "
        "(`colcon build` or `pip install .`) or run from a source checkout"
    )


def shipped_model_path() -> Path | None:
    """The exported model shipped in the share directory's models/, if there is exactly one `*.pt` there."""
    try:
        models = sorted((package_share_directory() / "models").glob("*.pt"))
    except FileNotFoundError:
        return None
    return models[0] if len(models) == 1 else None
