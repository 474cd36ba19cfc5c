"""One chunk from the API, with the retry rules of APOD_API.md.

Timeouts, connection errors, 5xx and bodies that are not a JSON array are retried with
exponential backoff and jitter; a 429 waits for Retry-After when that is short enough;
any other 4xx stops at once, because asking again will not change the answer.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from apod_common import exit_codes
from apod_common.errors import StepError
from apod_extract import __version__
from apod_extract.redact import Redactor

log = logging.getLogger("extract")


@dataclass
class RetryPolicy:
    max_retries: int = 5
    backoff: float = 1.0  # first delay in seconds, doubled per attempt
    max_wait: float = 120.0  # longest single wait (backoff or Retry-After)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Backoff before retry number `attempt` (0-based), with jitter against herds."""
        ceiling = min(self.max_wait, self.backoff * 2**attempt)
        return ceiling * self.rng.uniform(0.5, 1.0)


@dataclass
class Page:
    body: bytes
    entries: int
    remaining: int | None  # X-RateLimit-Remaining after this request
    fetched_at: dt.datetime


class _Retryable(Exception):
    """This attempt failed in a way that another attempt may fix."""

    def __init__(self, problem: str, wait: float | None = None):
        super().__init__(problem)
        self.wait = wait  # seconds the server asked for; None: our own backoff


def entry_count(body: bytes) -> int | None:
    """Number of entries when `body` is a JSON array, else None."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return len(payload) if isinstance(payload, list) else None


def _header_int(response: requests.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Retry-After as seconds; it may be a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def refusal_reason(response: requests.Response) -> str:
    """A one-line reason for a 4xx, from the error's code rather than its wording."""
    status = response.status_code
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("code"):
            code = str(error["code"])
            if code.startswith("API_KEY"):
                return f"API refused the key ({code}); check NASA_API_KEY / NASA_API_KEY_FILE"
            return f"API gateway refused the request (HTTP {status}, {code})"
        if "msg" in payload:
            return f"API refused the request (HTTP {status}): {payload['msg']}"
    kind = response.headers.get("Content-Type", "no content type")
    return f"API refused the request (HTTP {status}, {kind} body)"


class ApodClient:
    def __init__(
        self,
        url: str,
        api_key: str,
        timeout: float,
        policy: RetryPolicy,
        redactor: Redactor,
        session: requests.Session | None = None,
    ):
        self.url = url
        self.api_key = api_key
        self.timeout = timeout
        self.policy = policy
        self.redact = redactor
        self.session = session or requests.Session()
        self.session.headers.update(
            {"Accept": "application/json", "User-Agent": f"apod-extract/{__version__}"}
        )
        self.requests = 0  # HTTP requests sent, retries included

    def fetch(self, start: dt.date, end: dt.date) -> Page:
        """The raw answer for start..end (inclusive), or StepError with code 4 or 5."""
        policy = self.policy
        problem = "no attempt made"
        for attempt in range(policy.max_retries + 1):
            try:
                return self._attempt(start, end)
            except _Retryable as exc:
                problem, wait = str(exc), exc.wait
            if attempt == policy.max_retries:
                break
            wait = policy.delay(attempt) if wait is None else wait
            log.warning(
                "%s..%s: %s; retry %d/%d in %.1f s",
                start,
                end,
                problem,
                attempt + 1,
                policy.max_retries,
                wait,
            )
            policy.sleep(wait)
        raise StepError(
            f"API unavailable for {start}..{end} after {policy.max_retries + 1} attempt(s): "
            f"{problem}",
            exit_codes.UPSTREAM_UNAVAILABLE,
        )

    def _attempt(self, start: dt.date, end: dt.date) -> Page:
        params = {
            "api_key": self.api_key,
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "thumbs": "true",
        }
        self.requests += 1
        try:
            response = self.session.get(self.url, params=params, timeout=self.timeout)
            body = response.content
        except requests.Timeout as exc:
            raise _Retryable(f"timed out after {self.timeout:g} s ({self._text(exc)})") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Retryable(f"connection failed ({self._text(exc)})") from None
        except requests.RequestException as exc:
            # Not a network hiccup: a malformed APOD_API_URL and the like.
            raise StepError(
                f"cannot request the API: {self._text(exc)}", exit_codes.USAGE
            ) from None
        fetched_at = dt.datetime.now(dt.UTC)
        status = response.status_code
        remaining = _header_int(response, "X-RateLimit-Remaining")
        log.debug("HTTP %d for %s..%s, %d bytes", status, start, end, len(body))
        quota = f"rate limit remaining {'unknown' if remaining is None else remaining}"
        if status == 200:
            entries = entry_count(body)
            if entries is None:
                kind = response.headers.get("Content-Type", "no content type")
                raise _Retryable(
                    f"HTTP 200 but not a JSON array ({kind}, {len(body)} bytes; {quota})"
                )
            return Page(body, entries, remaining, fetched_at)
        if status == 429:
            self._rate_limited(response, remaining)
        if 400 <= status < 500:
            raise StepError(self.redact(refusal_reason(response)), exit_codes.UPSTREAM_REFUSED)
        raise _Retryable(f"HTTP {status} ({quota})")

    def _rate_limited(self, response: requests.Response, remaining: int | None) -> None:
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        limit = self.policy.max_wait
        if wait is not None and wait > limit:
            raise StepError(
                f"rate limited (HTTP 429, rate limit remaining {remaining}): the API asks to "
                f"wait {wait:.0f} s, longer than --max-wait {limit:g} s; "
                f"try again in about {wait / 60:.0f} min",
                exit_codes.UPSTREAM_UNAVAILABLE,
            )
        raise _Retryable(f"rate limited (HTTP 429, rate limit remaining {remaining})", wait)

    def _text(self, exc: BaseException) -> str:
        return self.redact(" ".join(str(exc).split()))
