"""The requested range: parsing, validation and the split into chunks (no clock involved)."""

from __future__ import annotations

import datetime as dt

from apod_common import exit_codes
from apod_common.errors import StepError
from apod_common.schema import FIRST_APOD_DATE

# The service scrapes one page per day of a range, so long ranges risk gateway timeouts.
MAX_CHUNK_DAYS = 31

Span = tuple[dt.date, dt.date]


def parse_day(text: str, option: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise StepError(f"{option} {text!r} is not a YYYY-MM-DD date", exit_codes.USAGE) from None


def check_range(start: dt.date, end: dt.date) -> None:
    if start < FIRST_APOD_DATE:
        raise StepError(
            f"--start {start} is before the first APOD ({FIRST_APOD_DATE})", exit_codes.USAGE
        )
    if start > end:
        raise StepError(f"--start {start} is after --end {end}", exit_codes.USAGE)


def spans(start: dt.date, end: dt.date, chunk_days: int) -> list[Span]:
    """Consecutive inclusive spans of at most `chunk_days` days covering start..end."""
    out: list[Span] = []
    step = dt.timedelta(days=chunk_days)
    while start <= end:
        last = min(start + step - dt.timedelta(days=1), end)
        out.append((start, last))
        start = last + dt.timedelta(days=1)
    return out
