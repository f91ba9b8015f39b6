"""Test support for the node tests: a textured-wall stereo world, a small map, and an rclpy test client.

The wall world is exact and fast (no OpenGL): a textured plane `wall_distance_m` ahead of a vehicle driving
sideways along it (vehicle +y), seen by a forward-looking stereo rig, so a lateral move is a pure image shift and a
forward move a zoom. Images come from `cv2.remap` of one texture; disparity is f b / depth exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig, default_T_vehicle_camera
from dlvf_ros.replay.processes import python_module_command, start_ros_process

TEXEL_M = 0.01
WALL_Y_RANGE_M = (-6.0, 16.0)
WALL_Z_RANGE_M = (-3.0, 5.0)


def wall_rig(width: int = 256, height: int = 192) -> StereoRig:
    """The default intrinsics scaled to width x height, camera 1 m up looking straight ahead (no pitch)."""
    rig = StereoRig().scaled(width, height)
    rig.T_vehicle_camera = default_T_vehicle_camera(pitch_down_deg=0.0)
    return rig


def wall_texture(seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 RGB texture of the wall: scikit-image sample photographs tiled 4 m x 4 m, in a seeded order."""
    from skimage import data

    names = [
        "astronaut",
        "coffee",
        "chelsea",
        "rocket",
        "immunohistochemistry",
        "camera",
        "brick",
        "gravel",
        "hubble_deep_field",
        "grass",
        "retina",
    ]
    order = np.random.default_rng(seed).permutation(len(names))
    tile = int(4.0 / TEXEL_M)
    height = int((WALL_Z_RANGE_M[1] - WALL_Z_RANGE_M[0]) / TEXEL_M)
    width = int((WALL_Y_RANGE_M[1] - WALL_Y_RANGE_M[0]) / TEXEL_M)
    rows, cols = -(-height // tile), -(-width // tile)
    texture = np.zeros((rows * tile, cols * tile, 3), np.uint8)
    for k in range(rows * cols):
        image = getattr(data, names[order[k % len(names)]])()
        image = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image[:, :, :3]
        r, c = divmod(k, cols)
        texture[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = cv2.resize(
            image, (tile, tile), interpolation=cv2.INTER_AREA
        )
    return np.ascontiguousarray(texture[:height, :width])


@dataclass
class WallFrame:
    stamp_ns: int
    left: np.ndarray
    right: np.ndarray
    T_world_vehicle: np.ndarray


def render_wall(
    texture: np.ndarray, rig: StereoRig, T_world_vehicle: np.ndarray, wall_distance_m: float, brightness: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Left and right RGB images of the wall plane x = wall_distance_m (world) from a vehicle at T_world_vehicle.

    Only vehicle translation (x, y) is supported: the camera must look straight at the wall.
    """
    T_world_camera = T_world_vehicle @ rig.T_vehicle_camera
    distance = wall_distance_m - T_world_camera[0, 3]
    u, v = np.meshgrid(np.arange(rig.width, dtype=np.float64), np.arange(rig.height, dtype=np.float64))
    images = []
    for offset_x in (0.0, rig.baseline):  # right camera: baseline along the left optical x (vehicle -y)
        x_optical = (u - rig.cu) * distance / rig.f + offset_x
        y_optical = (v - rig.cv) * distance / rig.f
        world_y = T_world_camera[1, 3] - x_optical
        world_z = T_world_camera[2, 3] - y_optical
        map_x = ((world_y - WALL_Y_RANGE_M[0]) / TEXEL_M - 0.5).astype(np.float32)
        map_y = ((WALL_Z_RANGE_M[1] - world_z) / TEXEL_M - 0.5).astype(np.float32)
        image = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        images.append(np.clip(image.astype(np.float32) * brightness, 0, 255).astype(np.uint8))
    return images[0], images[1]


def wall_run(
    texture: np.ndarray,
    rig: StereoRig,
    lateral_m: np.ndarray,
    forward_m: float,
    first_stamp_ns: int,
    period_s: float = 0.25,
    wall_distance_m: float = 6.0,
    brightness: float = 1.0,
) -> list[WallFrame]:
    """Frames at vehicle positions (forward_m, lateral_m[i]) in the world, one every `period_s`."""
    frames = []
    for i, y in enumerate(lateral_m):
        T_world_vehicle = transforms.from_xyz_rpy(forward_m, float(y), 0.0)
        left, right = render_wall(texture, rig, T_world_vehicle, wall_distance_m, brightness)
        frames.append(WallFrame(first_stamp_ns + int(round(i * period_s * 1e9)), left, right, T_world_vehicle))
    return frames


def build_wall_map(path, rig: StereoRig, frames: list[WallFrame], keyframe_distance_m: float = 1.0):
    """A map store (ORB features) taught from `frames`, odometry = ground truth; returns the path."""
    from dlvf_ros.features.backends import make_backend
    from dlvf_ros.localization.teach import TeachConfig, Teacher

    teacher = Teacher.create(path, make_backend("orb"), rig, TeachConfig(keyframe_distance_m=keyframe_distance_m))
    for frame in frames:
        teacher.add_frame(frame.stamp_ns, frame.left, frame.right, frame.T_world_vehicle, frame.T_world_vehicle)
    return path


def taught_wall_map(directory: Path, start_ns: int) -> tuple[StereoRig, np.ndarray, Path]:
    """(rig, texture, map path) of the node tests' world: a map in `directory` taught 4 m from the wall, 0 to 6 m
    every 0.25 m, from `start_ns` on."""
    rig, texture = wall_rig(), wall_texture()
    teach = wall_run(texture, rig, np.arange(0.0, 6.01, 0.25), 0.0, start_ns, wall_distance_m=4.0)
    return rig, texture, build_wall_map(directory / "wall_map", rig, teach)


def refused_start_log(module: str, log_dir: Path, **start_args) -> str:
    """Start `python -m module` as a ROS process (`start_ros_process` arguments) that must refuse to start: asserts
    that it exits with status 1 within 60 s; returns its log."""
    process = start_ros_process(python_module_command(module), log_dir=log_dir, **start_args)
    with process:
        returncode = process.wait(timeout_s=60.0)
    assert returncode == 1, f"{module} exited with {returncode}, not 1; its log:\n{process.log_text(tail_lines=40)}"
    return process.log_text()


def wait_for(predicate, timeout_s: float, spin, what: str) -> None:
    """Spin until `predicate()` is true; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        spin(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class StereoClient:
    """An rclpy node in the test process: publishes stereo, camera_info, odometry, ground truth, /tf_static;
    records the nodes' pose, tf, path, per-frame results (`frame_results`) and /diagnostics (`diagnostics`) outputs
    (`statuses`: the statuses of both, in arrival order)."""

    def __init__(self, rig: StereoRig, name: str = "dlvf_test_client", namespace: str = "") -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped
        from nav_msgs.msg import Odometry, Path
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile
        from sensor_msgs.msg import CameraInfo, Image
        from tf2_msgs.msg import TFMessage

        from dlvf_ros.localization.frame_record import FRAME_STATUS_DEPTH, FRAME_STATUS_TOPIC
        from dlvf_ros.ros.compat import StaticTransformBroadcaster

        self.rig = rig
        ns = "/" + namespace.strip("/") if namespace else ""  # the nodes' namespace (/tf, /diagnostics are global)
        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        node = self.node
        self.pub = {
            "left": node.create_publisher(Image, ns + "/stereo/left/image_rect", 10),
            "right": node.create_publisher(Image, ns + "/stereo/right/image_rect", 10),
            "left_info": node.create_publisher(CameraInfo, ns + "/stereo/left/camera_info", 10),
            "right_info": node.create_publisher(CameraInfo, ns + "/stereo/right/camera_info", 10),
            "odom": node.create_publisher(Odometry, ns + "/odom", 50),
            "ground_truth": node.create_publisher(PoseStamped, ns + "/ground_truth/pose", 50),
        }
        self.static_broadcaster = StaticTransformBroadcaster(node)
        self.poses: list = []
        self.tf: list = []
        self.paths: list = []
        self.frame_results: list = []
        self.frame_result_stamps_ns: list[int] = []  # header stamp of each frame result's array
        self.diagnostics: list = []
        self.statuses: list = []
        node.create_subscription(PoseWithCovarianceStamped, ns + "/localization/pose", self.poses.append, 10)
        node.create_subscription(TFMessage, "/tf", lambda m: self.tf.extend(m.transforms), 100)
        node.create_subscription(
            Path,
            ns + "/localization/path",
            self.paths.append,
            QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL),
        )
        node.create_subscription(
            DiagnosticArray, f"{ns}/{FRAME_STATUS_TOPIC}", self._on_frame_result, FRAME_STATUS_DEPTH
        )
        node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: self._keep(self.diagnostics, m), 100)

    def _on_frame_result(self, msg) -> None:
        from dlvf_ros.ros import conversions

        self.frame_result_stamps_ns.extend([conversions.stamp_to_ns(msg.header.stamp)] * len(msg.status))
        self._keep(self.frame_results, msg)

    def _keep(self, kept: list, msg) -> None:
        kept.extend(msg.status)
        self.statuses.extend(msg.status)

    def spin(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            self.executor.spin_once(timeout_sec=max(0.0, min(0.02, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                return

    def wait_for(self, predicate, timeout_s: float, what: str) -> None:
        wait_for(predicate, timeout_s, self.spin, what)

    def wait_matched(self, timeout_s: float = 10.0) -> None:
        """Until every input topic has a subscriber (the node under test is up)."""
        self.wait_for(
            lambda: all(p.get_subscription_count() > 0 for k, p in self.pub.items() if k != "ground_truth"),
            timeout_s,
            "the node's subscriptions to the stereo and odometry topics",
        )

    def publish_static_camera(self, base_frame: str = "base_link") -> None:
        from dlvf_ros.ros import conversions

        T_left = self.rig.T_vehicle_camera
        T_right = T_left @ transforms.from_xyz_rpy(self.rig.baseline, 0, 0)
        self.static_broadcaster.sendTransform(
            [
                conversions.matrix_to_transform_stamped(T_left, 0, base_frame, "camera_left_optical"),
                conversions.matrix_to_transform_stamped(T_right, 0, base_frame, "camera_right_optical"),
            ]
        )

    def publish_odometry(self, stamp_ns: int, T_odom_vehicle: np.ndarray) -> None:
        from dlvf_ros.ros import conversions

        self.pub["odom"].publish(conversions.matrix_to_odometry(T_odom_vehicle, stamp_ns))

    def publish_ground_truth(self, stamp_ns: int, T_world_vehicle: np.ndarray) -> None:
        from dlvf_ros.ros import conversions

        self.pub["ground_truth"].publish(conversions.matrix_to_pose_stamped(T_world_vehicle, stamp_ns, "world"))

    def publish_stereo(
        self,
        stamp_ns: int,
        left: np.ndarray,
        right: np.ndarray,
        skip: tuple = (),
        right_stamp_offset_ns: int = 0,
        left_encoding: str = "rgb8",
    ) -> None:
        """Images + camera_info; `skip` names inputs not to publish ("left_info", ...)."""
        from dlvf_ros.ros import conversions

        left_info, right_info = conversions.rig_to_camera_infos(self.rig, stamp_ns)
        right_info.header.stamp = conversions.ns_to_stamp(stamp_ns + right_stamp_offset_ns)
        left_msg = conversions.array_to_image(left, "rgb8", stamp_ns, "camera_left_optical")
        left_msg.encoding = left_encoding  # another name on rgb8 bytes: tests a wrong encoding
        messages = {
            "left": left_msg,
            "right": conversions.array_to_image(
                right, "rgb8", stamp_ns + right_stamp_offset_ns, "camera_right_optical"
            ),
            "left_info": left_info,
            "right_info": right_info,
        }
        for key in ("left_info", "right_info", "left", "right"):
            if key not in skip:
                self.pub[key].publish(messages[key])

    def summaries(self) -> list:
        """The health summaries on /diagnostics."""
        return [s for s in self.diagnostics if s.name.endswith(": summary")]

    def status_messages(self) -> list[str]:
        return [s.message for s in self.statuses]

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def teach_through_node(bag, map_path, log_dir, parameters: dict, timeout_s: float = 120.0) -> None:
    """Play `bag` (bag_player, /clock) into teach_node (use_sim_time) until every stereo frame is processed, then
    stop the node with SIGINT so it finalises the map at `map_path`."""
    import rclpy
    import rclpy.executors
    from diagnostic_msgs.msg import DiagnosticArray

    from dlvf_ros.replay.processes import python_module_command, start_ros_process
    from dlvf_ros.replay.replay_cli import bag_summary
    from dlvf_ros.ros.stereo_input import bag_remappings

    n_frames = bag_summary(bag)["topics"]["/stereo/left/image_raw"]
    node = start_ros_process(
        python_module_command("dlvf_ros.ros.teach_node"),
        node_name="teach_node",
        remap=bag_remappings(),
        parameters={"map_path": str(map_path), "use_sim_time": True, **parameters},
        log_dir=log_dir,
    )
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    watcher = rclpy.create_node("teach_watcher", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(watcher)
    counters: dict[str, str] = {}

    def on_diagnostics(msg) -> None:
        for status in msg.status:
            if status.name == "teach_node: summary" and status.values:
                counters.update({kv.key: kv.value for kv in status.values})

    watcher.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)
    try:
        node.wait_ready(timeout_s=60.0, subscribes=["/stereo/left/image_raw"], node=watcher)
        player = start_ros_process(
            python_module_command("dlvf_ros.replay.bag_player", str(bag), "--wait-for", "/stereo/left/image_raw"),
            log_dir=log_dir,
        )
        with player:
            assert player.wait(timeout_s) == 0, player.log_text()

        def done() -> bool:
            return sum(int(counters.get(k, 0) or 0) for k in ("frames_processed", "frames_dropped")) >= n_frames

        deadline = time.monotonic() + timeout_s
        while not done():
            assert node.alive(), node.log_text()
            assert time.monotonic() < deadline, f"teach_node handled {counters} of {n_frames} frames"
            executor.spin_once(timeout_sec=0.1)
        assert node.stop(timeout_s=60.0) == 0, node.log_text()
    finally:
        node.stop()
        executor.shutdown()
        watcher.destroy_node()
        rclpy.shutdown(context=context)


_INSTALLED: dict[str, Path] = {}
EXECUTABLES = ("localizer_node", "managed_localizer_node", "teach_node", "bag_player", "dlvf")


def installed_prefix() -> Path:
    """This checkout installed the way a robot gets it: `pip install .` (not editable) of a copy of the sources into
    a fresh prefix, plus `lib/dlvf_ros/<executable>` links to pip's `bin/` scripts, where colcon's install (setup.cfg's
    install_scripts) puts them and launch_ros' `Node(package="dlvf_ros")` looks. Once per test session (~10 s).

    Run with `installed_environment(prefix)`: the installed code, not the checkout, is imported then."""
    if "prefix" not in _INSTALLED:
        import shutil
        import subprocess
        import sys
        import tempfile

        root = Path(__file__).resolve().parents[1]
        work = Path(tempfile.mkdtemp(prefix="dlvf-installed-"))
        source = work / "source"
        source.mkdir()
        for name in ("package.xml", "setup.py", "setup.cfg"):
            shutil.copy2(root / name, source / name)
        for name in ("resource", "dlvf_ros", "launch", "config"):
            shutil.copytree(root / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        (source / "models").mkdir()
        for model in (root / "models").glob("*.pt"):
            shutil.copy2(model, source / "models" / model.name)
        prefix = work / "install"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-cache-dir"]
            + ["--ignore-installed"]  # never uninstall the environment's own (editable) dlvf_ros
            + ["--prefix", str(prefix), str(source)],
            check=True,
            capture_output=True,
        )
        shutil.rmtree(source)  # nothing of the sources is left to import from
        (prefix / "lib" / "dlvf_ros").mkdir(parents=True, exist_ok=True)
        for executable in EXECUTABLES:
            (prefix / "lib" / "dlvf_ros" / executable).symlink_to(Path("..") / ".." / "bin" / executable)
        _INSTALLED["prefix"] = prefix
    return _INSTALLED["prefix"]


def installed_environment(prefix: Path) -> dict[str, str]:
    """Variables that make a child process import dlvf_ros from `prefix` and find its share files through the ament
    index (AMENT_PREFIX_PATH), like a sourced colcon install."""
    import os
    import sys

    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    ament = os.pathsep.join([str(prefix), *[p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]])
    return {"PYTHONPATH": str(site), "AMENT_PREFIX_PATH": ament}


def build_learned_wall_map(path: Path) -> Path:
    """A 3-keyframe map of the wall world taught with the shipped learned model (models/*.pt)."""
    from dlvf_ros.features.backends import make_backend
    from dlvf_ros.localization.teach import TeachConfig, Teacher
    from dlvf_ros.package_share import shipped_model_path

    rig = wall_rig()
    frames = wall_run(wall_texture(), rig, np.arange(0.0, 2.01, 1.0), 0.0, 10**12, wall_distance_m=4.0)
    teacher = Teacher.create(
        path, make_backend("learned", shipped_model_path()), rig, TeachConfig(keyframe_distance_m=1.0)
    )
    for frame in frames:
        teacher.add_frame(frame.stamp_ns, frame.left, frame.right, frame.T_world_vehicle, frame.T_world_vehicle)
    return path
