"""The catcher: an SMTP server (aiosmtpd) and an HTTP server (standard library) in front
of one in-memory inbox.

SMTP takes any sender and recipient, and any login (PLAIN/LOGIN) unless `credentials`
asks for one; it offers no TLS, so a client must send without it (APOD_SMTP_SECURITY=none).
HTTP:
    POST <any path>     a webhook: a JSON object with a `text` string (Slack's shape)
    GET  /              the page: every alert kept, newest first
    GET  /messages      the same as JSON
    DELETE /messages    forget them all
    GET  /health        200 once both servers answer
Each alert caught is logged as one line (`docker compose logs alertcatcher` shows them).
Nothing is written to disk; the inbox keeps the last `keep` alerts.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import html
import json
import logging
import socket
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

log = logging.getLogger("apod-alertcatcher")

MAX_BODY = 1 << 20  # bytes of one webhook body
PAGE_REFRESH = 5  # seconds between reloads of the page


@dataclass(frozen=True)
class Caught:
    channel: str  # "mail" or "webhook"
    subject: str  # the mail's subject; a webhook's first line of text
    text: str  # the mail's body as text; a webhook's `text`
    sender: str = ""
    recipients: tuple[str, ...] = ()
    login: str | None = None  # the user an SMTP client logged in as
    payload: dict | None = None  # a webhook's whole JSON body
    received: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


class Inbox:
    def __init__(self, keep: int = 200) -> None:
        self._items: deque[Caught] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, caught: Caught) -> None:
        with self._lock:
            self._items.append(caught)
        log.info("%s caught: %s", caught.channel, caught.subject)

    def all(self) -> list[Caught]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class _Text(HTMLParser):
    """An HTML mail body as text: one line per row or paragraph, cells joined by ': '."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[list[str]] = [[]]

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("tr", "p", "br", "div"):
            self.lines.append([])

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.lines[-1].append(data.strip())

    def text(self) -> str:
        return "\n".join(": ".join(cells) for cells in self.lines if cells)


def mail_text(message: email.message.EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    content = body.get_content()
    if body.get_content_subtype() != "html":
        return content
    parser = _Text()
    parser.feed(content)
    return parser.text()


class _SmtpHandler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        self.inbox.add(
            Caught(
                channel="mail",
                subject=str(message.get("Subject", "")),
                text=mail_text(message),
                sender=envelope.mail_from or "",
                recipients=tuple(envelope.rcpt_tos),
                login=session.auth_data if session.authenticated else None,
            )
        )
        return "250 OK"


class _Authenticator:
    """Any login, or only `credentials` when given; the password is never kept."""

    def __init__(self, credentials: tuple[str, str] | None) -> None:
        self.credentials = credentials

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        if self.credentials is not None and (login, password) != self.credentials:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=login)


def _page(items: list[Caught]) -> bytes:
    rows = "".join(
        "<section><h2>{}</h2><p>{} · {} · {}</p><pre>{}</pre></section>".format(
            html.escape(c.subject),
            html.escape(c.channel),
            html.escape(c.received),
            html.escape(", ".join(c.recipients) or "-"),
            html.escape(c.text),
        )
        for c in reversed(items)
    )
    body = rows or "<p>No alert caught yet.</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{PAGE_REFRESH}'>"
        "<title>APOD alerts</title></head><body><h1>APOD alerts caught</h1>"
        f"{body}</body></html>"
    ).encode()


def _http_handler(inbox: Inbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "apod-alertcatcher"

        def log_message(self, format: str, *args) -> None:
            log.debug("%s " + format, self.client_address[0], *args)

        def _send(self, status: int, body: bytes = b"", kind: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(HTTPStatus.OK, b"ok")
            elif self.path == "/messages":
                data = json.dumps([asdict(c) for c in inbox.all()]).encode("utf-8")
                self._send(HTTPStatus.OK, data, "application/json")
            elif self.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, _page(inbox.all()), "text/html")
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found")

        def do_DELETE(self) -> None:
            if self.path != "/messages":
                self._send(HTTPStatus.NOT_FOUND, b"not found")
                return
            inbox.clear()
            self._send(HTTPStatus.NO_CONTENT)

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or "")
            except ValueError:
                self._send(HTTPStatus.LENGTH_REQUIRED, b"a Content-Length is required")
                return
            if not 0 < length <= MAX_BODY:
                self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"empty or too large")
                return
            try:
                payload = json.loads(self.rfile.read(length))
            except ValueError:
                self._send(HTTPStatus.BAD_REQUEST, b"not JSON")
                return
            text = payload.get("text") if isinstance(payload, dict) else None
            if not isinstance(text, str):
                self._send(HTTPStatus.BAD_REQUEST, b"a JSON object with a `text` string")
                return
            inbox.add(
                Caught(
                    channel="webhook",
                    subject=text.splitlines()[0] if text else "",
                    text=text,
                    payload=payload,
                )
            )
            self._send(HTTPStatus.OK, b"ok")  # what Slack answers

    return Handler


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class AlertCatcher:
    """Both servers on `host`; port 0 picks a free one. A context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        smtp_port: int = 0,
        http_port: int = 0,
        keep: int = 200,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.host = host
        self.inbox = Inbox(keep)
        # aiosmtpd's Controller checks that it answers on its own port: it needs a number.
        self.smtp_port = smtp_port or free_port(host)
        self._smtp = Controller(
            _SmtpHandler(self.inbox),
            hostname=host,
            port=self.smtp_port,
            authenticator=_Authenticator(credentials),
            auth_require_tls=False,
        )
        self._http = ThreadingHTTPServer((host, http_port), _http_handler(self.inbox))
        self.http_port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def start(self) -> AlertCatcher:
        self._smtp.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        with contextlib.suppress(RuntimeError):  # never started
            self._smtp.stop()

    def __enter__(self) -> AlertCatcher:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def caught(self, channel: str | None = None) -> list[Caught]:
        return [c for c in self.inbox.all() if channel in (None, c.channel)]
