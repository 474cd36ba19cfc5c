"""`csv`: merge the staged batch into the dataset CSV, rewriting it only when it changes."""

import logging
from pathlib import Path

import pandas as pd

from apod_common import csvfile, exit_codes, files, locks, staging_frames
from apod_common.errors import StepError
from apod_common.schema import CONTENT_COLUMNS
from apod_common.staging import StagedBatch
from apod_load.merge import merge

log = logging.getLogger("load")


def load_csv(batch: StagedBatch, output: Path, lock_timeout: float) -> dict:
    new = staging_frames.read_batch(batch)
    files.make_dirs(output.parent)
    # One merge at a time per dataset: read-merge-write must not interleave.
    with locks.exclusive(output.parent, lock_timeout, what=f"the directory of {output.name}"):
        remove_leftovers(output)
        before = output.read_bytes() if output.exists() else None
        existing = read_dataset(before, output) if before is not None else None
        merged = merge(existing, new)
        data = csvfile.to_csv_bytes(merged.frame, CONTENT_COLUMNS)
        changed = data != before
        if changed:
            files.atomic_write(output, data)
            log.info("wrote %s (%d rows, %d bytes)", output, len(merged.frame), len(data))
        else:
            log.info("%s already holds this batch: left untouched", output)
    return {
        "output": str(output),
        "rows": len(merged.frame),
        "added": merged.added,
        "updated": merged.updated,
        "unchanged": merged.unchanged,
        "sha256": files.sha256(data),
        "changed": changed,
    }


def read_dataset(data: bytes, path: Path) -> pd.DataFrame:
    try:
        frame = csvfile.read_csv_bytes(data)
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


def remove_leftovers(path: Path) -> None:
    """Delete the temp files of writers that died mid-write (SIGKILL, OOM, node lost).

    Every writer of `path` writes under the lock the caller holds now, so none of these
    belongs to a live writer.
    """
    for leftover in files.temp_files(path.parent, path):
        if files.remove(leftover):
            log.warning("removed %s, left by a writer that did not finish", leftover)
