"""Injected misbehaviour: one queued fault per APOD request, first in first out.

A fault is a JSON object; combine keys freely:
  {"status": 503}                  that status instead of the answer (body fitting the status)
  {"status": 502, "html": true}    ... with an HTML page, as a proxy in trouble sends
  {"status": 429, "retry_after": 2}  OVER_RATE_LIMIT, with a Retry-After header
  {"body": "...", "content_type": "text/plain"}  this exact body
  {"delay": 3.0}                   wait before answering (then answer normally; the
                                   gateway time-out, when set, cuts it like a slow answer)
  {"hang": true}                   the service never answers: a 504 at the gateway
                                   time-out, or an open connection until the client leaves
  {"truncate": true}               the normal 200 answer cut in half (Content-Length agrees)
  {"html_200": true}               200 with an HTML page instead of JSON
  {"disconnect": true}             close the connection without an answer
  {"after": 3}                     answer only once 3 other APOD requests got their answer
                                   since this one arrived (or it stayed alone in flight a
                                   while): answers out of order, whatever the machine's load
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, fields


class FaultError(ValueError):
    """A fault specification the server cannot apply."""


@dataclass(frozen=True)
class Fault:
    status: int | None = None
    html: bool = False
    body: str | None = None
    content_type: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    truncate: bool = False
    html_200: bool = False
    disconnect: bool = False
    hang: bool = False
    after: int = 0

    @classmethod
    def parse(cls, spec: object) -> Fault:
        if not isinstance(spec, dict):
            raise FaultError(f"a fault must be an object, not {spec!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise FaultError(f"unknown fault keys {unknown}; known: {sorted(known)}")
        fault = cls(**spec)
        if fault.status is not None and not (
            isinstance(fault.status, int) and 100 <= fault.status <= 599
        ):
            raise FaultError(f"status must be an HTTP status code, not {fault.status!r}")
        if not isinstance(fault.delay, int | float) or fault.delay < 0:
            raise FaultError("delay must be a number of seconds >= 0")
        if not isinstance(fault.after, int) or isinstance(fault.after, bool) or fault.after < 0:
            raise FaultError("after must be a number of answers >= 0")
        return fault

    @property
    def replaces_answer(self) -> bool:
        return self.status is not None or self.body is not None or self.html_200


class FaultQueue:
    def __init__(self, fail_rate: float = 0.0, rng: random.Random | None = None):
        self.fail_rate = fail_rate
        self.rng = rng or random.Random()  # noqa: S311 - picks test answers, not secrets
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()

    def extend(self, specs: list) -> int:
        parsed = [Fault.parse(spec) for spec in specs]  # all or nothing
        with self._lock:
            self._queue.extend(parsed)
            return len(self._queue)

    def next(self) -> Fault | None:
        """The fault for the request being served, if any."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self.fail_rate and self.rng.random() < self.fail_rate:
                return Fault(status=500)
        return None

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
