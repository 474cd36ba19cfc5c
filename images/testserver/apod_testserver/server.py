"""HTTP wiring: GET /planetary/apod through the gateway, and the /_control API for tests."""

from __future__ import annotations

import contextlib
import datetime as dt
import http
import json
import math
import random
import re
import select
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from apod_testserver.archive import Archive
from apod_testserver.faults import Fault, FaultError, FaultQueue
from apod_testserver.gateway import KeyPolicy, RateLimiter, gateway_error
from apod_testserver.latency import LatencyModel
from apod_testserver.service import INTERNAL_ERROR, Answer, ApodService, service_error

APOD_PATH = "/planetary/apod"
CONTROL_PREFIX = "/_control/"
MAX_CONTROL_BODY = 10 * 1024 * 1024
RECENT_REQUESTS = 1000
# nginx's status for a request whose client hung up before the answer; nothing is sent.
CLIENT_CLOSED = 499
# How often a waiting request checks whether its client is still there.
WAIT_STEP = 0.1
# An `after` fault alone in flight for this many WAIT_STEPs in a row gives up waiting: long
# enough that a client starved of CPU on a loaded machine still sends its next request first.
ALONE_STEPS = 100
_API_KEY_IN_TEXT = re.compile(r"(api_key=)[^&\s\"']*", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide api_key values in anything that is logged or reported."""
    return _API_KEY_IN_TEXT.sub(r"\1***", text)


@dataclass
class Config:
    fixtures: Path
    host: str = "127.0.0.1"
    port: int = 8000
    today: dt.date | None = None  # None: the server clock's UTC date, read per request
    rate_limit: int = 1000
    rate_window: float = 3600.0
    fail_rate: float = 0.0
    seed: int | None = None
    day_cost: float = 0.0  # seconds the service spends per day answered
    gateway_timeout: float | None = None  # seconds; a longer answer becomes a 504 page
    hang_rate: float = 0.0  # probability that the service never answers a request
    invalid_keys: frozenset[str] = frozenset()
    valid_keys: frozenset[str] | None = None
    log: TextIO | None = field(default_factory=lambda: sys.stderr)
    # What the rate window and the records' "at" are read from (tests pass their own).
    clock: Callable[[], float] = time.monotonic


class Stats:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self.clock = clock
        self.answers = 0  # APOD requests that left (answered or not), ever: never reset
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.apod_requests = 0
            self.by_status: Counter[str] = Counter()
            self.recent: deque[dict] = deque(maxlen=RECENT_REQUESTS)
            self.in_flight = 0
            self.max_in_flight = 0
            self.origin = self.clock()

    def elapsed(self) -> float:
        """Seconds since the start or the last reset, for pacing checks on `recent`."""
        return round(self.clock() - self.origin, 3)

    def enter(self) -> int | None:
        """Count an APOD request as started; the new high when it sets one."""
        with self._lock:
            self.in_flight += 1
            if self.in_flight > self.max_in_flight:
                self.max_in_flight = self.in_flight
                return self.in_flight
            return None

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self.answers += 1
            self._answered.notify_all()

    def wait_for_answers(self, since: int, count: int, give_up: threading.Event) -> None:
        """Until `count` other APOD requests left after `since` (the `answers` read when
        this one arrived), or `give_up` is set, or this one has been the only request in
        flight for ALONE_STEPS checks in a row (no other may come: never a deadlock)."""
        alone = 0
        with self._answered:
            while self.answers - since < count and alone < ALONE_STEPS:
                if give_up.is_set():
                    return
                self._answered.wait(WAIT_STEP)
                alone = alone + 1 if self.in_flight == 1 else 0

    def record(self, apod: bool, status: int | None, record: dict) -> None:
        with self._lock:
            self.requests += 1
            self.apod_requests += apod
            if status is not None:
                self.by_status[str(status)] += 1
            self.recent.append({**record, "status": status})

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "requests": self.requests,
                "apod_requests": self.apod_requests,
                "by_status": dict(sorted(self.by_status.items())),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "recent": list(self.recent),
            }

    def summary(self) -> str:
        with self._lock:
            return f"{self.apod_requests} APOD request(s), at most {self.max_in_flight} in flight"


class ApodTestServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, config: Config, archive: Archive | None = None):
        self.config = config
        self.archive = archive or Archive.from_directory(config.fixtures)
        rng = random.Random(config.seed)  # noqa: S311 - reproducible faults, not secrets
        self.service = ApodService(self.archive, rng)
        self.keys = KeyPolicy.from_lists(config.invalid_keys, config.valid_keys)
        self.limiter = RateLimiter(config.rate_limit, config.rate_window, config.clock)
        self.faults = FaultQueue(config.fail_rate, rng)
        # Its own generator, so turning hangs on does not change which requests --fail-rate hits.
        hangs = random.Random(config.seed)  # noqa: S311 - reproducible hangs, not secrets
        self.latency = LatencyModel(
            config.day_cost, config.gateway_timeout, config.hang_rate, hangs
        )
        self.stats = Stats(config.clock)
        self.stopping = threading.Event()  # ends the waits of slow and hanging answers
        self._log_lock = threading.Lock()
        super().__init__((config.host, config.port), Handler)

    def server_close(self) -> None:
        self.stopping.set()
        super().server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def apod_url(self) -> str:
        return self.base_url + APOD_PATH

    def today(self) -> dt.date:
        return self.config.today or dt.datetime.now(dt.UTC).date()

    def log(self, line: str) -> None:
        if self.config.log is None:
            return
        with self._log_lock:
            self.config.log.write(redact(line) + "\n")
            self.config.log.flush()

    def reset(self) -> None:
        self.faults.clear()
        self.stats.reset()
        self.archive.reset()
        self.limiter.reset()


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _html_page(status: int, title: str) -> str:
    return (
        f"<!DOCTYPE html>\n<html><head><title>{status} {title}</title></head>"
        f"<body><center><h1>{status} {title}</h1></center><hr><center>nginx</center>"
        "</body></html>\n"
    )


class Handler(BaseHTTPRequestHandler):
    server: ApodTestServer
    server_version = "openresty"
    sys_version = ""

    # --- plumbing -------------------------------------------------------------------

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not self.path.startswith(CONTROL_PREFIX + "health"):  # container healthchecks
            super().log_request(code, size)

    def log_message(self, format: str, *args) -> None:
        self.server.log(f"{self.address_string()} - {format % args}")

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._status = status
        with contextlib.suppress(ConnectionError):  # the client gave up (a delay fault)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    def _send_json(self, status: int, payload: object, headers: dict | None = None) -> None:
        self._send(status, _json_bytes(payload), "application/json", headers)

    def _wants_html(self) -> bool:
        accept = self.headers.get("Accept", "")
        return "text/html" in accept and "json" not in accept

    def _dispatch(self, method: str) -> None:
        self._status: int | None = None
        # What the latency model (or a delay fault) held the answer for, in seconds (None:
        # a hang, held until the client left or the server stopped), and whether the
        # gateway cut it: recorded, so that tests read the model's decision, not a clock.
        self._held: float | None = 0.0
        self._cut = False
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        is_apod = path == APOD_PATH
        record = {
            "method": method,
            "path": redact(self.path),
            "accept": self.headers.get("Accept"),
            "at": self.server.stats.elapsed(),
        }
        try:
            if url.path.startswith(CONTROL_PREFIX):
                self._control(method, url.path[len(CONTROL_PREFIX) :])
                return  # control traffic stays out of the statistics
            if is_apod and method == "GET":
                params = parse_qs(url.query, keep_blank_values=True)
                record["params"] = {
                    k: (["***"] if k == "api_key" else v) for k, v in params.items()
                }
                self._counted(params)
            elif is_apod:
                self._send_json(405, service_error(405, "Method Not Allowed").payload)
            else:
                self._send_json(404, service_error(404, "Sorry, Nothing at this URL.").payload)
        finally:
            if is_apod:
                record |= {"held": self._held, "cut": self._cut}
            if not url.path.startswith(CONTROL_PREFIX):
                self.server.stats.record(is_apod, self._status, record)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- the API ----------------------------------------------------------------------

    def _counted(self, params: dict[str, list[str]]) -> None:
        stats = self.server.stats
        self._arrived_after = stats.answers
        high = stats.enter()
        if high is not None:
            self.server.log(f"APOD requests in flight: {high}, the most so far")
        try:
            self._apod(params)
        finally:
            stats.leave()

    def _client_waits(self, seconds: float) -> bool:
        """Hold the answer `seconds`; False when the client hung up or the server stops.

        A gateway stops working for a client that left (nginx logs 499), so an abandoned
        slow answer leaves the in-flight count when its client gives up, not minutes later.
        """
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.server.stopping.is_set():
                return False
            readable, _, _ = select.select([self.connection], [], [], min(left, WAIT_STEP))
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return False
                except OSError:
                    return False
                # Bytes of a next request are no news about this one; just wait.
                time.sleep(min(left, WAIT_STEP))
        return True

    def _client_left(self) -> None:
        self._status = CLIENT_CLOSED
        self.close_connection = True
        self.log_message('"%s" %d - (the client left before the answer)', self.requestline, 499)

    def _gateway_refusal(self, status: int, code: str, headers: dict[str, str]) -> None:
        if self._wants_html():
            body = _html_page(status, _phrase(status)).encode()
            self._send(status, body, "text/html; charset=utf-8", headers)
        else:
            self._send_json(status, gateway_error(code), headers)

    def _apod(self, params: dict[str, list[str]]) -> None:
        server = self.server
        key = params.pop("api_key", [None])[0]
        refusal = server.keys.check(key)
        if refusal:
            limit = str(server.limiter.limit)
            quota_headers = {"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": limit}
            self._gateway_refusal(403, refusal, quota_headers)
            return
        quota = server.limiter.take(key)
        headers = {
            "X-RateLimit-Limit": str(quota.limit),
            "X-RateLimit-Remaining": str(quota.remaining),
        }
        if quota.retry_after is not None:
            headers["Retry-After"] = str(quota.retry_after)
            self._gateway_refusal(429, "OVER_RATE_LIMIT", headers)
            return
        fault = server.faults.next()
        if fault and fault.after:
            server.stats.wait_for_answers(self._arrived_after, fault.after, server.stopping)
        if fault and (fault.disconnect or fault.replaces_answer):
            self._held = fault.delay or 0.0
            if fault.delay and not self._client_waits(fault.delay):
                self._client_left()
            elif fault.disconnect:
                self.close_connection = True
            else:
                self._fault_answer(fault, headers)
            return
        answer = server.service.answer(params, server.today())
        timing = server.latency.timing(
            answer.days, extra=fault.delay if fault else 0.0, hang=bool(fault and fault.hang)
        )
        self._held = None if math.isinf(timing.seconds) else timing.seconds
        self._cut = timing.cut
        if not self._client_waits(timing.seconds):
            self._client_left()
            return
        if timing.cut:
            self._gateway_timeout(headers)
            return
        body = _json_bytes(answer.payload)
        if fault and fault.truncate and answer.status == 200:
            body = body[: len(body) // 2]
        self._send(answer.status, body, "application/json", headers)

    def _gateway_timeout(self, headers: dict[str, str]) -> None:
        # The gateway's own page, whatever the client accepts: it never asked the service.
        page = _html_page(504, "Gateway Time-out").encode()
        self._send(504, page, "text/html; charset=utf-8", headers)

    def _fault_answer(self, fault: Fault, headers: dict[str, str]) -> None:
        status = fault.status or 200
        phrase = _phrase(status)
        if fault.body is not None:
            ctype = fault.content_type or ("text/html" if fault.html else "text/plain")
            self._send(status, fault.body.encode(), ctype, headers)
        elif fault.html_200 or fault.html:
            page = _html_page(status, phrase) if status != 200 else _html_page(200, "APOD")
            self._send(status, page.encode(), "text/html; charset=utf-8", headers)
        elif status == 429:
            headers = {**headers, "X-RateLimit-Remaining": "0"}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            self._send_json(429, gateway_error("OVER_RATE_LIMIT"), headers)
        elif status == 403:
            self._send_json(403, gateway_error("API_KEY_INVALID"), headers)
        elif status == 500:
            self._send_json(500, service_error(500, INTERNAL_ERROR).payload, headers)
        elif status >= 502:
            self._send(status, f"{status} {phrase}\n".encode(), "text/plain", headers)
        else:
            answer = service_error(status, phrase)
            self._send_json(status, answer.payload, headers)

    # --- the control API ------------------------------------------------------------

    def _read_json(self) -> object:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_CONTROL_BODY:
            raise ValueError("body too large")
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw.strip() else {}

    def _control(self, method: str, action: str) -> None:
        routes: dict[tuple[str, str], Callable[[str], Answer]] = {
            ("GET", "health"): self._health,
            ("GET", "stats"): lambda _: Answer(200, self._stats()),
            ("POST", "faults"): self._add_faults,
            ("GET", "faults"): lambda _: Answer(200, {"pending": self.server.faults.pending()}),
            ("POST", "reset"): self._reset,
            ("PUT", "entries"): self._put_entry,
            ("DELETE", "entries"): self._delete_entry,
        }
        name, _, rest = action.partition("/")
        handler = routes.get((method, name))
        if handler is None:
            answer = Answer(404, {"error": f"no control action {method} /_control/{action}"})
        else:
            try:
                answer = handler(unquote(rest))
            except (ValueError, FaultError, TypeError) as exc:
                answer = Answer(400, {"error": str(exc)})
        self._send_json(answer.status, answer.payload)

    def _health(self, _: str) -> Answer:
        return Answer(200, {"status": "ok", "today": self.server.today().isoformat()})

    def _stats(self) -> dict:
        return {**self.server.stats.snapshot(), "faults_pending": self.server.faults.pending()}

    def _add_faults(self, _: str) -> Answer:
        body = self._read_json()
        specs = body.get("faults") if isinstance(body, dict) else None
        if not isinstance(specs, list):
            raise ValueError('expected {"faults": [...]}')
        return Answer(200, {"pending": self.server.faults.extend(specs)})

    def _reset(self, _: str) -> Answer:
        self.server.reset()
        return Answer(200, {"reset": True})

    def _put_entry(self, day: str) -> Answer:
        date = dt.date.fromisoformat(day)
        entry = self._read_json()
        if not isinstance(entry, dict):
            raise ValueError("the entry must be a JSON object")
        created = self.server.archive.get(date) is None
        self.server.archive.put(date, entry)
        return Answer(201 if created else 200, {"date": day, "created": created})

    def _delete_entry(self, day: str) -> Answer:
        removed = self.server.archive.remove(dt.date.fromisoformat(day))
        return Answer(200, {"date": day, "removed": removed})


def _json_bytes(payload: object) -> bytes:
    # Flask's jsonify as the service uses it: sorted keys, ASCII escapes, compact.
    return (json.dumps(payload, sort_keys=True, separators=(",", ":")) + "\n").encode()


@contextlib.contextmanager
def serving(config: Config, archive: Archive | None = None) -> Iterator[ApodTestServer]:
    """Run a server in a background thread for the duration of the block."""
    server = ApodTestServer(config, archive)
    # A short poll interval keeps shutdown quick: tests start one server each.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="apod-testserver", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
