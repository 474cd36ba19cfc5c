"""CLI wiring: arguments and environment in, files written, summary dict out.

pandas is imported only once the arguments are good, so `--help` stays fast.
"""

import argparse
import logging
import math
import re

from apod_common import exit_codes, layout, logs, settings
from apod_common.errors import StepError

DEFAULT_MAX_REJECT_RATIO = 0.1

EPILOG = """\
environment (an argument wins over its variable):
  APOD_RUN_ID            run id (default "manual")
  APOD_DATA_DIR          data directory (default /data)
  APOD_MAX_REJECT_RATIO  highest tolerated share of rejected entries (default 0.1)
  APOD_LOG_LEVEL         log level on stderr (default INFO)

reads   <data-dir>/raw/<batch>/manifest.json and the chunk files it lists
writes  <data-dir>/staging/<batch>/apod.csv and rejected.csv (atomically)

exit codes: 0 done, 2 bad arguments, 3 bad or missing input or too many rejected
entries, 99 nothing to do (the manifest lists no entries), 1 unexpected error.
The last stdout line is a JSON summary."""


def ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apod-transform",
        description="Validate and normalise the entries extract fetched for one run into a "
        "staged CSV batch; set the bad ones aside with their reason.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run-id", help="the run whose raw files to read (env APOD_RUN_ID)")
    parser.add_argument("--data-dir", help="the shared data directory (env APOD_DATA_DIR)")
    parser.add_argument(
        "--max-reject-ratio",
        type=ratio,
        help="fail when rejected/total exceeds this (env APOD_MAX_REJECT_RATIO, default 0.1)",
    )
    return parser


def _max_reject_ratio(cli_value: float | None) -> float:
    if cli_value is not None:
        return cli_value
    text = settings.env("APOD_MAX_REJECT_RATIO")
    if text is None:
        return DEFAULT_MAX_REJECT_RATIO
    try:
        return ratio(text)
    except argparse.ArgumentTypeError as exc:
        raise StepError(f"APOD_MAX_REJECT_RATIO {exc}", exit_codes.USAGE) from exc


def _run_id(cli_value: str | None) -> str:
    run_id = settings.run_id(cli_value)
    # It is written into every staged row: one printable line only.
    if not run_id.strip() or re.search(r"[\x00-\x1f\x7f]", run_id):
        raise StepError("the run id must be non-empty printable text", exit_codes.USAGE)
    return run_id


def _percent(value: float) -> str:
    return f"{value * 100:g}%"


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    log = logs.setup("transform")
    run_id = _run_id(args.run_id)
    data_dir = settings.data_dir(args.data_dir)
    max_ratio = _max_reject_ratio(args.max_reject_ratio)

    from apod_transform import output, rawinput
    from apod_transform.batch import transform

    raw = rawinput.read_batch(data_dir, run_id)
    log.info("read %d entries listed by %s", len(raw.entries), raw.manifest)
    result = transform(raw, run_id)
    _log_counts(log, result.reason_counts, result.collapsed)

    staged_path = layout.staged_batch(data_dir, run_id)
    rejected_path = layout.rejected_rows(data_dir, run_id)
    output.write_csv(rejected_path, result.rejected)
    if result.reject_ratio > max_ratio:
        if output.remove(staged_path):
            log.info("removed the stale staged batch %s", staged_path)
        raise StepError(
            f"{len(result.rejected)} of {result.total} rows rejected "
            f"(> {_percent(max_ratio)}); see {rejected_path}",
            exit_codes.BAD_INPUT,
        )
    sha256 = output.write_csv(staged_path, result.staged)
    dates = result.staged["date"]
    log.info("staged %d rows in %s", len(dates), staged_path)
    return {
        "run_id": run_id,
        "staged": str(staged_path),
        "rejected_file": str(rejected_path),
        "rows": len(dates),
        "rejected": len(result.rejected),
        "first_date": dates.iloc[0] if len(dates) else None,
        "last_date": dates.iloc[-1] if len(dates) else None,
        "sha256": sha256,
    }


def _log_counts(log: logging.Logger, counts: dict[str, int], collapsed: int) -> None:
    for reason, count in counts.items():
        log.warning("rejected %d: %s", count, reason)
    if collapsed:
        log.info("dropped %d identical duplicate entries", collapsed)
    if not counts:
        log.info("rejected none")
