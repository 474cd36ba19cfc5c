"""The APOD service behind the gateway: parameters in, status and JSON payload out.

Mirrors nasa/apod-api's request handling, message texts included, because clients
(the extract step) are written against those answers, not against a tidied-up version.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from apod_testserver.archive import Archive

SERVICE_VERSION = "v1"
FIRST_DAY = dt.date(1995, 6, 16)
ALLOWED_FIELDS = ("concept_tags", "date", "hd", "count", "start_date", "end_date", "thumbs")
USAGE = "Allowed request fields for apod method are " + ", ".join(f"'{f}'" for f in ALLOWED_FIELDS)
INTERNAL_ERROR = "Internal Service Error"
CONCEPTS_OFF = "concept_tags functionality turned off in current service"


@dataclass
class Answer:
    status: int
    payload: object
    days: int = 0  # apod.nasa.gov pages the service scraped for it (the latency model's unit)


class _BadRequest(Exception):
    """A 400 whose message is the ValueError text the service would show."""


def service_error(status: int, msg: str) -> Answer:
    return Answer(status, {"code": status, "msg": msg, "service_version": SERVICE_VERSION})


def _parse_day(text: str, today: dt.date) -> dt.date:
    try:
        day = dt.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError as exc:
        # strptime's own wording ("time data ... does not match format ...",
        # "unconverted data remains: ...") is what the service returns.
        raise _BadRequest(str(exc)) from None
    if not FIRST_DAY <= day <= today:
        raise _BadRequest(
            f"Date must be between {FIRST_DAY.strftime('%b %d, %Y')} "
            f"and {today.strftime('%b %d, %Y')}."
        )
    return day


class ApodService:
    def __init__(self, archive: Archive, rng: random.Random | None = None):
        self.archive = archive
        self.rng = rng or random.Random()  # noqa: S311 - picks test answers, not secrets

    def answer(self, params: dict[str, list[str]], today: dt.date) -> Answer:
        """Handle the query (gateway parameters such as api_key already removed)."""
        if any(name not in ALLOWED_FIELDS for name in params):
            return service_error(400, f"Bad Request: incorrect field passed. {USAGE}")
        first = {name: values[0] for name, values in params.items()}
        day, count = first.get("date"), first.get("count")
        start, end = first.get("start_date"), first.get("end_date")
        thumbs = first.get("thumbs", "").lower() == "true"
        try:
            # The same precedence as the service; empty values count as absent.
            if not count and not start and not end:
                answer = self._single(day, today, thumbs)
            elif not day and not start and not end and count:
                answer = self._random(count, today, thumbs)
            elif not count and not day and start:
                answer = self._range(start, end, today, thumbs)
            else:
                return service_error(400, f"Bad Request: invalid field combination passed. {USAGE}")
        except _BadRequest as exc:
            return service_error(400, str(exc))
        if first.get("concept_tags"):
            items = answer.payload if isinstance(answer.payload, list) else [answer.payload]
            for item in items:
                if isinstance(item, dict) and "date" in item:
                    item["concepts"] = CONCEPTS_OFF
        return answer

    def _single(self, text: str | None, today: dt.date, thumbs: bool) -> Answer:
        if text:
            day = _parse_day(text, today)
            entry = self.archive.get(day, thumbs)
        else:
            # Without a date the service shows the current page, which is yesterday's
            # entry until NASA publishes today's.
            day = today
            entry = self.archive.get(today, thumbs) or self.archive.get(
                today - dt.timedelta(days=1), thumbs
            )
        if entry is None:
            missing = service_error(404, f"No data available for date: {day.isoformat()}")
            return Answer(missing.status, missing.payload, days=1)
        return Answer(200, entry, days=1)

    def _random(self, text: str, today: dt.date, thumbs: bool) -> Answer:
        try:
            count = int(text)
        except ValueError as exc:
            raise _BadRequest(str(exc)) from None
        if count > 100 or count <= 0:
            raise _BadRequest("Count must be positive and cannot exceed 100")
        days = self.archive.days_until(today)
        picked = self.rng.sample(days, min(count, len(days)))
        entries = [e for e in (self.archive.get(d, thumbs) for d in picked) if e]
        return Answer(200, entries, days=len(picked))

    def _range(self, start_text: str, end_text: str | None, today: dt.date, thumbs: bool) -> Answer:
        start = _parse_day(start_text, today)
        end = _parse_day(end_text, today) if end_text else today
        if start > end:
            raise _BadRequest("start_date cannot be after end_date")
        entries = []
        day = start
        while day <= end:
            entry = self.archive.get(day, thumbs)
            if entry is not None:  # missing days are left out without a word
                entries.append(entry)
            day += dt.timedelta(days=1)
        # Every day of the range is a page fetch, the missing ones included.
        return Answer(200, entries, days=(end - start).days + 1)
