"""The checker: one thread per connection from HAProxy, one request per connection.

Read the request (http.py), check it (rules.py), then forward it and relay the answer
(engine.py), or answer the refusal itself. One line per request to the log: what was
allowed or refused and why; never a header value or a body (they hold secrets).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import socketserver

from apod_docker_gate import http, model, rules
from apod_docker_gate.engine import Engine, EngineUnavailable, relay
from apod_docker_gate.policy import Policy

log = logging.getLogger("apod-docker-gate")


class Checker(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, path: str, policy: Policy, engine: Engine, limits: http.Limits) -> None:
        self.policy = policy
        self.engine = engine
        self.limits = limits
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        super().__init__(path, Handler)
        os.chmod(path, 0o600)  # HAProxy runs as the same user; nobody else


class Handler(socketserver.BaseRequestHandler):
    server: Checker

    def handle(self) -> None:
        client: socket.socket = self.request
        try:
            request = http.read_request(client, self.server.limits)
        except http.ClientGone:
            return
        except http.HttpError as exc:
            log.warning("refused a request it cannot read: %s", exc.message)
            self.send(http.answer(exc.status, model.PREFIX + exc.message))
            return
        what = f"{request.method} {request.path[:200]}"
        try:
            forward = rules.check(request, self.server.policy, self.server.engine)
        except model.Refused as refused:
            log.warning("refused %s: %s", what, refused.reason)
            self.send(http.answer(refused.status, refused.message))
            return
        except EngineUnavailable as exc:
            log.error("%s: %s", what, exc)
            self.send(http.answer(502, str(exc)))
            return
        except Exception:
            # A rule that failed is a refusal, never a pass.
            log.exception("%s: the check failed", what)
            self.send(http.answer(500, model.PREFIX + "the check of this call failed"))
            return
        # Pings are what the health check sends every few seconds.
        log.log(
            logging.DEBUG if request.path.endswith("/_ping") else logging.INFO, "allowed %s", what
        )
        try:
            engine = self.server.engine.connect()
        except EngineUnavailable as exc:
            log.error("%s: %s", what, exc)
            self.send(http.answer(502, str(exc)))
            return
        with engine:
            try:
                relay(client, engine, forward)
            except OSError as exc:
                log.info("%s ended early: %s", what, exc)

    def send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self.request.sendall(data)
