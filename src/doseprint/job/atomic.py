"""Files written whole or not at all: a temporary file beside the target, fsynced, then
renamed over it, and the folder's entry made durable. Used for job folders, calibrations
and site keys alike."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from doseprint.errors import DiskError

__all__ = ["fsync_dir", "write_file_atomic"]


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: some file systems refuse)."""
    # A rename is durable only once its directory entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_file_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename; with ``mode`` the
    file has those permissions before any byte is written (0o600 for a private key)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            if mode is not None:
                os.chmod(tmp, mode)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        fsync_dir(path.parent)
    except OSError as exc:
        raise DiskError(f"{path}: cannot be written: {exc.strerror or exc}") from exc
