"""`dlvf map info|verify|reextract|upgrade MAP`: inspect a map store, check all of it, re-extract its features, or
convert a schema-1 map. Errors (MapStoreError naming the file and field) reach `dlvf`'s one-line error handler."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dlvf_ros.localization.map_store import MapStore, MapStoreError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dlvf_ros.localization.teach_cli import add_backend_arguments

    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    info = sub.add_parser("info", help="manifest summary, keyframe count and path length")
    info.add_argument("map", type=Path)
    info.add_argument("--json", action="store_true", help="print the manifest and summary as JSON")
    verify = sub.add_parser(
        "verify", help="check every file's checksum and field, and the keyframes against the index (exit 1 if bad)"
    )
    verify.add_argument("map", type=Path)
    upgrade = sub.add_parser("upgrade", help="check a schema-1 map and convert it to the current schema")
    upgrade.add_argument("map", type=Path)
    upgrade.add_argument("--out", type=Path, default=None, help="write the new map here instead of replacing MAP")
    reextract = sub.add_parser("reextract", help="re-extract features from the stored images with another backend")
    reextract.add_argument("map", type=Path)
    add_backend_arguments(reextract)
    reextract.add_argument("--out", type=Path, default=None, help="write a new map here instead of replacing MAP")


def _summary(store: MapStore) -> dict:
    steps = np.diff(store.positions_m, axis=0)
    return {
        "path": str(store.path),
        "keyframes": len(store),
        "path_length_m": float(np.linalg.norm(steps, axis=1).sum()),
        "has_images": store.has_images,
        "has_ground_truth": len(store) > 0 and store.keyframe(0).T_world_keyframe is not None,
    }


def run(args: argparse.Namespace) -> int:
    if args.action == "info":
        return _info(MapStore.open(args.map), args.json)
    if args.action == "verify":
        return _verify(args.map)
    from dlvf_ros.localization.reextract import reextract, reextract_in_place, upgrade

    if args.action == "upgrade":
        store = upgrade(args.map, args.out)
        print(f"{store.path}: {len(store)} keyframes upgraded to map schema version {store.manifest['schema_version']}")
        return 0
    from dlvf_ros.localization.teach_cli import backend_from_arguments

    backend = backend_from_arguments(args)
    if args.out is None:
        store = reextract_in_place(args.map, backend)
    else:
        store = reextract(MapStore.open(args.map), args.out, backend)
    print(f"{store.path}: {len(store)} keyframes re-extracted with {backend.name}")
    return 0


def _info(store: MapStore, as_json: bool) -> int:
    """Print the manifest summary of a map that `MapStore.open` checked in full."""
    summary = _summary(store)
    if as_json:
        print(json.dumps({"summary": summary, "manifest": store.manifest}, indent=2))
        return 0
    m, rig = store.manifest, store.rig
    rows = [
        ("map", summary["path"]),
        ("keyframes", summary["keyframes"]),
        ("path length", f"{summary['path_length_m']:.1f} m"),
        ("backend", f"{m['backend']} ({m['descriptor_metric']}, {m['descriptor_size']}-D)"),
        ("features", json.dumps(m["backend_signature"].get("model_sha256") or m["backend_signature"].get("params"))),
        (
            "calibration",
            f"{rig.width}x{rig.height} f {rig.f:.3f} cu {rig.cu:.3f} cv {rig.cv:.3f} baseline {rig.baseline:.4f} m",
        ),
        ("images stored", summary["has_images"]),
        ("ground truth", summary["has_ground_truth"]),
        ("software", m["software_version"]),
        ("created", m["created_utc"]),
    ]
    for key, value in rows:
        print(f"{key:>14}: {value}")
    return 0


def _verify(path: Path) -> int:
    """Print one BAD line per problem (a map that cannot be opened is one) and the harmless notes; exit 1 if bad."""
    try:
        store = MapStore.open(path, verify=False)
    except MapStoreError as exc:
        print(f"BAD  {exc}")
        print(f"{path}: cannot be opened, 1 problem")
        return 1
    problems = store.verify()
    for line in problems:
        print(f"BAD  {line}")
    for line in store.notes():
        print(f"note: {line} (harmless)")
    print(f"{store.path}: {len(store)} keyframes, {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 0 if not problems else 1
