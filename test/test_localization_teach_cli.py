"""`dlvf teach --bag`: bad frames skipped and counted, bad bags/models/configs refused in one line, and a failed or
interrupted run leaves nothing behind (no map directory, no staging folder, an old map untouched)."""

from __future__ import annotations

import dataclasses
import re
import sys
import warnings

import numpy as np
import pytest
from run_frames import Frame
from skimage import data

from dlvf_ros import cli
from dlvf_ros.data.bag_format import BagError, check_message_type, installed_interface_packages, typestore_for
from dlvf_ros.data.bags import read_stereo_bag, write_run_bag
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.localization.map_store import MapStore

RIG = StereoRig().scaled(256, 192)
PERIOD_NS = 250_000_000
T0_NS = 5_000_000_000


def textured_frames(count: int) -> list[Frame]:
    """Frames every 0.5 m straight ahead, each seeing a fronto-parallel textured scene 8 px of disparity away."""
    left = np.ascontiguousarray(data.astronaut()[::2, ::2][32:224])
    right = np.zeros_like(left)
    right[:, :-8] = left[:, 8:]
    poses = [transforms.from_xyz_rpy(0.5 * i, 0.0, 0.0) for i in range(count)]
    return [Frame(i, T0_NS + i * PERIOD_NS, left, right, T, T) for i, T in enumerate(poses)]


def rewrite_bag(source, target, edit) -> None:
    """Copy bag `source` to `target`; `edit(topic, index, message)` returns the messages to write instead (index:
    the message's position on its topic). Header stamps can so go backwards or repeat, which the writer refuses."""
    from rosbags.rosbag2 import Reader, Writer

    typestore = typestore_for("kilted")
    counts: dict[str, int] = {}
    with Reader(source) as reader, Writer(target, version=Writer.VERSION_LATEST) as writer:
        connections = {}
        for connection, log_ns, raw in reader.messages():
            message = typestore.deserialize_cdr(raw, connection.msgtype)
            index = counts[connection.topic] = counts.get(connection.topic, -1) + 1
            for out in edit(connection.topic, index, message):
                if connection.topic not in connections:
                    connections[connection.topic] = writer.add_connection(
                        connection.topic,
                        connection.msgtype,
                        typestore=typestore,
                        offered_qos_profiles=connection.ext.offered_qos_profiles,
                    )
                writer.write(connections[connection.topic], log_ns, typestore.serialize_cdr(out, connection.msgtype))


def _restamped(message, stamp_ns: int):
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    stamp = dataclasses.replace(message.header.stamp, sec=sec, nanosec=nanosec)
    return dataclasses.replace(message, header=dataclasses.replace(message.header, stamp=stamp))


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    good = write_run_bag(root / "good", textured_frames(12), RIG)

    def edit(topic, index, message):
        if topic.endswith("image_raw") and index == 3:  # frame 3 stamped before frame 2: out of order
            return [_restamped(message, T0_NS + 2 * PERIOD_NS - 50_000_000)]
        if topic.endswith("image_raw") and index == 6:  # frame 6 stamped as frame 5: a duplicate stamp
            return [_restamped(message, T0_NS + 5 * PERIOD_NS)]
        if topic == "/stereo/left/image_raw" and index == 7:  # frame 7's left image cannot be decoded
            return [dataclasses.replace(message, encoding="16UC1")]
        if topic == "/odom" and index == 1:  # an odometry pose that is not a rotation: skipped
            orientation = dataclasses.replace(message.pose.pose.orientation, w=0.0)
            pose = dataclasses.replace(message.pose.pose, orientation=orientation)
            return [dataclasses.replace(message, pose=dataclasses.replace(message.pose, pose=pose))]
        if topic == "/odom" and index >= 10:  # frames 10 and 11 have no odometry near their stamp
            return []
        return [message]

    rewrite_bag(good, root / "bad_frames", edit)
    rewrite_bag(good, root / "no_odometry", lambda topic, index, message: [] if topic == "/odom" else [message])
    return root


def test_bad_frames_are_skipped_and_counted(bags, tmp_path, capsys):
    rig, frames = read_stereo_bag(bags / "bad_frames")
    stamps = [f.stamp_ns for f in frames]
    assert len(stamps) == 11 and stamps.count(T0_NS + 5 * PERIOD_NS) == 2  # frame 7 is gone, frames 5 and 6 alike
    assert dict(frames.skipped) == {"undecodable image": 1, "bad pose on /odom": 1}

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "The given NumPy array is not writable"
        assert (
            cli.main(["teach", "--bag", str(bags / "bad_frames"), "--out", str(tmp_path / "map"), "--backend", "orb"])
            == 0
        )
    out = capsys.readouterr().out
    assert (
        "skipped: 1 bad pose on /odom, 1 duplicate stamp, 2 no odometry near the stamp, 1 out-of-order stamp, "
        "1 undecodable image;" in out
    )
    store = MapStore.open(tmp_path / "map")
    # keyframes after each metre: frames 0, 2, 4 and 8 (6 repeats 5's stamp, 7 lost its image)
    assert [e.stamp_ns for e in store.entries] == [T0_NS + i * PERIOD_NS for i in (0, 2, 4, 8)]
    np.testing.assert_allclose(store.positions_m[:, 0], [0.0, 1.0, 2.0, 4.0], atol=1e-9)


def _listing(path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize(
    "bag, extra, message",
    [
        ("missing", [], r"bag .*missing does not exist"),
        ("a_file", [], r"bag .*a_file cannot be read \(.*\); pass a rosbag2 bag directory"),
        ("an_empty_dir", [], r"bag .*an_empty_dir cannot be read"),
        ("truncated", [], r"bag .*truncated cannot be read \(.*File end magic is invalid"),
        ("no_odometry", [], r"no keyframe was stored from bag .*no_odometry, so no map was written"),
        ("good", ["--config", "corrupt.yaml"], r"corrupt.yaml: not valid YAML at line 2, column 1"),
        ("good", ["--config", "unknown.yaml"], r"unknown.yaml: unknown key\(s\) \['keyframe_spacing'\]"),
        ("good", ["--backend", "learned", "--model", "a_file"], r"model file .*a_file is not a readable"),
        ("good", ["--backend", "learned", "--model", "missing.pt"], r"model file .*missing.pt does not exist"),
    ],
)
def test_a_failed_teach_is_one_line_and_leaves_nothing_behind(bags, tmp_path, capsys, bag, extra, message):
    (tmp_path / "a_file").write_text("not a bag\n")
    (tmp_path / "an_empty_dir").mkdir()
    (tmp_path / "corrupt.yaml").write_text("keyframe_distance_m: [1,\n")
    (tmp_path / "unknown.yaml").write_text("keyframe_spacing: 2.0\n")
    mcap = next((bags / "good").glob("*.mcap"))
    (tmp_path / "truncated").mkdir()
    (tmp_path / "truncated" / "metadata.yaml").write_bytes((bags / "good" / "metadata.yaml").read_bytes())
    (tmp_path / "truncated" / mcap.name).write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    bag_path = bags / bag if bag in ("good", "no_odometry") else tmp_path / bag
    extra = [str(tmp_path / a) if a.endswith((".yaml", "a_file", ".pt")) else a for a in extra]
    before = _listing(tmp_path)
    argv = ["teach", "--bag", str(bag_path), "--out", str(tmp_path / "map"), *(extra or ["--backend", "orb"])]
    if "--backend" not in argv:
        argv += ["--backend", "orb"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err  # the progress bar, if the bag opened, then the error
    line = err.rstrip("\n").rpartition("\n")[2]
    assert line.startswith("dlvf teach: error: ") and "Traceback" not in err, err
    assert re.search(message, line), err
    assert _listing(tmp_path) == before  # no map, no staging folder


def test_an_existing_map_is_kept_unless_overwritten_and_a_failed_overwrite_keeps_it(bags, tmp_path, capsys):
    out = tmp_path / "map"
    teach = ["teach", "--out", str(out), "--backend", "orb", "--bag"]
    assert cli.main([*teach, str(bags / "good")]) == 0
    taught = _listing(out)
    assert cli.main([*teach, str(bags / "good")]) == 2
    assert "exists and is not empty; choose another --out or pass --overwrite" in capsys.readouterr().err
    assert cli.main([*teach, str(bags / "no_odometry"), "--overwrite"]) == 2
    assert _listing(out) == taught and len(MapStore.open(out)) == 6  # the failed run replaced nothing
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "precious.txt").write_text("x")
    assert cli.main([*teach, str(bags / "good"), "--out", str(tmp_path / "notes"), "--overwrite"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (tmp_path / "notes" / "precious.txt").exists()
    assert cli.main([*teach, str(bags / "good"), "--overwrite", "--no-images"]) == 0
    assert not MapStore.open(out).has_images
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map", "notes"]


def test_an_interrupted_teach_leaves_nothing_and_debug_shows_the_traceback(bags, tmp_path, monkeypatch, capsys):
    from dlvf_ros.localization.teach import Teacher

    add_frame = Teacher.add_frame

    def interrupted(self, *args, **kwargs):
        if self.frames_seen == 3:
            raise KeyboardInterrupt
        return add_frame(self, *args, **kwargs)

    monkeypatch.setattr(Teacher, "add_frame", interrupted)
    assert cli.main(["teach", "--bag", str(bags / "good"), "--out", str(tmp_path / "map"), "--backend", "orb"]) == 130
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BagError, match="does not exist|cannot be read"):
        cli.main(["teach", "--bag", str(tmp_path), "--out", str(tmp_path / "map"), "--backend", "orb", "--debug"])
    monkeypatch.setenv("DLVF_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        cli.main(["teach", "--bag", str(tmp_path / "nope"), "--out", str(tmp_path / "map"), "--backend", "orb"])


def test_bag_message_types_are_checked_before_anything_is_imported(bags, tmp_path):
    from rosbags.rosbag2 import Reader, Writer
    from rosbags.typesys import get_types_from_msg

    installed = installed_interface_packages()
    assert {"sensor_msgs", "nav_msgs", "tf2_msgs"} <= installed and "this" not in installed
    assert check_message_type("sensor_msgs/msg/Image", installed, "bag b") == ("sensor_msgs", "Image")
    with pytest.raises(BagError, match="bag b: message type this/msg/Foo is not from an installed ROS interface"):
        check_message_type("this/msg/Foo", installed, "bag b")
    with pytest.raises(BagError, match=r"message type 'os/../Foo' is not of the form package/msg/Name"):
        check_message_type("os/../Foo", installed, "bag b")

    typestore = typestore_for("kilted")
    typestore.register(get_types_from_msg("int32 x", "this/msg/Foo"))
    with Reader(bags / "good") as reader, Writer(tmp_path / "foreign", version=Writer.VERSION_LATEST) as writer:
        connections = {
            c.id: writer.add_connection(
                c.topic, c.msgtype, typestore=typestore, offered_qos_profiles=c.ext.offered_qos_profiles
            )
            for c in reader.connections
            if c.topic != "/odom"
        }
        foo = writer.add_connection("/odom", "this/msg/Foo", typestore=typestore)
        writer.write(foo, T0_NS, typestore.serialize_cdr(typestore.types["this/msg/Foo"](x=1), "this/msg/Foo"))
        for connection, log_ns, raw in reader.messages():
            if connection.id in connections:
                writer.write(connections[connection.id], log_ns, raw)
    assert "this" not in sys.modules
    with pytest.raises(BagError, match="topic /odom has message type this/msg/Foo, expected nav_msgs/msg/Odometry"):
        read_stereo_bag(tmp_path / "foreign")
    assert "this" not in sys.modules


def test_a_learned_teach_gives_the_network_writable_images(bags, tmp_path, one_torch_thread):
    import torch

    from dlvf_ros.features.export import export_feature_net
    from dlvf_ros.features.unet import FeatureNet

    torch.manual_seed(0)
    model = tmp_path / "model.pt"
    export_feature_net(FeatureNet(m=4), model, (RIG.height, RIG.width))  # the bag's size: no resize, no copy
    _, frames = read_stereo_bag(bags / "good")
    assert next(frames).left.flags.writeable
    out = tmp_path / "map"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "The given NumPy array is not writable" came from the bag's read-only views
        assert cli.main(["teach", "--bag", str(bags / "good"), "--out", str(out), "--model", str(model)]) == 0
    assert MapStore.open(out).manifest["backend"] == "learned"
