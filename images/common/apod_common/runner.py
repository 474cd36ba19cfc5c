"""The runner every step's entrypoint goes through: its argument parser (`parser`), then
`run`: one summary line, meaningful exit codes, and the redactor in front of all of it
(logs, summary, reason), so that no step has to guard its own output."""

import argparse
import datetime
import json
import logging
import sys
from collections.abc import Callable

from apod_common import exit_codes, logs, redaction, settings
from apod_common.errors import StepError, free_bytes, out_of_space


def parser(step: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """Every step's argument parser: `apod-<step> --help`, its text laid out as written."""
    return argparse.ArgumentParser(
        prog=f"apod-{step}",
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_lock_timeout(parser: argparse.ArgumentParser, default: float, waits_for: str) -> None:
    """`--lock-timeout`: how long a step waits for the lock another run holds (locks.py)."""
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=default,
        metavar="SECONDS",
        help=f"how long to wait for {waits_for} ({default:g})",
    )


def add_run_id(parser: argparse.ArgumentParser, what: str) -> None:
    """`--run-id`: which run's batch the step works on (settings.run_id checks it)."""
    parser.add_argument(
        "--run-id",
        metavar="ID",
        help=f"{what} (default $APOD_RUN_ID, else {settings.DEFAULT_RUN_ID!r})",
    )


def iso_date(text: str) -> str:
    """argparse type for a day argument: YYYY-MM-DD, a real calendar day."""
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def emit_summary(summary: dict) -> None:
    """Print the one-line JSON summary; Airflow keeps the last stdout line as XCom."""
    line = json.dumps(redaction.redact_value(summary), sort_keys=True, ensure_ascii=False)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run(step: str, main: Callable[[list[str] | None], dict], argv: list[str] | None = None) -> int:
    """Run `main`, print its summary, and turn failures into a one-line reason + code."""
    redaction.remember_environment()
    try:
        logs.setup(step)
        summary = main(argv)
    except StepError as exc:
        if exc.code == exit_codes.FAILURE and out_of_space(exc, settings.data_dir()):
            return _no_space(step, exc.reason)
        status = "skipped" if exc.code == exit_codes.NOTHING_TO_DO else "failed"
        return _fail(step, status, exc.reason, exc.code)
    except KeyboardInterrupt:
        print(f"{step}: interrupted", file=sys.stderr)
        return exit_codes.FAILURE
    except Exception as exc:  # noqa: BLE001 - the last line of defence must say something
        if not out_of_space(exc, settings.data_dir()):
            return _unexpected(step, exc)
        if isinstance(exc, OSError) and exc.strerror:
            where = f" writing {exc.filename}" if exc.filename else ""
            return _no_space(step, f"{exc.strerror}{where}")
        return _no_space(step, " ".join(f"{type(exc).__name__}: {exc}".split()))
    emit_summary({"step": step, "status": "ok", **summary})
    return exit_codes.OK


def _unexpected(step: str, exc: Exception) -> int:
    logging.getLogger(step).debug("unexpected error", exc_info=True)
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())
    return _fail(step, "failed", f"unexpected error: {reason}", exit_codes.FAILURE)


def _no_space(step: str, detail: str) -> int:
    """A full disk: nothing the step wrote replaced what was there (files are written
    beside and renamed); the retry goes on once there is room."""
    free = free_bytes(settings.data_dir())
    left = f" ({settings.data_dir()} has {free} bytes free)" if free is not None else ""
    reason = f"no space left on device{left}, free some and retry: {detail}"
    return _fail(step, "failed", reason, exit_codes.UPSTREAM_UNAVAILABLE)


def _fail(step: str, status: str, reason: str, code: int) -> int:
    reason = redaction.redact(reason)
    print(f"{step}: {reason}", file=sys.stderr)
    emit_summary({"step": step, "status": status, "reason": reason, "exit_code": code})
    return code
