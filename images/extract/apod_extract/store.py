"""Chunk files under raw/<batch>/: their names, what an earlier attempt left, strays."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from apod_common import files
from apod_extract.client import entry_count

CHUNK_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}\.json$")


def chunk_name(start: dt.date, end: dt.date) -> str:
    return f"{start.isoformat()}_{end.isoformat()}.json"


def utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def valid_chunk(path: Path) -> bytes | None:
    """The bytes of an earlier attempt's chunk when they are a JSON array, else None."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data if entry_count(data) is not None else None


def kept_chunks(directory: Path) -> dict[tuple[dt.date, dt.date], bytes]:
    """Every valid chunk file an earlier attempt left, by the day range its name gives."""
    kept = {}
    for path in sorted(directory.iterdir()):
        if not CHUNK_FILE.match(path.name):
            continue
        first, _, last = path.stem.partition("_")
        try:
            span = (dt.date.fromisoformat(first), dt.date.fromisoformat(last))
        except ValueError:  # 2024-02-30 and the like: not a file this step wrote
            continue
        data = valid_chunk(path)
        if data is not None and span[0] <= span[1]:
            kept[span] = data
    return kept


def modified_at(path: Path) -> dt.datetime:
    # Chunk files carry their fetch time as mtime (written so), so a resumed run without
    # the earlier manifest still reports when the bytes were fetched.
    return dt.datetime.fromtimestamp(int(path.stat().st_mtime), dt.UTC)


def strays(directory: Path, keep: set[str]) -> list[Path]:
    """Chunk files of another range under the same run id, and dead temp files."""
    others = [p for p in directory.iterdir() if CHUNK_FILE.match(p.name) and p.name not in keep]
    return sorted([*others, *files.temp_files(directory)])
