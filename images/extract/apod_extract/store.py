"""Files under raw/<batch>/: chunk payloads written atomically, and the manifest."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from apod_extract.client import entry_count

CHUNK_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}\.json$")
TEMP_SUFFIX = ".tmp"


def chunk_name(start: dt.date, end: dt.date) -> str:
    return f"{start.isoformat()}_{end.isoformat()}.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def atomic_write(path: Path, data: bytes, mtime: dt.datetime | None = None) -> None:
    """Readers see the old file or the complete new one, never a partial write."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o664)  # mkstemp's 0600 would hide the file from the other steps' group
        if mtime is not None:
            stamp = mtime.timestamp()
            os.utime(temp, (stamp, stamp))
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def valid_chunk(path: Path) -> bytes | None:
    """The bytes of an earlier attempt's chunk when they are a JSON array, else None."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data if entry_count(data) is not None else None


def modified_at(path: Path) -> dt.datetime:
    # Chunk files carry their fetch time as mtime (atomic_write), so a resumed run
    # without the earlier manifest still reports when the bytes were fetched.
    return dt.datetime.fromtimestamp(int(path.stat().st_mtime), dt.UTC)


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def strays(directory: Path, keep: set[str]) -> list[Path]:
    """Chunk files of another range under the same run id, and dead temp files."""
    return sorted(
        p
        for p in directory.iterdir()
        if (CHUNK_FILE.match(p.name) and p.name not in keep)
        or (p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX))
    )
