"""One request for a day range, and what its answer means under APOD_API.md.

An attempt returns the page, raises Retryable for what another attempt may fix (a
time-out, a dropped connection, a 5xx, a body that is not a JSON array, a short 429),
or StepError for what it will not (any other 4xx, a Retry-After longer than allowed).
A gateway 504 or a read time-out is marked as a cut: the range took too long to answer,
so the caller asks for shorter ranges instead of the same one again.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import importlib.metadata
import json
import logging
import random
import threading
from dataclasses import dataclass, field

import requests

from apod_common import exit_codes
from apod_common.clock import SYSTEM, Clock
from apod_common.errors import StepError

log = logging.getLogger("extract")

GATEWAY_TIMEOUT = 504


def _version() -> str:
    try:
        return importlib.metadata.version("apod-extract")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


USER_AGENT = f"apod-extract/{_version()}"


@dataclass
class RetryPolicy:
    max_retries: int = 5
    backoff: float = 1.0  # first delay in seconds, doubled per attempt
    max_wait: float = 120.0  # longest single wait (backoff or Retry-After)
    clock: Clock = SYSTEM  # the waits between attempts (the fetcher's)
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


class Retryable(Exception):
    """This attempt failed in a way that another attempt may fix."""

    def __init__(
        self, problem: str, wait: float | None = None, cut: bool = False, limited: bool = False
    ):
        super().__init__(problem)
        self.wait = wait  # seconds the server asked for; None: our own backoff
        self.cut = cut  # the answer took too long: a shorter range may get through
        self.limited = limited  # a 429: the key's quota, shared by every request in flight


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
    """Safe to share between threads: each thread sends through its own HTTP session."""

    def __init__(self, url: str, api_key: str, timeout: float, policy: RetryPolicy):
        self.url = url
        self.api_key = api_key
        self.timeout = timeout
        self.policy = policy
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
            self._local.session = session
        return session

    def attempt(self, start: dt.date, end: dt.date) -> Page:
        """One request for start..end (inclusive): the page, Retryable or StepError (4, 5)."""
        params = {
            "api_key": self.api_key,
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "thumbs": "true",
        }
        try:
            response = self._session().get(self.url, params=params, timeout=self.timeout)
            body = response.content
        except requests.ConnectTimeout as exc:
            raise Retryable(f"connection failed ({self._text(exc)})") from None
        except requests.Timeout as exc:
            raise Retryable(
                f"timed out after {self.timeout:g} s ({self._text(exc)})", cut=True
            ) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise Retryable(f"connection failed ({self._text(exc)})") from None
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
                raise Retryable(
                    f"HTTP 200 but not a JSON array ({kind}, {len(body)} bytes; {quota})"
                )
            return Page(body, entries, remaining, fetched_at)
        if status == 429:
            self._rate_limited(response, remaining)
        if 400 <= status < 500:
            raise StepError(refusal_reason(response), exit_codes.UPSTREAM_REFUSED)
        raise Retryable(f"HTTP {status} ({quota})", cut=status == GATEWAY_TIMEOUT)

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
        raise Retryable(
            f"rate limited (HTTP 429, rate limit remaining {remaining})", wait, limited=True
        )

    def _text(self, exc: BaseException) -> str:
        # One line; the key in the failed URL is masked by the runner's redactor.
        return " ".join(str(exc).split())
