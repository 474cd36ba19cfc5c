"""Reading one HTTP/1.1 request, strictly, and writing the gate's own answers.

HAProxy in front has parsed and normalised the request already; this parser is the
second line: it accepts only the plain form the Docker clients send (origin-form
target, ASCII, Content-Length, no chunked or folded headers) and gives up on anything
else, on a head or body over its limit and on a client slower than its deadline.
"""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass
from http import HTTPStatus

from apod_docker_gate.rules import Request

REQUEST_LINE = re.compile(r"(?P<method>[A-Z]{1,16}) (?P<target>[^ ]{1,8000}) HTTP/1\.1")
TARGET = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*")
HEADER = re.compile(r"(?P<name>[!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(?P<value>[\x20-\x7e\t]*?)[ \t]*")
# Headers that must not appear twice (the others are not read).
SINGLE = ("content-length", "transfer-encoding", "content-type", "upgrade", "connection", "host")


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ClientGone(Exception):
    """The client closed the connection before sending a request."""


@dataclass(frozen=True)
class Limits:
    head: int = 32 * 1024
    body: int = 1024 * 1024
    timeout: float = 10.0  # for the whole request, head and body


def _recv(sock: socket.socket, deadline: float) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise HttpError(408, "the request did not arrive in time")
    sock.settimeout(left)
    try:
        return sock.recv(65536)
    except TimeoutError:
        raise HttpError(408, "the request did not arrive in time") from None


def read_request(sock: socket.socket, limits: Limits) -> Request:
    deadline = time.monotonic() + limits.timeout
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > limits.head:
            raise HttpError(431, f"the request head is over {limits.head} bytes")
        chunk = _recv(sock, deadline)
        if not chunk:
            if data:
                raise HttpError(400, "the request ended before its head did")
            raise ClientGone
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if len(head) > limits.head:
        raise HttpError(431, f"the request head is over {limits.head} bytes")
    method, target, headers = parse_head(head)
    length = content_length(headers, limits)
    while len(body) < length:
        chunk = _recv(sock, deadline)
        if not chunk:
            raise HttpError(400, "the body is shorter than its Content-Length")
        body += chunk
    if len(body) > length:
        # One request per connection: a second one is never read, let alone forwarded.
        raise HttpError(400, "data after the request (one request per connection)")
    return Request(method, target, headers, body)


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise HttpError(400, "the request head is not ASCII") from None
    lines = text.split("\r\n")
    if "\n" in text.replace("\r\n", "") or "\r" in text.replace("\r\n", ""):
        raise HttpError(400, "a bare CR or LF in the request head")
    line = REQUEST_LINE.fullmatch(lines[0])
    if not line:
        raise HttpError(400, "not an HTTP/1.1 request line")
    target = line["target"]
    if not TARGET.fullmatch(target):
        raise HttpError(400, "the request target is not a plain path")
    headers: dict[str, str] = {}
    for raw in lines[1:]:
        header = HEADER.fullmatch(raw)
        if not header:
            raise HttpError(400, "a malformed header line")
        name = header["name"].lower()
        if name in headers and name in SINGLE:
            raise HttpError(400, f"header {name} appears twice")
        headers[name] = (
            header["value"] if name not in headers else headers[name] + ", " + header["value"]
        )
    return line["method"], target, headers


def content_length(headers: dict[str, str], limits: Limits) -> int:
    if "transfer-encoding" in headers:
        raise HttpError(411, "chunked request bodies are refused: send Content-Length")
    text = headers.get("content-length", "0")
    if not re.fullmatch(r"[0-9]{1,10}", text):
        raise HttpError(400, "Content-Length is not a number")
    length = int(text)
    if length > limits.body:
        raise HttpError(413, f"the body is over {limits.body} bytes")
    return length


def answer(status: int, message: str) -> bytes:
    """A complete response in the engine's error shape; the connection closes after it."""
    body = json.dumps({"message": message}).encode() + b"\n"
    reason = HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
