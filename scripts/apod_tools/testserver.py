"""The repository's APOD test server (images/testserver), run as a local process.

It is standard library only, so any python3 runs it from the checkout: no image to
build, and a free port picked by the server itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from apod_tools.project import REPO, SAMPLE_FIXTURES


@dataclass
class TestServer:
    __test__ = False  # not a test class, whatever pytest makes of the name

    url: str  # .../planetary/apod, as the host sees it
    base: str  # http://host:port
    process: subprocess.Popen

    def control(self, path: str, payload: dict | None = None, method: str = "POST") -> dict:
        """A call to the server's /_control API (faults, stats, reset)."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 - self.base is the server's http URL
            f"{self.base}/_control/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            body = response.read()
        return json.loads(body) if body else {}

    def stats(self) -> dict:
        return self.control("stats", method="GET")


@contextlib.contextmanager
def apod_test_server(fixtures: Path = SAMPLE_FIXTURES, *extra: str) -> Iterator[TestServer]:
    """Run `python -m apod_testserver` on a free port of 127.0.0.1 until the block ends;
    `extra` are more of its arguments (faults, latency)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "images" / "testserver")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "apod_testserver",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--fixtures",
            str(fixtures),
            *extra,
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and base is None:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                base = match.group(1).rstrip("/")
        if base is None:
            raise RuntimeError("APOD test server did not start")
        # Keep draining its log so the pipe never fills up and blocks the server.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield TestServer(url=f"{base}/planetary/apod", base=base, process=process)
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
