"""Map store: round trip, checksums, compatibility errors, and survival of a writer killed by SIGKILL mid-way."""

import dataclasses
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dlvf_ros.features.backends import OrbBackend, SiftBackend
from dlvf_ros.geometry import transforms
from dlvf_ros.geometry.camera import StereoRig
from dlvf_ros.localization.map_format import MANIFEST_KEYS, Keyframe, MapStoreError
from dlvf_ros.localization.map_store import MapMismatchError, MapStore, MapWriter

RIG = StereoRig().scaled(64, 48)


def synthetic_keyframe(keyframe_id: int, n: int = 300, with_world: bool = True) -> Keyframe:
    """Deterministic keyframe content from its id (the kill test re-creates it to compare)."""
    rng = np.random.default_rng(keyframe_id)
    T = transforms.from_xyz_rpy(float(keyframe_id), 0.1 * keyframe_id, 0.0, yaw=0.05 * keyframe_id)
    return Keyframe(
        keyframe_id=keyframe_id,
        stamp_ns=1_000_000_000 * keyframe_id + 7,
        T_map_keyframe=T,
        keypoints=rng.uniform(0, 47, (n, 2)).astype(np.float32),
        descriptors=rng.integers(0, 256, (n, 32), dtype=np.uint8),
        scores=rng.uniform(0, 1, n).astype(np.float32),
        points_camera=rng.normal(size=(n, 3)),
        valid=rng.uniform(size=n) > 0.2,
        T_world_keyframe=T @ transforms.from_xyz_rpy(5, 0, 0) if with_world else None,
    )


def synthetic_images(keyframe_id: int):
    rng = np.random.default_rng(1000 + keyframe_id)
    return (rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))


def assert_same_keyframe(a: Keyframe, b: Keyframe):
    assert a.keyframe_id == b.keyframe_id and a.stamp_ns == b.stamp_ns
    for key in ("T_map_keyframe", "keypoints", "descriptors", "scores", "points_camera", "valid"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    if a.T_world_keyframe is None:
        assert b.T_world_keyframe is None
    else:
        np.testing.assert_array_equal(a.T_world_keyframe, b.T_world_keyframe)


def test_round_trip_manifest_and_lazy_load(tmp_path):
    path = tmp_path / "map"
    writer = MapWriter.create(path, OrbBackend(), RIG, teach_parameters={"keyframe_distance_m": 1.0})
    for i in range(3):
        writer.add(synthetic_keyframe(i, with_world=i != 1), *synthetic_images(i))
    store = MapStore.open(path)
    assert len(store) == 3 and store.has_images and store.rig.matches(RIG)
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(MANIFEST_KEYS) <= set(manifest), sorted(set(MANIFEST_KEYS) - set(manifest))  # all the reader needs
    assert manifest["descriptor_size"] == 32 and manifest["input_size"] == [48, 64]
    for i in range(3):
        assert_same_keyframe(store.keyframe(i), synthetic_keyframe(i, with_world=i != 1))
        left, right = store.images(i)
        np.testing.assert_array_equal(left, synthetic_images(i)[0])
        np.testing.assert_array_equal(right, synthetic_images(i)[1])
    np.testing.assert_allclose(store.positions_m[:, 0], [0.0, 1.0, 2.0])
    with pytest.raises(IndexError, match="out of range"):
        store.keyframe(3)


def test_writer_refuses_bad_input(tmp_path):
    writer = MapWriter.create(tmp_path / "m", OrbBackend(), RIG)
    with pytest.raises(ValueError, match="expected 0"):
        writer.add(synthetic_keyframe(1))
    # what a reader would refuse is never written: nothing of keyframe 0 appears on disk
    bad_points = synthetic_keyframe(0)
    bad_points.points_camera[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"MapWriter.add: keyframe 0: array 'points_camera' holds NaN or inf$"):
        writer.add(bad_points, *synthetic_images(0))
    with pytest.raises(ValueError, match=r"descriptors float32 \(N, 32\) do not match the map's uint8 \(N, 32\)"):
        writer.add(dataclasses.replace(synthetic_keyframe(0), descriptors=np.zeros((300, 32), np.float32)))
    assert sorted(p.name for p in (tmp_path / "m").rglob("*") if p.is_file()) == ["index.jsonl", "manifest.json"]
    writer.add(synthetic_keyframe(0))
    with pytest.raises(ValueError, match="stamp 7 ns is not after the previous keyframe's 7 ns"):
        writer.add(dataclasses.replace(synthetic_keyframe(1), stamp_ns=7))
    with pytest.raises(FileExistsError, match="not empty"):
        MapWriter.create(tmp_path / "m", OrbBackend(), RIG)
    MapWriter.create(tmp_path / "m", OrbBackend(), RIG, overwrite=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a map store"):
        MapWriter.create(tmp_path / "other", OrbBackend(), RIG, overwrite=True)


def test_corruption_is_detected(tmp_path):
    path = tmp_path / "map"
    writer = MapWriter.create(path, OrbBackend(), RIG)
    writer.add(synthetic_keyframe(0))
    writer.add(synthetic_keyframe(1))
    data = bytearray((path / "keyframes/000001.npz").read_bytes())
    data[-20] ^= 0xFF
    (path / "keyframes/000001.npz").write_bytes(bytes(data))
    with pytest.raises(MapStoreError, match="000001.npz: checksum mismatch"):
        MapStore.open(path)
    store = MapStore.open(path, verify=False)
    store.keyframe(0)
    with pytest.raises(MapStoreError, match="000001.npz: checksum mismatch"):
        store.keyframe(1)
    with pytest.raises(MapStoreError, match="no manifest.json"):
        MapStore.open(tmp_path)
    with pytest.raises(MapStoreError, match="does not exist"):
        MapStore.open(tmp_path / "nope")


def test_mismatched_features_or_calibration_are_refused(tmp_path):
    path = tmp_path / "map"
    MapWriter.create(path, OrbBackend(), RIG).add(synthetic_keyframe(0))
    store = MapStore.open(path)
    store.check_compatible(OrbBackend(), RIG)
    with pytest.raises(MapMismatchError, match=r"'backend': 'orb'.*'backend': 'sift'.*reextract"):
        store.check_compatible(SiftBackend())
    with pytest.raises(MapMismatchError, match="n_features"):
        store.check_compatible(OrbBackend(n_features=500))
    other = StereoRig().scaled(128, 96)
    with pytest.raises(MapMismatchError, match="'width': 64.*'width': 128"):
        store.check_compatible(OrbBackend(), other)


def test_stereo_method_of_new_legacy_and_unrecorded_maps(tmp_path):
    teach_parameters = {
        "new": {"stereo": {"method": "keypoints", "refine_search_px": 2}},
        "legacy": {"sgbm": {"num_disparities": 96}},  # taught before the method was recorded: dense SGBM
        "unrecorded": None,  # not written by a teacher
    }
    for name, parameters in teach_parameters.items():
        MapWriter.create(tmp_path / name, OrbBackend(), RIG, teach_parameters=parameters).add(synthetic_keyframe(0))
    new, legacy, unrecorded = (MapStore.open(tmp_path / name) for name in teach_parameters)
    assert new.stereo_parameters == {"method": "keypoints", "refine_search_px": 2}
    assert legacy.stereo_parameters == {"method": "sgbm", "sgbm": {"num_disparities": 96}}
    assert unrecorded.stereo_parameters is None
    new.check_compatible(OrbBackend(), RIG, "keypoints")
    legacy.check_compatible(OrbBackend(), RIG, "sgbm")
    unrecorded.check_compatible(OrbBackend(), RIG, "sgbm_half_refined")
    with pytest.raises(MapMismatchError, match="taught with stereo method 'sgbm', but the localizer uses 'keypoints'"):
        legacy.check_compatible(OrbBackend(), RIG, "keypoints")


WRITER_SCRIPT = """
import sys
sys.path.insert(0, {test_dir!r})
from test_localization_map_store import RIG, synthetic_images, synthetic_keyframe
from dlvf_ros.features.backends import OrbBackend
from dlvf_ros.localization.map_store import MapWriter
writer = MapWriter.create({path!r}, OrbBackend(), RIG)
print("created", flush=True)
i = 0
while True:
    writer.add(synthetic_keyframe(i, n=2000), *synthetic_images(i))
    print("committed", i, flush=True)
    i += 1
"""


def test_map_survives_sigkill_at_random_moments(tmp_path):
    rng = random.Random(1234)
    test_dir = os.path.dirname(os.path.abspath(__file__))
    for trial in range(6):
        path = str(tmp_path / f"map{trial}")
        process = subprocess.Popen(
            [sys.executable, "-c", WRITER_SCRIPT.format(test_dir=test_dir, path=path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout.readline().strip() == "created"
        time.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        out, _ = process.communicate(timeout=10)
        committed = [int(line.split()[1]) for line in out.splitlines() if line.startswith("committed")]
        reported = committed[-1] + 1 if committed else 0
        store = MapStore.open(path)  # verifies every listed checksum
        # the last keyframe may be committed without having been reported before the kill
        assert reported <= len(store) <= reported + 1, (trial, reported, len(store))
        for i in range(len(store)):
            assert_same_keyframe(store.keyframe(i), synthetic_keyframe(i, n=2000))


def test_map_cli_info_and_verify(tmp_path, capsys):
    from dlvf_ros import cli

    path = tmp_path / "map"
    writer = MapWriter.create(path, OrbBackend(), RIG)
    for i in range(3):
        writer.add(synthetic_keyframe(i))
    (path / "keyframes" / ".000003.npz.abc.tmp").write_bytes(b"half")  # what a killed writer leaves
    assert cli.main(["map", "info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["summary"]["keyframes"] == 3 and info["manifest"]["backend"] == "orb"
    assert info["summary"]["path_length_m"] == pytest.approx(2 * np.hypot(1.0, 0.1))
    assert cli.main(["map", "verify", str(path)]) == 0
    assert "OK" in (out := capsys.readouterr().out) and "interrupted writer" in out
    (path / "keyframes" / "000002.npz").write_bytes(b"garbage")
    assert cli.main(["map", "verify", str(path)]) == 1
    assert "BAD  keyframe 2" in capsys.readouterr().out
    assert cli.main(["map", "reextract", str(path), "--backend", "sift"]) == 2
    assert "1 problem(s), first: keyframe 2" in capsys.readouterr().err
    (path / "keyframes" / "000002.npz").write_bytes(synthetic_keyframe(2).to_npz_bytes({}))
    assert cli.main(["map", "reextract", str(path), "--backend", "sift"]) == 2  # taught without images
    assert "no stored images" in capsys.readouterr().err
    assert MapStore.open(path).manifest["backend"] == "orb"  # the map is left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map"]  # and no staging directory is left behind


# ---------------------------------------------------------------------------------------------------------------
# Maps that cannot lie: every byte checksummed, every field checked, the index cross-checked with the keyframes
# ---------------------------------------------------------------------------------------------------------------


def small_map(path, count: int = 2, images: bool = True):
    writer = MapWriter.create(path, OrbBackend(), RIG)
    for i in range(count):
        writer.add(synthetic_keyframe(i, n=30), *(synthetic_images(i) if images else (None, None)))
    return path


def write_record(path, line_number: int, record: dict) -> None:
    """Replace line `line_number` (1-based) of index.jsonl with `record` under a valid line checksum."""
    lines = (path / "index.jsonl").read_bytes().split(b"\n")
    text = json.dumps(record, separators=(",", ":")).encode()
    lines[line_number - 1] = text + b"\t" + hashlib.sha256(text).hexdigest().encode()
    (path / "index.jsonl").write_bytes(b"\n".join(lines))


def read_record(path, line_number: int) -> dict:
    line = (path / "index.jsonl").read_bytes().split(b"\n")[line_number - 1]
    return json.loads(line.rpartition(b"\t")[0])


def write_keyframe_arrays(path, keyframe_id: int, arrays: dict) -> None:
    """Replace a keyframe file by these arrays and record its new checksum in the index (a consistent forgery)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    relative = f"keyframes/{keyframe_id:06d}.npz"
    (path / relative).write_bytes(buffer.getvalue())
    record = read_record(path, keyframe_id + 2)
    record["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    write_record(path, keyframe_id + 2, record)


def keyframe_arrays(path, keyframe_id: int) -> dict:
    with np.load(path / f"keyframes/{keyframe_id:06d}.npz") as npz:
        return {k: npz[k] for k in npz.files}


def test_the_schema_on_disk(tmp_path):
    path = small_map(tmp_path / "map")
    lines = (path / "index.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 4  # header, two keyframes, final newline
    for line in lines[:-1]:
        text, _, digest = line.rpartition(b"\t")
        assert hashlib.sha256(text).hexdigest().encode() == digest
    header = json.loads(lines[0].rpartition(b"\t")[0])
    assert header == {
        "schema_version": 2,
        "manifest_sha256": hashlib.sha256((path / "manifest.json").read_bytes()).hexdigest(),
    }
    record = read_record(path, 3)
    assert record["id"] == 1 and record["file"] == "keyframes/000001.npz"
    assert record["images"]["left"]["file"] == "images/000001_left.png"
    arrays = keyframe_arrays(path, 1)  # the keyframe file carries its own id, stamp, pose and image checksums
    assert int(arrays["keyframe_id"]) == 1 and int(arrays["stamp_ns"]) == record["stamp_ns"]
    np.testing.assert_array_equal(arrays["T_map_keyframe"].reshape(-1), record["T_map_keyframe"])
    assert arrays["image_sha256"].tolist() == [record["images"][s]["sha256"] for s in ("left", "right")]


def test_keyframes_are_appended_without_rewriting_the_index(tmp_path):
    writer = MapWriter.create(tmp_path / "map", OrbBackend(), RIG)
    before = b""
    for i in range(4):
        writer.add(synthetic_keyframe(i, n=10))
        after = (tmp_path / "map" / "index.jsonl").read_bytes()
        assert after.startswith(before) and after.count(b"\n") == i + 2
        before = after


def test_one_flipped_byte_anywhere_is_refused_and_reported(tmp_path, capsys):
    from dlvf_ros import cli

    path = small_map(tmp_path / "map")
    files = sorted(p for p in path.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"manifest.json", "index.jsonl", "000001.npz", "000001_right.png"}
    checked = 0
    for file in files:
        original = file.read_bytes()
        # every byte of the index (each line's checksum, tab and newline included), a spread over the other files
        step = 1 if file.name == "index.jsonl" else max(1, len(original) // 24)
        positions = sorted({*range(0, len(original), step), len(original) - 1})
        for position in positions:
            flipped = bytearray(original)
            flipped[position] ^= 0x01 if position % 2 else 0xFF
            file.write_bytes(bytes(flipped))
            with pytest.raises(MapStoreError):
                # the manifest and index are checked without `verify`, which only adds the keyframe files
                MapStore.open(path, verify=file.suffix not in (".json", ".jsonl"))
            if position in (positions[0], positions[len(positions) // 2], positions[-1]):
                assert cli.main(["map", "verify", str(path)]) == 1, (file, position)
                assert "BAD  " in capsys.readouterr().out
            checked += 1
        file.write_bytes(original)
    assert checked > 1400
    assert len(MapStore.open(path)) == 2  # restored: sound again


def test_an_index_pose_that_disagrees_with_its_keyframe_file_is_refused(tmp_path, capsys):
    from dlvf_ros import cli

    path = small_map(tmp_path / "map")
    record = read_record(path, 3)
    record["T_map_keyframe"][3] += 1.2  # moved 1.2 m in x, the line checksum recomputed
    write_record(path, 3, record)
    with pytest.raises(
        MapStoreError, match=r"line 3: keyframe 1: the index and keyframes/000001.npz disagree on T_map_keyframe"
    ):
        MapStore.open(path)
    store = MapStore.open(path, verify=False)
    store.keyframe(0)
    with pytest.raises(MapStoreError, match="disagree on T_map_keyframe"):
        store.keyframe(1)
    assert cli.main(["map", "verify", str(path)]) == 1
    assert "BAD  keyframe 1: " in capsys.readouterr().out


def _set(key, value):
    def mutate(data):
        data[key] = value

    return mutate


def _drop(key):
    def mutate(data):
        del data[key]

    return mutate


def _scaled_pose(record):
    record["T_map_keyframe"][0] *= 2.0


def _nan_pose(record):
    record["T_map_keyframe"][5] = float("nan")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (_drop("stamp_ns"), r"line 3: field\(s\) \['stamp_ns'\] missing"),
        (_set("id", "1"), r"line 3: field 'id' is \"1\" \(str\), expected an integer"),
        (_set("id", 0), r"line 3: field 'id' is 0, expected 1 \(ids run 0, 1, 2"),
        (_set("file", "../../../../etc/hostname"), r"field 'file' is \"../../../../etc/hostname\".*'keyframes/000001"),
        (_set("file", "/etc/hostname"), r"field 'file' is \"/etc/hostname\""),
        (_set("sha256", "xyz"), r"field 'sha256' is \"xyz\" \(str\), expected a SHA-256"),
        (_set("stamp_ns", -5), r"field 'stamp_ns' is -5 \(int\), expected an integer >= 0"),
        (_set("stamp_ns", 7), r"line 3: stamp_ns 7 is not after the previous keyframe's"),
        (_nan_pose, r"field 'T_map_keyframe' .* expected 16 finite numbers"),
        (_scaled_pose, r"field 'T_map_keyframe' is not a rigid transform"),
        (_set("T_map_keyframe", [1, 2, 3]), r"field 'T_map_keyframe' is \[1, 2, 3\] \(list\), expected 16"),
        (_set("images", {"left": {}}), r"images: field\(s\) \['right'\] missing"),
        (_set("extra", 1), r"unknown field\(s\) \['extra'\]"),
    ],
)
def test_malformed_index_records_name_the_file_field_and_fix(tmp_path, mutate, message):
    path = small_map(tmp_path / "map")
    record = read_record(path, 3)
    mutate(record)
    write_record(path, 3, record)
    with pytest.raises(MapStoreError, match=message) as info:
        MapStore.open(path, verify=False)
    assert f"{path}/index.jsonl" in str(info.value) and "re-teach" in str(info.value)


def _manifest_calibration(key, value):
    def mutate(manifest):
        manifest["calibration"][key] = value

    return mutate


@pytest.mark.parametrize(
    "mutate, message",
    [
        (_set("schema_version", "1"), r"field 'schema_version' is \"1\" \(str\), expected the integer 2"),
        (_set("schema_version", 1), r"schema version 1 .* run `dlvf map upgrade .*map`"),
        (_set("schema_version", 3), r"schema version 3 is not supported .* update dlvf_ros"),
        (_drop("descriptor_size"), r"field\(s\) \['descriptor_size'\] missing"),
        (_set("descriptor_size", 32.0), r"field 'descriptor_size' is 32.0 \(float\), expected an integer"),
        (_set("descriptor_metric", "manhattan"), r"field 'descriptor_metric' is \"manhattan\" .* one of"),
        (_set("backend", None), r"field 'backend' is null \(NoneType\)"),
        (_manifest_calibration("f", "388"), r"calibration: field 'f' is \"388\" \(str\), expected a number"),
        (_manifest_calibration("cu", float("nan")), r"calibration: field 'cu' is NaN"),
        (_drop("calibration"), r"field\(s\) \['calibration'\] missing"),
        (_set("T_vehicle_camera", np.eye(4).tolist()), r"'T_vehicle_camera' differs from calibration"),
        (_set("input_size", [48]), r"field 'input_size' is \[48\]"),
        (_set("owner", "me"), r"unknown field\(s\) \['owner'\]"),
    ],
)
def test_malformed_manifests_name_the_file_field_and_fix(tmp_path, mutate, message):
    path = small_map(tmp_path / "map")
    manifest = json.loads((path / "manifest.json").read_text())
    mutate(manifest)
    data = json.dumps(manifest).encode()
    (path / "manifest.json").write_bytes(data)
    header = read_record(path, 1)
    header["manifest_sha256"] = hashlib.sha256(data).hexdigest()  # a consistent edit: only the field check fires
    write_record(path, 1, header)
    with pytest.raises(MapStoreError, match=message) as info:
        MapStore.open(path, verify=False)
    assert f"{path}/manifest.json" in str(info.value)
    assert any(fix in str(info.value) for fix in ("re-teach", "upgrade", "update dlvf_ros"))


def _array(key, value):
    def mutate(arrays):
        arrays[key] = value

    return mutate


def _object_points(arrays):
    arrays["points_camera"] = np.array([object()] * len(arrays["keypoints"]), dtype=object)


def _nan_point(arrays):
    arrays["points_camera"] = arrays["points_camera"].copy()
    arrays["points_camera"][3, 1] = np.nan


@pytest.mark.parametrize(
    "mutate, message",
    [
        (_object_points, r"000001.npz: not a readable keyframe archive \(Object arrays cannot be loaded"),
        (_drop("valid"), r"000001.npz: array\(s\) \['valid'\] missing"),
        (_array("keypoints", np.zeros((30, 2))), r"array 'keypoints' is float64 \(30, 2\), expected float32 \(30, 2\)"),
        (_array("points_camera", np.zeros((30, 2))), r"array 'points_camera' is float64 \(30, 2\), expected float64"),
        (_array("descriptors", np.zeros((30, 16), np.uint8)), r"array 'descriptors' is uint8 \(30, 16\), expected"),
        (_nan_point, r"array 'points_camera' holds NaN or inf"),
        (_array("T_map_keyframe", np.full((4, 4), np.inf)), r"array 'T_map_keyframe' holds NaN or inf"),
        (_array("T_map_keyframe", 2 * np.eye(4)), r"array 'T_map_keyframe' is not a rigid transform"),
        (_array("keyframe_id", np.int64(0)), r"array 'keyframe_id' is 0, expected 1"),
        (_array("scores", np.full(30, 7, np.float32)), r"array 'scores' has values outside \[0, 1\]"),
        (_array("extra", np.zeros(3)), r"unknown array\(s\) \['extra'\]"),
    ],
)
def test_malformed_keyframe_files_name_the_file_array_and_fix(tmp_path, mutate, message):
    path = small_map(tmp_path / "map")
    arrays = keyframe_arrays(path, 1)
    mutate(arrays)
    write_keyframe_arrays(path, 1, arrays)
    with pytest.raises(MapStoreError, match=message) as info:
        MapStore.open(path)
    assert "re-teach" in str(info.value)
    store = MapStore.open(path, verify=False)  # the index alone is sound; the keyframe is refused when loaded
    with pytest.raises(MapStoreError, match=message):
        store.keyframe(1)


def test_a_moved_keyframe_pose_in_the_file_alone_disagrees_with_the_index(tmp_path):
    path = small_map(tmp_path / "map")
    arrays = keyframe_arrays(path, 1)
    arrays["T_map_keyframe"] = transforms.from_xyz_rpy(5.0, 0.0, 0.0)
    write_keyframe_arrays(path, 1, arrays)
    with pytest.raises(MapStoreError, match="the index and keyframes/000001.npz disagree on T_map_keyframe"):
        MapStore.open(path)


def test_files_must_stay_inside_the_map_directory(tmp_path):
    path = small_map(tmp_path / "map")
    outside = tmp_path / "elsewhere.npz"
    outside.write_bytes((path / "keyframes/000001.npz").read_bytes())  # the same bytes: the checksum would match
    (path / "keyframes/000001.npz").unlink()
    (path / "keyframes/000001.npz").symlink_to(outside)
    with pytest.raises(MapStoreError, match=r"000001.npz: resolves to .*elsewhere.npz, outside the map directory"):
        MapStore.open(path)
    (path / "keyframes/000001.npz").unlink()
    os.replace(outside, path / "keyframes/000001.npz")
    (path / "images" / "inner.png").write_bytes((path / "images/000000_left.png").read_bytes())
    (path / "images/000000_left.png").unlink()
    (path / "images/000000_left.png").symlink_to("inner.png")  # a symlink inside the map is fine
    assert len(MapStore.open(path)) == 2
    manifest = tmp_path / "manifest.json"
    os.replace(path / "manifest.json", manifest)
    (path / "manifest.json").symlink_to(manifest)
    with pytest.raises(MapStoreError, match="manifest.json: resolves to .* outside the map directory"):
        MapStore.open(path)


def test_map_paths_that_are_not_directories_get_the_right_message(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(MapStoreError, match="map .*file is a file, not a map directory"):
        MapStore.open(tmp_path / "file")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(MapStoreError, match="map .*loop is a symlink loop"):
        MapStore.open(tmp_path / "loop")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(MapStoreError, match="map .*dangling is a broken symlink"):
        MapStore.open(tmp_path / "dangling")
    with pytest.raises(MapStoreError, match="map .*nope does not exist; build one with `dlvf teach"):
        MapStore.open(tmp_path / "nope")
    path = small_map(tmp_path / "map")
    (path / "index.jsonl").unlink()
    with pytest.raises(MapStoreError, match="incomplete map store \\(no index.jsonl\\)"):
        MapStore.open(path)
    path = small_map(tmp_path / "map2")
    unreadable = path / "keyframes/000001.npz"
    real_read_bytes = type(unreadable).read_bytes

    def read_bytes(self):
        if self == unreadable:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(type(unreadable), "read_bytes", read_bytes)
    with pytest.raises(MapStoreError, match=r"000001.npz: permission denied; .*`chmod -R a\+rX .*map2` as its owner"):
        MapStore.open(path)


def test_an_unfinished_last_index_line_is_a_torn_append_only_if_it_starts_the_next_keyframe(tmp_path, capsys):
    from dlvf_ros import cli

    path = small_map(tmp_path / "map", count=3)
    full = (path / "index.jsonl").read_bytes()
    last_line_start = full.rindex(b"\n", 0, len(full) - 1) + 1
    for cut in (1, 40, len(full) - last_line_start - 1):  # killed while appending keyframe 2's line
        (path / "index.jsonl").write_bytes(full[: last_line_start + cut])
        store = MapStore.open(path)
        assert len(store) == 2
        assert any("unfinished line of keyframe 2" in note for note in store.notes())
    assert cli.main(["map", "verify", str(path)]) == 0
    assert "unfinished line of keyframe 2" in capsys.readouterr().out
    (path / "index.jsonl").write_bytes(full[:last_line_start])  # killed before appending: keyframe 2 is unlisted
    assert len(MapStore.open(path)) == 2
    assert any("no index line lists: images/000002_left.png" in note for note in MapStore.open(path).notes())
    (path / "index.jsonl").write_bytes(full + b'{"id":3')  # not the start of any keyframe's line
    with pytest.raises(MapStoreError, match=rf"last 7 bytes .* `truncate -s {len(full)} .*index.jsonl`"):
        MapStore.open(path)
    garbled = bytearray(full[: last_line_start + 40])
    garbled[-3] ^= 0x20
    (path / "index.jsonl").write_bytes(bytes(garbled))
    with pytest.raises(MapStoreError, match="are not a complete keyframe line"):
        MapStore.open(path)


def make_schema_1(path) -> None:
    """Turn a current map into what schema 1 wrote: index.json without checksums, keyframe files without id/images."""
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["schema_version"] = 1
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))
    records = []
    for line_number in range(2, (path / "index.jsonl").read_bytes().count(b"\n") + 1):
        record = read_record(path, line_number)
        arrays = keyframe_arrays(path, record["id"])
        for key in ("keyframe_id", "image_files", "image_sha256"):
            del arrays[key]
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        (path / record["file"]).write_bytes(buffer.getvalue())
        record["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
        records.append(record)
    (path / "index.jsonl").unlink()
    (path / "index.json").write_text(json.dumps({"schema_version": 1, "keyframes": records}))


def test_schema_1_maps_are_refused_until_upgraded(tmp_path, capsys):
    from dlvf_ros import cli

    path = small_map(tmp_path / "map", count=3)
    make_schema_1(path)
    with pytest.raises(MapStoreError, match=f"schema version 1 .* run `dlvf map upgrade {path}`"):
        MapStore.open(path)
    assert cli.main(["map", "upgrade", str(path), "--out", str(tmp_path / "new")]) == 0
    assert cli.main(["map", "upgrade", str(path)]) == 0
    assert "3 keyframes upgraded to map schema version 2" in capsys.readouterr().out
    for upgraded in (path, tmp_path / "new"):
        store = MapStore.open(upgraded)
        assert len(store) == 3 and store.has_images
        for i in range(3):
            assert_same_keyframe(store.keyframe(i), synthetic_keyframe(i, n=30))
            np.testing.assert_array_equal(store.images(i)[0], synthetic_images(i)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map", "new"]  # no staging folder left

    edited = small_map(tmp_path / "edited", count=2)
    make_schema_1(edited)
    index = json.loads((edited / "index.json").read_text())
    index["keyframes"][1]["T_map_keyframe"][3] += 1.0  # schema 1 could not notice this; the upgrade does
    (edited / "index.json").write_text(json.dumps(index))
    before = sorted(p.relative_to(edited) for p in edited.rglob("*"))
    assert cli.main(["map", "upgrade", str(edited)]) == 2
    assert "000001.npz: index.json and this file disagree on T_map_keyframe" in capsys.readouterr().err
    assert sorted(p.relative_to(edited) for p in edited.rglob("*")) == before  # the old map is left as it was
