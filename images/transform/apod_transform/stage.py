"""The transform run: read the raw batch, transform it, write the staging files."""

import logging
from pathlib import Path

from apod_common import exit_codes, files, layout, staging_frames
from apod_common.errors import StepError
from apod_transform.batch import transform
from apod_transform.rawinput import read_raw

log = logging.getLogger("transform")

TOP_REASONS = 5


def stage(data_dir: Path, run_id: str, max_reject_ratio: float) -> dict:
    raw = read_raw(data_dir, run_id)
    log.info("read %d entries listed by %s", len(raw.entries), raw.manifest)
    result = transform(raw, run_id)
    _log_counts(result.reason_counts, result.collapsed)

    staged_path = layout.staged_batch(data_dir, run_id)
    rejected_path = layout.rejected_rows(data_dir, run_id)
    staging_frames.write_rejected(rejected_path, result.rejected)
    if result.reject_ratio > max_reject_ratio:
        if files.remove(staged_path):
            log.info("removed the stale staged batch %s", staged_path)
        raise StepError(
            f"{len(result.rejected)} of {result.total} rows rejected "
            f"(> {_percent(max_reject_ratio)}); see {rejected_path}",
            exit_codes.BAD_INPUT,
        )
    sha256 = staging_frames.write_batch(staged_path, result.staged)
    dates = result.staged["date"]
    log.info("staged %d rows in %s", len(dates), staged_path)
    return {
        "run_id": run_id,
        "staged": str(staged_path),
        "rejected_file": str(rejected_path),
        "rows": len(dates),
        "rejected": len(result.rejected),
        # The most frequent reasons (the asset events show them without opening the file).
        "reject_reasons": dict(
            sorted(result.reason_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
        ),
        "first_date": dates.iloc[0] if len(dates) else None,
        "last_date": dates.iloc[-1] if len(dates) else None,
        "sha256": sha256,
    }


def _percent(value: float) -> str:
    return f"{value * 100:g}%"


def _log_counts(counts: dict[str, int], collapsed: int) -> None:
    for reason, count in counts.items():
        log.warning("rejected %d: %s", count, reason)
    if collapsed:
        log.info("dropped %d identical duplicate entries", collapsed)
    if not counts:
        log.info("rejected none")
