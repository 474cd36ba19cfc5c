"""The api.data.gov gateway in front of the service: API keys and rate limits."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

DEMO_KEY = "DEMO_KEY"
MESSAGES = {
    "API_KEY_MISSING": "No api_key was supplied. Get one at https://api.nasa.gov:443",
    "API_KEY_INVALID": "An invalid api_key was supplied. Get one at https://api.nasa.gov:443",
    "OVER_RATE_LIMIT": (
        "You have exceeded your rate limit. Try again later or contact us at "
        "https://api.nasa.gov:443/contact/ for assistance"
    ),
}


def gateway_error(code: str) -> dict:
    return {"error": {"code": code, "message": MESSAGES[code]}}


@dataclass(frozen=True)
class KeyPolicy:
    """Which keys the gateway accepts: all but `invalid`, or only `valid` when given."""

    invalid: frozenset[str] = frozenset()
    valid: frozenset[str] | None = None

    @classmethod
    def from_lists(cls, invalid: Iterable[str], valid: Iterable[str] | None) -> KeyPolicy:
        def clean(keys: Iterable[str]) -> frozenset[str]:
            return frozenset(k.strip() for k in keys if k.strip())

        return cls(clean(invalid), None if valid is None else clean(valid) | {DEMO_KEY})

    def check(self, key: str | None) -> str | None:
        """The gateway error code for `key`, or None when it may pass."""
        if not key:
            return "API_KEY_MISSING"
        if key in self.invalid or (self.valid is not None and key not in self.valid):
            return "API_KEY_INVALID"
        return None


@dataclass
class Quota:
    limit: int
    remaining: int
    retry_after: int | None  # seconds, set when the request was refused


class RateLimiter:
    """Requests per key over a rolling window, as X-RateLimit-* headers report them."""

    def __init__(
        self, limit: int, window: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ):
        self.limit = limit
        self.window = window
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> Quota:
        """Count one request for `key` unless its quota is used up."""
        now = self.clock()
        with self._lock:
            seen = self._seen.setdefault(key, deque())
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if len(seen) >= self.limit:
                wait = seen[0] + self.window - now if seen else self.window
                return Quota(self.limit, 0, max(1, math.ceil(wait)))
            seen.append(now)
            return Quota(self.limit, self.limit - len(seen), None)

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
