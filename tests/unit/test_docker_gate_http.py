"""The Docker gate's HTTP side (images/docker-gate): the checker's strict request reader,
the relay that forwards only what was checked, and HAProxy's rules rendered from the
rule engine's own tables. Sockets here are socket pairs; the real gate in front of the
real engine: tests/docker/test_docker_gate.py."""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest

from apod_docker_gate import haproxy, rules
from apod_docker_gate.engine import relay, request_bytes
from apod_docker_gate.http import ClientGone, HttpError, Limits, answer, read_request
from apod_docker_gate.model import Forward, Refused, Request
from apod_docker_gate.policy import Policy
from apod_pipeline.settings import Settings

pytestmark = pytest.mark.unit

LIMITS = Limits(head=1024, body=4096, timeout=1.0)
OURS = "a" * 64


def read(data: bytes, limits: Limits = LIMITS, close: bool = True) -> Request:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(data)
        if close:
            theirs.shutdown(socket.SHUT_WR)
        return read_request(ours, limits)


def fails(data: bytes, status: int, text: str, **kwargs) -> None:
    with pytest.raises(HttpError) as caught:
        read(data, **kwargs)
    assert caught.value.status == status
    assert text in caught.value.message


# --- the request reader -----------------------------------------------------------------


def test_a_plain_request_is_read_whole():
    request = read(
        b"POST /v1.41/containers/create?name=x HTTP/1.1\r\nHost: docker\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\nUpgrade: tcp\r\n\r\n{}",
        close=False,
    )
    assert (request.method, request.path, request.query) == (
        "POST",
        "/v1.41/containers/create",
        "name=x",
    )
    assert request.headers["content-type"] == "application/json"
    assert request.body == b"{}"
    assert request.upgrade is True


@pytest.mark.parametrize(
    ("data", "status", "text"),
    [
        (b"GARBAGE\r\n\r\n", 400, "not an HTTP/1.1 request line"),
        (b"GET /_ping HTTP/1.0\r\n\r\n", 400, "not an HTTP/1.1 request line"),
        (b"get /_ping HTTP/1.1\r\n\r\n", 400, "not an HTTP/1.1 request line"),
        (b"GET  /_ping HTTP/1.1\r\n\r\n", 400, "not an HTTP/1.1 request line"),
        (b"GET http://x/_ping HTTP/1.1\r\n\r\n", 400, "not a plain path"),
        (b"GET /_ping#x HTTP/1.1\r\n\r\n", 400, "not a plain path"),
        (b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400, "not ASCII"),
        (b"GET /_ping HTTP/1.1\nHost: x\r\n\r\n", 400, "a bare CR or LF"),
        (b"GET /_ping HTTP/1.1\r\nHost x\r\n\r\n", 400, "a malformed header line"),
        (b"GET /_ping HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "a malformed header line"),
        (b"GET /_ping HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400, "a malformed header line"),
        (b"GET /_ping HTTP/1.1\r\nHost : x\r\n\r\n", 400, "a malformed header line"),
        (
            b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
            400,
            "content-length appears twice",
        ),
        (b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "not a number"),
        (b"POST /x HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", 400, "not a number"),
        (
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            411,
            "chunked request bodies are refused",
        ),
        (
            b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            411,
            "chunked request bodies are refused",
        ),
        (b"POST /x HTTP/1.1\r\nContent-Length: 4097\r\n\r\n", 413, "over 4096 bytes"),
        (b"GET /x HTTP/1.1\r\nX: " + b"a" * 2000 + b"\r\n\r\n", 431, "over 1024 bytes"),
        (b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort", 400, "shorter than"),
        (b"GET /_ping HTTP/1.1\r\nHost: x", 400, "ended before its head"),
        (
            b"GET /_ping HTTP/1.1\r\n\r\nDELETE /containers/x HTTP/1.1\r\n\r\n",
            400,
            "one request per connection",
        ),
    ],
    ids=["garbage", "http10", "lowercase-method", "two-spaces", "absolute-form", "fragment",
         "non-ascii", "bare-lf", "no-colon", "obs-fold", "nul", "space-before-colon",
         "two-lengths", "negative-length", "hex-length", "chunked", "length-and-chunked",
         "body-too-large", "head-too-large", "short-body", "short-head", "pipelined"],
)  # fmt: skip
def test_what_does_not_parse_is_refused(data, status, text):
    fails(data, status, text)


def test_a_client_that_sends_nothing_is_gone():
    with pytest.raises(ClientGone):
        read(b"")


@pytest.mark.parametrize(
    "data",
    [b"GET /_ping HTT", b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"],
    ids=["slow-head", "slow-body"],
)
def test_a_slow_request_times_out(data):
    started = time.monotonic()
    fails(data, 408, "did not arrive in time", close=False)
    assert time.monotonic() - started >= LIMITS.timeout


def test_the_gate_answers_in_the_engine_s_error_shape():
    data = answer(403, "refused by the APOD Docker gate: no")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"Content-Type: application/json" in head
    assert b"Connection: close" in head
    assert body == b'{"message": "refused by the APOD Docker gate: no"}\n'
    assert f"Content-Length: {len(body)}".encode() in head


# --- the relay --------------------------------------------------------------------------


class Sides:
    """The checker's two sockets (client side, engine side) and the far ends."""

    def __init__(self) -> None:
        self.client, self.client_far = socket.socketpair()
        self.engine, self.engine_far = socket.socketpair()
        for s in (self.client_far, self.engine_far):
            s.settimeout(5)

    def run(self, forward: Forward) -> threading.Thread:
        thread = threading.Thread(target=relay, args=(self.client, self.engine, forward))
        thread.start()
        return thread

    def engine_reads(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.engine_far.recv(size - len(data))
            if not chunk:
                break
            data += chunk
        return data

    def ended_with_nothing_more_forwarded(self, thread: threading.Thread) -> None:
        thread.join(5)
        assert not thread.is_alive()
        self.engine.close()
        assert self.engine_far.recv(100) == b""  # the engine saw nothing after the request

    def close(self) -> None:
        for s in (self.client, self.client_far, self.engine, self.engine_far):
            s.close()


@pytest.fixture
def sides():
    pair = Sides()
    yield pair
    pair.close()


def test_the_engine_gets_only_the_checked_request(sides):
    forward = Forward("POST", f"/v1.41/containers/{OURS}/wait")
    sent = request_bytes(forward)
    assert (
        sent
        == (
            f"POST /v1.41/containers/{OURS}/wait HTTP/1.1\r\nHost: docker\r\n"
            "Connection: close\r\nContent-Length: 0\r\n\r\n"
        ).encode()
    )
    thread = sides.run(forward)
    assert sides.engine_reads(len(sent)) == sent
    # The client sends a second request before the answer: the call ends, unforwarded.
    sides.client_far.sendall(b"DELETE /containers/x?force=1 HTTP/1.1\r\n\r\n")
    sides.ended_with_nothing_more_forwarded(thread)


def test_an_answer_and_a_stream_pass_through_untouched(sides):
    thread = sides.run(Forward("GET", f"/containers/{OURS}/logs?follow=1"))
    sides.engine_reads(len(request_bytes(Forward("GET", f"/containers/{OURS}/logs?follow=1"))))
    frames = (b"\x01\x00\x00\x00\x00\x00\x00\x03a\nb", b"\x00" * 300)
    answer_bytes = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n" % len(frame) + frame + b"\r\n" for frame in frames)
        + b"0\r\n\r\n"
    )
    for i in range(0, len(answer_bytes), 7):  # in pieces, as a stream comes
        sides.engine_far.sendall(answer_bytes[i : i + 7])
    sides.engine_far.shutdown(socket.SHUT_WR)
    thread.join(5)
    assert not thread.is_alive()  # the engine closed: the call is over
    sides.client.close()  # as the server does once the handler returns
    received = b""
    while chunk := sides.client_far.recv(65536):
        received += chunk
    assert received == answer_bytes


def test_an_upgraded_attach_is_a_tunnel_both_ways(sides):
    forward = Forward("POST", f"/containers/{OURS}/attach?stream=1", upgrade=True)
    sent = request_bytes(forward)
    assert b"\r\nUpgrade: tcp\r\n" in sent
    thread = sides.run(forward)
    assert sides.engine_reads(len(sent)) == sent
    switched = b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    sides.engine_far.sendall(switched)
    assert sides.client_far.recv(len(switched)) == switched
    sides.client_far.sendall(b"stdin bytes")  # the stream, no longer HTTP
    assert sides.engine_reads(11) == b"stdin bytes"
    sides.engine_far.sendall(b"\x01\x00\x00\x00\x00\x00\x00\x02ok")
    assert sides.client_far.recv(100) == b"\x01\x00\x00\x00\x00\x00\x00\x02ok"
    sides.engine_far.shutdown(socket.SHUT_WR)
    thread.join(5)
    assert not thread.is_alive()


def test_no_tunnel_when_the_engine_does_not_switch(sides):
    forward = Forward("POST", f"/containers/{OURS}/attach?stream=1", upgrade=True)
    thread = sides.run(forward)
    sides.engine_reads(len(request_bytes(forward)))
    sides.engine_far.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}")
    assert sides.client_far.recv(100).startswith(b"HTTP/1.1 404")
    sides.client_far.sendall(b"POST /containers/x/exec HTTP/1.1\r\n\r\n")
    sides.ended_with_nothing_more_forwarded(thread)


def test_no_tunnel_for_a_call_that_did_not_ask_for_one(sides):
    forward = Forward("POST", f"/containers/{OURS}/start")
    thread = sides.run(forward)
    sides.engine_reads(len(request_bytes(forward)))
    sides.engine_far.sendall(b"HTTP/1.1 101 UPGRADED\r\n\r\n")  # an engine gone odd
    sides.client_far.recv(100)
    sides.client_far.sendall(b"anything")
    sides.ended_with_nothing_more_forwarded(thread)


def test_a_client_that_goes_away_ends_the_call(sides):
    forward = Forward("POST", f"/containers/{OURS}/wait")
    thread = sides.run(forward)
    sides.engine_reads(len(request_bytes(forward)))
    sides.client_far.close()  # Airflow's task was killed while it waited
    thread.join(5)
    assert not thread.is_alive()


# --- HAProxy's rules --------------------------------------------------------------------

POLICY = Policy.from_settings(Settings(image_tag="1.2.3"))
CONFIG = haproxy.config(POLICY, "/tmp/gate/checker.sock", 2375, Limits(timeout=7, body=1000))


def haproxy_rules() -> list[tuple[str, tuple[str, ...], str]]:
    """(allow | 403 reason, methods, regex) of each path rule, in HAProxy's order."""
    found = []
    for line in CONFIG.splitlines():
        path = re.search(r"\{ path -m reg '([^']+)' \}", line)
        if not path:
            continue
        method = re.search(r"\{ method ([A-Z ]+) \}", line)
        names = tuple(method[1].split()) if method else ()
        if "set-var(txn.endpoint)" in line:
            verdict = "allow"
        else:
            assert haproxy.UNKNOWN in line  # refused only when no endpoint matched
            verdict = re.search(r'gate: ([^"\\]+)', line)[1]
        found.append((verdict, names, path[1]))
    return found


PATHS = [
    ("GET", "/_ping"), ("HEAD", "/v1.41/_ping"), ("GET", "/version"), ("PUT", "/_ping"),
    ("GET", "/v1.41/images/json"), ("POST", "/v1.41/containers/create"),
    ("GET", "/v1.41/containers/create"), ("POST", f"/v1.41/containers/{OURS}/start"),
    ("POST", f"/v1.41/containers/{OURS}/attach"), ("POST", f"/v1.41/containers/{OURS}/wait"),
    ("GET", f"/v1.41/containers/{OURS}/logs"), ("GET", f"/v1.41/containers/{OURS}/json"),
    ("POST", f"/v1.41/containers/{OURS}/stop"), ("DELETE", f"/v1.41/containers/{OURS}"),
    ("PUT", f"/v1.41/containers/{OURS}/archive"), ("GET", f"/v1.41/containers/{OURS}/archive"),
    ("POST", f"/v1.41/containers/{OURS}/exec"), ("POST", "/v1.41/exec/abc/start"),
    ("POST", f"/v1.41/containers/{OURS}/kill"), ("DELETE", "/v1.41/containers/apod-pg-1"),
    ("POST", "/v1.41/build"), ("POST", "/v1.41/images/create"),
    ("POST", "/v1.41/images/apod-load:1/tag"), ("POST", "/v1.41/images/apod-load:1/push"),
    ("DELETE", "/v1.41/images/apod-load:1"), ("GET", "/v1.41/images/apod-load:1/json"),
    ("POST", "/v1.41/volumes/create"), ("GET", "/v1.41/networks"), ("POST", "/v1.41/swarm/init"),
    ("GET", "/v1.41/info"), ("GET", "/v1.41/events"), ("GET", "/v1.41/containers/json"),
    ("POST", "/v1.41/containers/prune"), ("POST", "/v1.41/commit"), ("GET", "/"),
    ("GET", "/v1.41/containers/%2e%2e/x"), ("GET", "//_ping"), ("POST", "/session"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), PATHS)
def test_haproxy_decides_each_path_as_the_rule_engine_does(method, path):
    """HAProxy's first matching rule (its regexes, run here) against the engine's: an
    endpoint HAProxy lets through is one the engine has; a path it refuses, it refuses
    with the engine's reason."""
    verdict = next(
        (v for v, names, regex in haproxy_rules()
         if (not names or method in names) and re.search(regex, path)),
        rules.DEFAULT,
    )  # fmt: skip
    endpoint = next(
        (e for e in rules.ENDPOINTS if method in e.methods and e.pattern.fullmatch(path)), None
    )
    if endpoint:
        assert verdict == "allow"
    else:
        assert verdict == rules.refusal(method, path)
        with pytest.raises(Refused) as caught:
            rules.check(Request(method, path), POLICY, None)
        assert caught.value.reason == verdict


def test_haproxy_has_every_rule_of_the_engine_and_nothing_else():
    found = haproxy_rules()
    allows = [(names, regex) for verdict, names, regex in found if verdict == "allow"]
    assert allows == [(e.methods, haproxy.regex(e.path)[1:-1]) for e in rules.ENDPOINTS]
    refusals = [(v, names) for v, names, _ in found if v != "allow"]
    assert refusals == [(reason, names) for names, _, reason in rules.REFUSALS]
    assert "http-request allow" not in CONFIG
    # Refused before the body is waited for; every other request goes to the checker.
    frontend = CONFIG.split("frontend docker")[1].split("backend checker")[0].splitlines()
    waits = [n for n, line in enumerate(frontend) if "wait-for-body" in line]
    returns = [n for n, line in enumerate(frontend) if "http-request return" in line]
    assert len(waits) == 1
    assert max(returns) < waits[0]
    assert frontend[max(returns)].endswith(f"if {haproxy.UNKNOWN}")  # the default refusal


def test_haproxy_limits_and_timeouts():
    assert "timeout http-request 7s" in CONFIG
    stream = int((POLICY.longest_step + haproxy.STREAM_MARGIN).total_seconds())
    for kind in ("client", "server", "tunnel"):
        assert f"timeout {kind} {stream}s" in CONFIG
    assert "if { req.hdr_val(content-length) gt 1000 }" in CONFIG
    assert "if { req.hdr_cnt(transfer-encoding) gt 0 }" in CONFIG
    assert "option http-server-close" in CONFIG  # one request per checker connection
    assert "server checker unix@/tmp/gate/checker.sock" in CONFIG
    # Every answer HAProxy gives itself is in the engine's error shape.
    for line in CONFIG.splitlines():
        if "http-request return" in line or "http-error" in line:
            assert "content-type application/json string" in line


def test_haproxy_strings_are_quoted_for_haproxy():
    assert haproxy.quoted('a "b" \\ $HOME') == '"a \\"b\\" \\\\ \\$HOME"'
