"""The wrapper every step's entrypoint runs: one summary line, meaningful exit codes."""

import json
import sys
from collections.abc import Callable

from apod_common import exit_codes
from apod_common.errors import StepError


def emit_summary(summary: dict) -> None:
    """Print the one-line JSON summary; Airflow keeps the last stdout line as XCom."""
    sys.stdout.write(json.dumps(summary, sort_keys=True, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def run(step: str, main: Callable[[list[str] | None], dict], argv: list[str] | None = None) -> int:
    """Run `main`, print its summary, and turn failures into a one-line reason + code."""
    try:
        summary = main(argv)
    except StepError as exc:
        status = "skipped" if exc.code == exit_codes.NOTHING_TO_DO else "failed"
        print(f"{step}: {exc.reason}", file=sys.stderr)
        emit_summary({"step": step, "status": status, "reason": exc.reason, "exit_code": exc.code})
        return exc.code
    except KeyboardInterrupt:
        print(f"{step}: interrupted", file=sys.stderr)
        return exit_codes.FAILURE
    except Exception as exc:  # noqa: BLE001 - the last line of defence must say something
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(f"{step}: unexpected error: {reason}", file=sys.stderr)
        emit_summary({"step": step, "status": "failed", "reason": reason, "exit_code": 1})
        return exit_codes.FAILURE
    summary = {"step": step, "status": "ok", **summary}
    emit_summary(summary)
    return exit_codes.OK
