"""Atomic CSV writes in the pipeline's one dialect (apod_common.schema)."""

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import pandas as pd

from apod_common.schema import CSV_ENCODING, CSV_LINE_TERMINATOR


def csv_bytes(frame: pd.DataFrame) -> bytes:
    text = frame.to_csv(index=False, lineterminator=CSV_LINE_TERMINATOR, na_rep="")
    return text.encode(CSV_ENCODING)


def write_atomic(path: Path, data: bytes) -> str:
    """Write via a temp file in the same directory, fsync, rename; return the sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes 0600; the load steps may run under another uid of group 0.
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)
    return hashlib.sha256(data).hexdigest()


def write_csv(path: Path, frame: pd.DataFrame) -> str:
    return write_atomic(path, csv_bytes(frame))


def remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    _fsync_dir(path.parent)
    return True


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
