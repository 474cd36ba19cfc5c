"""`csv`: merge the staged batch into the dataset CSV, rewriting it only when it changes."""

import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from apod_common import exit_codes
from apod_common.errors import NothingToDo, StepError
from apod_common.schema import CONTENT_COLUMNS, MEDIA_TYPES, REQUIRED_FIELDS
from apod_load.csvformat import read_csv_bytes, to_csv_bytes
from apod_load.merge import merge
from apod_load.staged import StagedBatch

log = logging.getLogger("load")

_LOCK_POLL_SECONDS = 0.2
_DEFAULT_MODE = 0o644


def load_csv(batch: StagedBatch, output: Path, lock_timeout: float) -> dict:
    new = read_batch(batch)
    with exclusive(output.parent, lock_timeout):
        remove_leftovers(output)
        before = output.read_bytes() if output.exists() else None
        existing = read_dataset(before, output) if before is not None else None
        merged = merge(existing, new)
        data = to_csv_bytes(merged.frame, CONTENT_COLUMNS)
        changed = data != before
        if changed:
            atomic_write(output, data)
            log.info("wrote %s (%d rows, %d bytes)", output, len(merged.frame), len(data))
        else:
            log.info("%s already holds this batch: left untouched", output)
    return {
        "output": str(output),
        "rows": len(merged.frame),
        "added": merged.added,
        "updated": merged.updated,
        "unchanged": merged.unchanged,
        "sha256": hashlib.sha256(data).hexdigest(),
        "changed": changed,
    }


def read_batch(batch: StagedBatch):
    """The batch's content columns, checked against the same rules the table enforces,
    so that the CSV never accepts a batch that the Postgres load would refuse."""
    import pandas as pd

    try:
        frame = read_csv_bytes(batch.path.read_bytes(), usecols=list(CONTENT_COLUMNS))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise StepError(
            f"{batch.path} is not a readable CSV: {reason}", exit_codes.BAD_INPUT
        ) from None
    if frame.empty:
        raise NothingToDo(f"staged batch {batch.path} has no rows")

    problems = []
    for field in REQUIRED_FIELDS:
        missing = int((frame[field] == "").sum())
        if missing:
            problems.append(f"{missing} row(s) without {field}")
    dates = pd.to_datetime(frame["date"], format="%Y-%m-%d", errors="coerce")
    bad_dates = frame.loc[dates.isna() & (frame["date"] != ""), "date"]
    if len(bad_dates):
        problems.append(f"{len(bad_dates)} bad date(s), e.g. {bad_dates.iloc[0][:40]!r}")
    present = frame["media_type"] != ""
    bad_media = frame.loc[present & ~frame["media_type"].isin(MEDIA_TYPES), "media_type"]
    if len(bad_media):
        problems.append(
            f"{len(bad_media)} row(s) with media_type not in {'/'.join(MEDIA_TYPES)}, "
            f"e.g. {bad_media.iloc[0][:40]!r}"
        )
    if problems:
        raise StepError(f"{batch.path}: {'; '.join(problems)}", exit_codes.BAD_INPUT)
    return frame


def read_dataset(data: bytes, path: Path):
    import pandas as pd

    try:
        frame = read_csv_bytes(data)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise StepError(
            f"existing {path} is not a readable CSV: {reason}", exit_codes.BAD_INPUT
        ) from None
    if tuple(frame.columns) != CONTENT_COLUMNS:
        raise StepError(
            f"existing {path} has columns {list(frame.columns)[:12]}, "
            f"expected {list(CONTENT_COLUMNS)}",
            exit_codes.BAD_INPUT,
        )
    return frame


@contextlib.contextmanager
def exclusive(directory: Path, timeout: float) -> Iterator[None]:
    """One merge at a time per dataset directory (read-merge-write must not interleave).

    An flock on the directory itself leaves no lock file behind, and the kernel drops it
    when the process dies.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StepError(
                        f"{directory} stayed locked by another run for {timeout:g}s",
                        exit_codes.UPSTREAM_UNAVAILABLE,
                    ) from None
                time.sleep(_LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def temp_prefix(path: Path) -> str:
    return f".{path.name}."


def remove_leftovers(path: Path) -> None:
    """Delete the temp files of writers that died mid-write (SIGKILL, OOM, node lost).

    Only `atomic_write` makes these names, and it does so under the directory lock that
    the caller holds now, so none of them belongs to a live writer.
    """
    for leftover in path.parent.glob(f"{temp_prefix(path)}*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            log.warning("removed %s, left by a writer that did not finish", leftover)


def atomic_write(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a part; a crash leaves the old one."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = _DEFAULT_MODE
    fd, temp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
