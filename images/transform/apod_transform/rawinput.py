"""Read what extract wrote: the manifest and its chunk files, each checked against its sha256.

Anything wrong with the files themselves (missing, unreadable, altered, not JSON) stops the
step with BAD_INPUT: a half-read batch would silently lose entries. Odd *entries* inside
sound files are not this module's business; they become rejected rows later.
"""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apod_common import exit_codes, layout
from apod_common.errors import NothingToDo, StepError


@dataclass(frozen=True)
class RawBatch:
    """Every entry of the run in chunk order then position order, with its chunk's fetched_at."""

    manifest: Path
    entries: list[Any] = field(default_factory=list)
    extracted_at: list[str] = field(default_factory=list)


def bad_input(reason: str) -> StepError:
    return StepError(reason, exit_codes.BAD_INPUT)


def _refuse_constant(name: str) -> Any:
    # NaN/Infinity are not JSON; accepting them would smuggle floats in as "missing".
    raise ValueError(f"non-standard JSON constant {name}")


def parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise bad_input(f"{what} is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except ValueError as exc:
        raise bad_input(f"{what} is not valid JSON: {exc}") from exc


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _chunk_file(raw_dir: Path, chunk: Any, number: int) -> tuple[Path, str, str]:
    """Check one manifest chunk record; return its path, sha256 and fetched_at."""
    if not isinstance(chunk, dict):
        raise bad_input(f"manifest chunk #{number} is not an object")
    name = chunk.get("file")
    # A bare file name only: a manifest must not point the step outside its raw directory.
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
        raise bad_input(f"manifest chunk #{number} has no usable file name")
    digest = chunk.get("sha256")
    if not isinstance(digest, str) or not digest:
        raise bad_input(f"manifest chunk {name} has no sha256")
    fetched_at = chunk.get("fetched_at")
    try:
        dt.datetime.fromisoformat(fetched_at)
    except (TypeError, ValueError) as exc:
        raise bad_input(f"manifest chunk {name} has no valid fetched_at timestamp") from exc
    return raw_dir / name, digest.strip().lower(), fetched_at


def _read_chunk(path: Path, digest: str, declared: Any) -> list[Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise bad_input(f"chunk file {path.name} is missing from {path.parent}") from exc
    except OSError as exc:
        raise bad_input(f"chunk file {path.name} cannot be read: {exc.strerror}") from exc
    if hashlib.sha256(data).hexdigest() != digest:
        raise bad_input(f"chunk file {path.name} does not match its sha256 in the manifest")
    entries = parse_json(data, f"chunk file {path.name}")
    if not isinstance(entries, list):
        raise bad_input(f"chunk file {path.name} is not a JSON array")
    if _is_count(declared) and declared != len(entries):
        raise bad_input(
            f"chunk file {path.name} holds {len(entries)} entries, the manifest says {declared}"
        )
    return entries


def read_batch(data_dir: Path, run_id: str) -> RawBatch:
    """Load the run's raw entries; NothingToDo when extract found none."""
    manifest = layout.manifest_path(data_dir, run_id)
    try:
        data = manifest.read_bytes()
    except FileNotFoundError as exc:
        raise bad_input(f"no manifest at {manifest}: run extract for run id {run_id!r}") from exc
    except OSError as exc:
        raise bad_input(f"manifest {manifest} cannot be read: {exc.strerror}") from exc
    doc = parse_json(data, f"manifest {manifest}")
    if not isinstance(doc, dict) or not isinstance(doc.get("chunks"), list):
        raise bad_input(f"manifest {manifest} has no list of chunks")
    declared = doc.get("entries")
    if declared is not None and not _is_count(declared):
        raise bad_input(f"manifest {manifest} has a bad entry count")

    batch = RawBatch(manifest=manifest)
    for number, chunk in enumerate(doc["chunks"], start=1):
        path, digest, fetched_at = _chunk_file(manifest.parent, chunk, number)
        entries = _read_chunk(path, digest, chunk.get("entries"))
        batch.entries.extend(entries)
        batch.extracted_at.extend([fetched_at] * len(entries))

    if declared is not None and declared != len(batch.entries):
        raise bad_input(
            f"manifest {manifest} says {declared} entries, its chunks hold {len(batch.entries)}"
        )
    if not batch.entries:
        span = f"{doc.get('start')}..{doc.get('end')}"
        raise NothingToDo(f"manifest {manifest} lists no entries for {span}")
    return batch
