"""HAProxy's configuration, rendered at start from the rule engine's own tables.

HAProxy is the gate's front door: it parses HTTP (and refuses what does not parse),
times out slow requests, refuses bodies over the limit and chunked ones, and lets
through to the checker only the endpoints of rules.ENDPOINTS, answering every other one
itself, at once, with rules.REFUSALS' reason. The checker then applies every rule again, the
endpoint ones included; the two lists cannot drift apart, being one.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

from apod_docker_gate import model, rules
from apod_docker_gate.http import Limits
from apod_docker_gate.policy import Policy

# A wait or an attach lasts as long as its step: the longest step's timeout and this.
STREAM_MARGIN = timedelta(minutes=15)
MAX_CONNECTIONS = 256
UNKNOWN = "!{ var(txn.endpoint) -m found }"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def regex(path: str) -> str:
    """A path pattern as an anchored HAProxy regex, in single quotes (no escapes)."""
    text = "^" + rules.path_regex(re.sub(r"\(\?P<\w+>", "(", path)) + "$"
    assert "'" not in text, text
    return f"'{text}'"


def quoted(text: str) -> str:
    """A double-quoted HAProxy string: backslash, double quote and $ escaped."""
    return '"' + re.sub(r'([\\"$])', r"\\\1", text) + '"'


def json_answer(status: int, message: str) -> str:
    body = json.dumps({"message": model.PREFIX + message})
    return f"status {status} content-type application/json string {quoted(body)}"


def methods(names: tuple[str, ...]) -> str:
    return f"{{ method {' '.join(names)} }} " if names else ""


def config(policy: Policy, checker_socket: str, port: int, limits: Limits) -> str:
    stream = int((policy.longest_step + STREAM_MARGIN).total_seconds())
    request = max(1, int(limits.timeout))
    lines = [
        "# Rendered by apod_docker_gate.haproxy when the gate starts: not to be edited.",
        "global",
        "    log stdout format raw local0 info",
        f"    maxconn {MAX_CONNECTIONS}",
        "",
        "defaults",
        "    mode http",
        "    log global",
        # The path only: a query or a header could hold anything.
        '    log-format "haproxy %HM %HP %ST %[var(txn.endpoint)]"',
        # One request per connection to the checker, which reads one only.
        "    option http-server-close",
        "    timeout connect 5s",
        f"    timeout http-request {request}s",
        "    timeout http-keep-alive 10s",
        f"    timeout client {stream}s",
        f"    timeout server {stream}s",
        f"    timeout tunnel {stream}s",
        f"    http-error {json_answer(400, 'a malformed request')}",
        f"    http-error {json_answer(408, 'the request did not arrive in time')}",
        f"    http-error {json_answer(500, 'the gate failed')}",
        f"    http-error {json_answer(502, 'the gate checker did not answer')}",
        f"    http-error {json_answer(503, 'the gate checker is not running')}",
        f"    http-error {json_answer(504, 'the gate checker timed out')}",
        "",
        "frontend docker",
        f"    bind :{port}",
        f"    maxconn {MAX_CONNECTIONS}",
        "    http-request return "
        + json_answer(411, "chunked request bodies are refused: send Content-Length")
        + " if { req.hdr_cnt(transfer-encoding) gt 0 }",
        "    http-request return "
        + json_answer(413, f"the body is over {limits.body} bytes")
        + f" if {{ req.hdr_val(content-length) gt {limits.body} }}",
    ]
    # The endpoint a request is for, when it is one of the checker's...
    for endpoint in rules.ENDPOINTS:
        lines.append(
            f"    http-request set-var(txn.endpoint) str({slug(endpoint.name)})"
            f" if {methods(endpoint.methods)}{{ path -m reg {regex(endpoint.path)} }}"
        )
    # ... else refused at once, with the reason, the body unread.
    for names, pattern, reason in rules.REFUSALS:
        lines.append(
            f"    http-request return {json_answer(403, reason)}"
            f" if {UNKNOWN} {methods(names)}{{ path -m reg {regex(pattern)} }}"
        )
    lines += [
        f"    http-request return {json_answer(403, rules.DEFAULT)} if {UNKNOWN}",
        # The whole body before the checker gets the request (what has come when the
        # request timeout is up, else: the checker then refuses it).
        f"    http-request wait-for-body time {request}s",
        # The health check's pings, every few seconds, from inside the container.
        "    http-request set-log-level silent if { src 127.0.0.1 } { path /_ping }",
    ]
    lines += [
        "    default_backend checker",
        "",
        "backend checker",
        f"    server checker unix@{checker_socket} maxconn {MAX_CONNECTIONS}",
        "",
    ]
    return "\n".join(lines)
