"""staging/<batch>/: the files transform writes and load reads, where they are and what
the staged batch's header must be (standard library only: `load postgres` hands the file
to COPY as it is). Their content, as pandas frames, is staging_frames'.

apod.csv      the validated batch: STAGED_COLUMNS (in any order for a reader), one row per
              date, in the one CSV dialect (csvfile).
rejected.csv  the entries set aside: REJECTED_COLUMNS (date as given, reason, the entry
              as JSON); for people, no step reads it.
"""

from dataclasses import dataclass
from pathlib import Path

from apod_common import exit_codes, layout
from apod_common.errors import NothingToDo, StepError
from apod_common.schema import CSV_ENCODING, STAGED_COLUMNS

# Enough to get past the header and see whether a first record follows it.
_PEEK_BYTES = 64 * 1024
_SHOWN_CHARS = 40


@dataclass(frozen=True)
class StagedBatch:
    path: Path
    columns: tuple[str, ...]  # in the file's order


def locate(data_dir: Path, run_id: str) -> StagedBatch:
    """The run's staged batch; exit 3 if it is missing or malformed, 99 if it has no rows."""
    path = layout.staged_batch(data_dir, run_id)
    try:
        with path.open("rb") as handle:
            head = handle.read(_PEEK_BYTES)
    except FileNotFoundError:
        raise StepError(
            f"no staged batch for run {run_id}: {path} does not exist (did transform run?)",
            exit_codes.BAD_INPUT,
        ) from None
    except OSError as exc:
        raise StepError(f"cannot read {path}: {exc.strerror}", exit_codes.BAD_INPUT) from None
    header_line, newline, rest = head.partition(b"\n")
    if not newline and len(head) == _PEEK_BYTES:
        raise StepError(
            f"{path}: no header line in the first {_PEEK_BYTES} bytes", exit_codes.BAD_INPUT
        )
    columns = parse_header(header_line, path)
    if not rest.strip():
        raise NothingToDo(f"staged batch {path} has no rows")
    return StagedBatch(path, columns)


def parse_header(line: bytes, path: Path) -> tuple[str, ...]:
    """The header's column names; they must be exactly STAGED_COLUMNS, in any order."""
    try:
        text = line.decode(CSV_ENCODING).rstrip("\r")
    except UnicodeDecodeError:
        raise StepError(f"{path}: header is not {CSV_ENCODING}", exit_codes.BAD_INPUT) from None
    columns = tuple(text.split(",")) if text else ()
    if sorted(columns) != sorted(STAGED_COLUMNS):
        missing = [c for c in STAGED_COLUMNS if c not in columns]
        extra = [c for c in columns if c not in STAGED_COLUMNS]
        raise StepError(
            f"{path}: unexpected header (missing {missing or 'none'}, "
            f"unexpected {[c[:_SHOWN_CHARS] for c in extra][:5] or 'none'})",
            exit_codes.BAD_INPUT,
        )
    return columns
