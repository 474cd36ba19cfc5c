"""The commit message of a data version: subject names the run, body the data."""

import csv
import re
from pathlib import Path

from apod_common import exit_codes
from apod_common.errors import StepError

INIT_MESSAGE = "data: initialise the APOD data repository (git + DVC)\n"

# APOD explanations are long; the csv module's default limit (128 KiB) is not a bound we
# want to hit on a field.
_FIELD_LIMIT = 16 * 1024 * 1024


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def commit_message(run_id: str, csv_name: str, md5: str, size: int, rows: int) -> str:
    return (
        f"data: update {csv_name} (run {one_line(run_id)})\n"
        "\n"
        f"md5: {md5}\n"
        f"size: {size}\n"
        f"rows: {rows}\n"
    )


def run_of_subject(subject: str) -> str | None:
    """The run a data commit's subject names (commit_message's first line), or None."""
    match = re.fullmatch(r"data: update .+ \(run (?P<run>.*)\)", subject.strip())
    return match.group("run") if match else None


def count_rows(path: Path) -> int:
    """Data rows of the CSV (records after the header); quoted newlines stay inside their
    record."""
    csv.field_size_limit(_FIELD_LIMIT)
    try:
        with path.open(encoding="utf-8", errors="replace", newline="") as handle:
            records = sum(1 for _ in csv.reader(handle, strict=True))
    except csv.Error as exc:
        raise StepError(f"{path} is not a readable CSV: {exc}", exit_codes.BAD_INPUT) from exc
    return max(records - 1, 0)
