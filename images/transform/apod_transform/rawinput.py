"""Read what extract wrote: the manifest (apod_common.manifest) and the chunk files it
lists, each checked against its sha256 and its entry count.

Anything wrong with the files themselves (missing, unreadable, altered, not JSON) stops the
step with BAD_INPUT: a half-read batch would silently lose entries. Odd *entries* inside
sound files are not this module's business; they become rejected rows later.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apod_common import files, layout, manifest
from apod_common.errors import NothingToDo
from apod_common.manifest import Chunk, bad_input, parse_json


@dataclass(frozen=True)
class RawBatch:
    """Every entry of the run in chunk order then position order, with its chunk's fetched_at."""

    manifest: Path
    entries: list[Any] = field(default_factory=list)
    extracted_at: list[str] = field(default_factory=list)


def _read_chunk(raw_dir: Path, chunk: Chunk) -> list[Any]:
    path = raw_dir / chunk.file
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise bad_input(f"chunk file {path.name} is missing from {path.parent}") from exc
    except OSError as exc:
        raise bad_input(f"chunk file {path.name} cannot be read: {exc.strerror}") from exc
    if files.sha256(data) != chunk.sha256:
        raise bad_input(f"chunk file {path.name} does not match its sha256 in the manifest")
    entries = parse_json(data, f"chunk file {path.name}")
    if not isinstance(entries, list):
        raise bad_input(f"chunk file {path.name} is not a JSON array")
    if chunk.entries != len(entries):
        raise bad_input(
            f"chunk file {path.name} holds {len(entries)} entries, the manifest says "
            f"{chunk.entries}"
        )
    return entries


def read_raw(data_dir: Path, run_id: str) -> RawBatch:
    """Load the run's raw entries; NothingToDo when extract found none."""
    path = layout.manifest_path(data_dir, run_id)
    try:
        fetched = manifest.read(path)
    except FileNotFoundError as exc:
        raise bad_input(f"no manifest at {path}: run extract for run id {run_id!r}") from exc
    batch = RawBatch(manifest=path)
    for chunk in fetched.chunks:
        entries = _read_chunk(path.parent, chunk)
        batch.entries.extend(entries)
        batch.extracted_at.extend([chunk.fetched_at] * len(entries))
    if not batch.entries:
        raise NothingToDo(f"manifest {path} lists no entries for {fetched.start}..{fetched.end}")
    return batch
