"""The Docker engine behind the gate, over its Unix socket: the facts the rules ask for,
and the forwarding of a checked request with its answer relayed back untouched.

Each request gets a connection of its own with `Connection: close`, so the answer ends
when the engine closes it: no framing is parsed, log, wait and attach streams pass
through byte for byte. Bytes from the client reach the engine only once the engine has
switched an attach to the raw stream (101); before that, or on any other call, they end
the connection.
"""

from __future__ import annotations

import http.client
import json
import selectors
import socket
from collections.abc import Mapping
from urllib.parse import quote

from apod_docker_gate.rules import Forward


class EngineUnavailable(Exception):
    pass


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("docker", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class Engine:
    def __init__(self, socket_path: str, timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def _get(self, path: str) -> tuple[int, bytes]:
        connection = _UnixConnection(self.socket_path, self.timeout)
        try:
            connection.request("GET", path, headers={"Connection": "close"})
            response = connection.getresponse()
            data = response.read(16 * 1024 * 1024)
        except OSError as exc:
            raise EngineUnavailable(f"the Docker engine does not answer: {exc}") from None
        finally:
            connection.close()
        return response.status, data

    def _found(self, path: str) -> dict | None:
        status, data = self._get(path)
        if status == 404:
            return None
        try:
            info = json.loads(data) if status == 200 else None
        except ValueError:
            info = None
        if not isinstance(info, dict):
            raise EngineUnavailable(f"GET {path} answered {status}")
        return info

    # rules.Facts
    def container_labels(self, container_id: str) -> Mapping[str, str] | None:
        info = self._found(f"/containers/{container_id}/json")
        return None if info is None else (info.get("Config") or {}).get("Labels") or {}

    def image_user(self, image: str) -> str | None:
        info = self._found(f"/images/{quote(image, safe='')}/json")
        return None if info is None else (info.get("Config") or {}).get("User") or ""

    def ping(self) -> bool:
        try:
            return self._get("/_ping")[0] == 200
        except EngineUnavailable:
            return False

    def connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            raise EngineUnavailable(f"the Docker engine does not answer: {exc}") from None
        return sock


def request_bytes(forward: Forward) -> bytes:
    lines = [f"{forward.method} {forward.target} HTTP/1.1", "Host: docker", "Connection: close"]
    if forward.upgrade:
        # The engine hijacks the connection for the stream and answers 101.
        lines.append("Upgrade: tcp")
    if forward.body or forward.method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(forward.body)}")
    if forward.content_type:
        lines.append(f"Content-Type: {forward.content_type}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + forward.body


SWITCHED = b"HTTP/1.1 101 "


def relay(client: socket.socket, engine: socket.socket, forward: Forward) -> None:
    """Send the checked request, then the engine's bytes to the client until the engine
    closes; the client's bytes to the engine only in an upgraded attach."""
    engine.sendall(request_bytes(forward))
    engine.settimeout(None)  # a wait or a stream lasts as long as the step
    client.settimeout(None)
    status = b""  # the start of the engine's status line, until it says whether 101
    tunnel = False
    with selectors.DefaultSelector() as selector:
        selector.register(engine, selectors.EVENT_READ)
        selector.register(client, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                if key.fileobj is engine:
                    if not data:
                        return
                    if len(status) < len(SWITCHED):
                        status += data[: len(SWITCHED)]
                        tunnel = forward.upgrade and status.startswith(SWITCHED)
                    client.sendall(data)
                elif not data:
                    if not tunnel:
                        return  # the client went away: so does the call
                    engine.shutdown(socket.SHUT_WR)
                    selector.unregister(client)
                elif tunnel:
                    engine.sendall(data)
                else:
                    return  # a request after the request: never forwarded
