"""Atomic file writes: a reader never sees a half-written file, and a killed writer leaves the old one.

Write to a temporary file in the same directory, flush and fsync it, then `os.replace` it over the target
(atomic on POSIX), and fsync the directory so the rename survives a power cut. Files get the mode a plain `open()`
would give them (0666 less the umask); directories are built in a staging folder and renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Context manager yielding a temp file that replaces `path` only if the block completes."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = _create_temp_file(path)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_directory(path.parent)


def _create_temp_file(path: Path) -> tuple[int, str]:
    """A new hidden `.NAME.XXXX.tmp` next to `path`, created with mode 0666 so the kernel applies the umask (and
    any default ACL) exactly as for `open(path, "w")`; `tempfile.mkstemp` would make it 0600 for good."""
    while True:
        tmp_name = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp_name
        except FileExistsError:
            continue


@contextlib.contextmanager
def replacing_directory(target: str | Path) -> Iterator[Path]:
    """Build a directory that replaces `target` only if the block completes.

    Yields a path (not yet created; create it with the permissions it should keep) inside a hidden staging folder
    next to `target`. On success the old `target`, if any, is swapped out and removed; on an exception or an
    interrupt the staging folder is removed and `target` is untouched. A process killed mid-way leaves only the
    hidden `.NAME.*.partial` folder (the old `target` inside it if killed between the two renames).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        built = staging / target.name
        yield built
        if not built.is_dir():
            raise FileNotFoundError(f"replacing_directory: nothing was built at {built}")
        if os.path.lexists(target):
            os.replace(target, staging / ".replaced")
        os.replace(built, target)
        fsync_directory(target.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fsync_directory(directory: str | Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def npz_bytes(**arrays) -> bytes:
    """Serialise numpy arrays to .npz bytes (no pickle: object arrays are refused on load)."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
