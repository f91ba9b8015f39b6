"""rosbag2 bags of stereo runs (mcap or sqlite3), written and read with `rosbags` (pure Python, no ROS needed).

`write_run_bag(path, frames, rig, storage="mcap")` writes a run (images, camera info, odometry, ground truth,
/tf_static; see bag_writer.py); `read_stereo_bag(path) -> (StereoRig, Iterator[BagStereoFrame])` reads one back
(see bag_reader.py). Topic names and frame ids: `BagTopics` (docs/conventions.md).
"""

from dlvf_ros.data.bag_format import DISTROS, STORAGES, BagStereoFrame, BagTopics, typestore_for
from dlvf_ros.data.bag_reader import PoseTrack, read_stereo_bag
from dlvf_ros.data.bag_writer import body_twist, write_run_bag

__all__ = [
    "DISTROS",
    "STORAGES",
    "BagStereoFrame",
    "BagTopics",
    "PoseTrack",
    "body_twist",
    "read_stereo_bag",
    "typestore_for",
    "write_run_bag",
]
