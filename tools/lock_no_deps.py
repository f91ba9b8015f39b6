"""Append hash-pinned lines for packages that install without their declared dependencies to the lock (`make lock`).

pip-compile pins every dependency that a package declares. The packages in requirements/requirements-no-deps.in
declare dependencies that dlvf_ros never imports (each line there says why), so they are pinned here instead, from
the hash of the wheel that `pip download --no-deps` fetches. `make venv` installs the lock with `--no-deps`.

    python tools/lock_no_deps.py requirements/requirements-no-deps.in requirements/requirements.lock
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> list[tuple[str, str]]:
    pins = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        if match is None:
            raise SystemExit(f"{path}:{number}: expected an exact pin NAME==VERSION, got {line!r}")
        pins.append((match.group(1), match.group(2)))
    return pins


def _locked_names(lock: Path) -> set[str]:
    return {_canonical(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", lock.read_text(), re.M)}


def main(no_deps_in: Path, lock: Path) -> int:
    pins = _pins(no_deps_in)
    clash = sorted(name for name, _ in pins if _canonical(name) in _locked_names(lock))
    if clash:
        raise SystemExit(f"{no_deps_in}: {clash} already pinned in {lock} by pip-compile; pin each package in one file")
    lines = []
    for name, version in pins:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", tmp]
                + [f"{name}=={version}"],
                check=True,
            )
            hashes = sorted(hashlib.sha256(wheel.read_bytes()).hexdigest() for wheel in Path(tmp).iterdir())
        lines.append(f"{name}=={version} \\")
        lines += [
            f"    --hash=sha256:{digest}" + (" \\" if i < len(hashes) - 1 else "") for i, digest in enumerate(hashes)
        ]
        lines.append(f"    # via -r {no_deps_in.as_posix()} (without its declared dependencies)")
    staged = lock.with_name(f".{lock.name}.tmp")
    staged.write_text(lock.read_text() + "\n".join(lines) + "\n")
    os.replace(staged, lock)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
