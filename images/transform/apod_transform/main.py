"""CLI wiring: arguments and environment in, summary dict out.

The CLI boundary: the work (and pandas with it) is imported only once the arguments are
good, so that `--help` and usage errors stay fast.
"""

import argparse
import math

from apod_common import exit_codes, runner, settings
from apod_common.errors import StepError

DEFAULT_MAX_REJECT_RATIO = 0.1

EPILOG = """\
environment (an argument wins over its variable):
  APOD_RUN_ID            run id when --run-id is not given
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
    parser = runner.parser(
        "transform",
        "Validate and normalise the entries extract fetched for one run into a staged CSV "
        "batch; set the bad ones aside with their reason.",
        EPILOG,
    )
    runner.add_run_id(parser, "the run whose raw files to read")
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


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    run_id = settings.run_id(args.run_id)
    data_dir = settings.data_dir(args.data_dir)
    max_ratio = _max_reject_ratio(args.max_reject_ratio)

    from apod_transform.stage import stage

    return stage(data_dir, run_id, max_ratio)


def cli() -> None:
    raise SystemExit(runner.run("transform", main))
