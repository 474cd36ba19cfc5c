"""raw/<batch>/manifest.json: what extract fetched, written by extract, read by transform.

The one definition of the file: extract builds a `Manifest` and `write`s it; transform
`read`s it back into the same type, and every rule the file must follow is checked there.
A manifest that breaks one stops the reader with exit 3 (bad input): a half-understood
batch would silently lose entries.

On disk (JSON, keys sorted, two-space indent, UTF-8, newline at the end):
    {"run_id", "api_url", "chunk_days",
     "range": {"start", "end", "days"},
     "chunks": [{"file", "start", "end", "entries", "bytes", "sha256", "fetched_at"}, ...],
     "totals": {"chunks", "entries", "bytes"}}
"""

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apod_common import exit_codes, files
from apod_common.errors import StepError


@dataclass(frozen=True)
class Chunk:
    """One answer of the API, kept untouched in `file` beside the manifest."""

    file: str
    start: dt.date
    end: dt.date
    entries: int
    bytes: int
    sha256: str
    fetched_at: str  # ISO 8601 with a zone, as written; transform copies it into every row


@dataclass(frozen=True)
class Manifest:
    run_id: str
    start: dt.date
    end: dt.date
    api_url: str  # without credentials
    chunk_days: int
    chunks: tuple[Chunk, ...]

    @property
    def entries(self) -> int:
        return sum(c.entries for c in self.chunks)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "range": {
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "days": (self.end - self.start).days + 1,
            },
            "api_url": self.api_url,
            "chunk_days": self.chunk_days,
            "chunks": [
                {
                    "file": c.file,
                    "start": c.start.isoformat(),
                    "end": c.end.isoformat(),
                    "entries": c.entries,
                    "bytes": c.bytes,
                    "sha256": c.sha256,
                    "fetched_at": c.fetched_at,
                }
                for c in self.chunks
            ],
            "totals": {
                "chunks": len(self.chunks),
                "entries": self.entries,
                "bytes": sum(c.bytes for c in self.chunks),
            },
        }

    def to_bytes(self) -> bytes:
        text = json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False)
        return (text + "\n").encode("utf-8")


def write(path: Path, manifest: Manifest) -> None:
    files.atomic_write(path, manifest.to_bytes())


def bad_input(reason: str) -> StepError:
    return StepError(reason, exit_codes.BAD_INPUT)


def _refuse_constant(name: str) -> Any:
    # NaN/Infinity are not JSON; accepting them would smuggle floats in as "missing".
    raise ValueError(f"non-standard JSON constant {name}")


def parse_json(data: bytes, what: str) -> Any:
    """Strict JSON (UTF-8, no NaN/Infinity); exit 3 naming `what` otherwise."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise bad_input(f"{what} is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except ValueError as exc:
        raise bad_input(f"{what} is not valid JSON: {exc}") from exc


def read(path: Path) -> Manifest:
    """The manifest at `path`, every rule checked; exit 3 with the first broken one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise  # what a missing manifest means is the caller's to say
    except OSError as exc:
        raise bad_input(f"manifest {path} cannot be read: {exc.strerror}") from exc
    doc = parse_json(data, f"manifest {path}")
    if not isinstance(doc, dict) or not isinstance(doc.get("chunks"), list):
        raise bad_input(f"manifest {path} has no list of chunks")
    where = f"manifest {path}"
    span, totals = _object(doc, "range", where), _object(doc, "totals", where)
    chunks = tuple(_chunk(record, number, where) for number, record in enumerate(doc["chunks"], 1))
    manifest = Manifest(
        run_id=_text(doc, "run_id", where),
        start=_date(span, "start", f"{where} range"),
        end=_date(span, "end", f"{where} range"),
        api_url=_text(doc, "api_url", where),
        chunk_days=_count(doc, "chunk_days", where),
        chunks=chunks,
    )
    declared = _count(totals, "entries", f"{where} totals")
    if declared != manifest.entries:
        raise bad_input(f"{where} says {declared} entries, its chunks list {manifest.entries}")
    return manifest


def _object(doc: dict, key: str, where: str) -> dict:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise bad_input(f"{where} has no {key} object")
    return value


def _text(doc: dict, key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise bad_input(f"{where} has no {key} text")
    return value


def _count(doc: dict, key: str, where: str) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise bad_input(f"{where} has a bad {key} count")
    return value


def _date(doc: dict, key: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(doc.get(key))
    except (TypeError, ValueError):
        raise bad_input(f"{where} has no valid {key} date") from None


def _chunk(record: Any, number: int, where: str) -> Chunk:
    if not isinstance(record, dict):
        raise bad_input(f"{where} chunk #{number} is not an object")
    name = record.get("file")
    # A bare file name only: a manifest must not point the reader outside its directory.
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
        raise bad_input(f"{where} chunk #{number} has no usable file name")
    where = f"{where} chunk {name}"
    digest = record.get("sha256")
    if not isinstance(digest, str) or not digest.strip():
        raise bad_input(f"{where} has no sha256")
    fetched_at = record.get("fetched_at")
    try:
        dt.datetime.fromisoformat(fetched_at)
    except (TypeError, ValueError):
        raise bad_input(f"{where} has no valid fetched_at timestamp") from None
    return Chunk(
        file=name,
        start=_date(record, "start", where),
        end=_date(record, "end", where),
        entries=_count(record, "entries", where),
        bytes=_count(record, "bytes", where),
        sha256=digest.strip().lower(),
        fetched_at=fetched_at,
    )
