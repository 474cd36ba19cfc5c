"""The day ranges to ask for: each planned chunk minus what an earlier attempt kept, and
the halves of a range the gateway cut (no I/O, no clock)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from apod_extract.dates import Span

ONE_DAY = dt.timedelta(days=1)


def days(span: Span) -> int:
    return (span[1] - span[0]).days + 1


def halves(span: Span) -> tuple[Span, Span]:
    """A span of two days or more in two, the first half the longer: 31 days -> 16 + 15."""
    start, end = span
    if start >= end:
        raise ValueError(f"cannot halve the one-day span {start}..{end}")
    first_end = start + dt.timedelta(days=(days(span) + 1) // 2 - 1)
    return (start, first_end), (first_end + ONE_DAY, end)


def within(span: Span, max_days: int) -> list[Span]:
    """`span` halved again and again until no part is longer than `max_days`.

    The parts are the ones successive cuts would give, so a chunk asked in parts after an
    earlier cut ends up in the same files as a chunk cut itself.
    """
    if days(span) <= max(1, max_days):
        return [span]
    first, second = halves(span)
    return within(first, max_days) + within(second, max_days)


def tile(chunk: Span, kept: Iterable[Span]) -> list[tuple[Span, bool]]:
    """Cover `chunk` with kept files (True) and ranges still to fetch (False), in order.

    From each day on, the longest kept file that starts there and ends inside the chunk
    is taken; kept files that do not fit the tiling are left out (the caller removes
    them as strays), and the days between kept files become ranges to fetch.
    """
    start, end = chunk
    longest: dict[dt.date, dt.date] = {}
    for first, last in kept:
        if start <= first <= last <= end and last > longest.get(first, first - ONE_DAY):
            longest[first] = last
    out: list[tuple[Span, bool]] = []
    gap: dt.date | None = None
    day = start
    while day <= end:
        last = longest.get(day)
        if last is None:
            gap = gap or day
            day += ONE_DAY
            continue
        if gap is not None:
            out.append(((gap, day - ONE_DAY), False))
            gap = None
        out.append(((day, last), True))
        day = last + ONE_DAY
    if gap is not None:
        out.append(((gap, end), False))
    return out
