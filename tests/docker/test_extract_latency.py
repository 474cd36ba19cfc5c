"""The extract image against the test-server image with the real service's latency model.

The server costs 20 ms per day answered, its gateway cuts answers at 10 s and now and
then a request hangs, as api.nasa.gov does at its own (slower) pace; an instant server
would hide what a backfill costs. The requests in flight are counted by the server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from support.services import SAMPLE_FIXTURES, docker, docker_volume, image, require_images

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

FIRST_DAY = dt.date(1995, 6, 16)
PREFIX = "hlat"  # every container, volume and network of this module
# About one request in 200 hangs until the gateway's cut; seeded, so that the same few
# (the 107th, 131st and 257th) do each run.
ARCHIVE_LATENCY = ("--day-cost", "0.02", "--gateway-timeout", "10", "--hang-rate", "0.005")
ARCHIVE_LATENCY += ("--seed", "7")


@dataclass
class ServerContainer:
    network: str
    base: str  # as the host sees it, for the control API

    url = "http://apod-api:8000/planetary/apod"  # as the step containers see it

    def stats(self) -> dict:
        response = requests.get(f"{self.base}/_control/stats", timeout=10)
        response.raise_for_status()
        return response.json()


@contextlib.contextmanager
def apod_server(fixtures: Path, *latency: str) -> Iterator[ServerContainer]:
    """The test-server image on a network of its own, the fixtures mounted read-only."""
    suffix = secrets.token_hex(4)
    network, name = f"{PREFIX}-net-{suffix}", f"{PREFIX}-api-{suffix}"
    docker("network", "create", network)
    try:
        docker(
            "run", "-d", "--name", name, "--network", network, "--network-alias", "apod-api",
            "-p", "127.0.0.1::8000", "-v", f"{fixtures}:/fixtures:ro", image("testserver"),
            "--host", "0.0.0.0", "--port", "8000", "--fixtures", "/fixtures", *latency,  # noqa: S104 - the container's side; published on 127.0.0.1 only
        )  # fmt: skip
        port = docker("port", name, "8000/tcp").stdout.split(":")[-1].strip()
        server = ServerContainer(network, f"http://127.0.0.1:{port}")
        _wait_until_up(server.base, name)
        yield server
    finally:
        docker("rm", "-f", name, check=False)
        docker("network", "rm", network, check=False)


def _wait_until_up(base: str, name: str) -> None:
    deadline = time.monotonic() + 60  # the whole archive takes a few seconds to load
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base}/_control/health", timeout=2).ok:
                return
        time.sleep(0.3)
    pytest.fail(f"the test server did not answer: {docker('logs', name, check=False).stderr}")


def run_step(name: str, server: ServerContainer, volume: str, *args: str) -> dict:
    result = docker(
        "run", "--rm", "--network", server.network, "-v", f"{volume}:/data",
        "-e", f"APOD_API_URL={server.url}", "-e", "NASA_API_KEY=hlat-latency-test",
        image(name), *args,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1]) | {"stderr": result.stderr}


def warnings(summary: dict) -> str:
    """The step's retry and split lines: what went wrong when too many requests went out."""
    lines = [line for line in summary["stderr"].splitlines() if " WARNING " in line]
    shown = lines if len(lines) <= 40 else [*lines[:20], "...", *lines[-20:]]
    return f"{len(lines)} warning(s):\n" + "\n".join(shown)


def archive_dir() -> Path:
    folder = os.environ.get("APOD_ARCHIVE_DIR")
    if not folder or not Path(folder).is_dir():
        pytest.skip("APOD_ARCHIVE_DIR is not set (the real APOD archive dump; make test sets it)")
    years = Path(folder)
    nested = years / "ellanan-apod-api" / "api" / "_data" / "years"
    return nested if nested.is_dir() else years


def archive_days(folder: Path) -> list[str]:
    return sorted(day for path in folder.glob("*.json") for day in json.loads(path.read_bytes()))


def test_the_whole_archive_loads_with_at_most_8_in_flight_and_few_extra_requests():
    require_images("extract", "testserver")
    years = archive_dir()
    days = archive_days(years)
    first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
    assert first == FIRST_DAY
    chunks = math.ceil(((last - first).days + 1) / 31)
    with (
        apod_server(years, *ARCHIVE_LATENCY) as server,
        docker_volume(f"{PREFIX}-data") as volume,
    ):
        summary = run_step(
            "extract", server, volume, "--start", first.isoformat(), "--end", last.isoformat(),
            "--run-id", "hlat-archive", "--concurrency", "8",
        )  # fmt: skip
        measured = server.stats()
    assert summary["status"] == "ok", summary["stderr"][-2000:]
    assert summary["entries"] == len(days)
    assert summary["chunks"] == chunks
    assert summary["requests"] == measured["apod_requests"]
    assert measured["apod_requests"] <= chunks * 1.1, (measured["by_status"], warnings(summary))
    assert measured["by_status"].get("504", 0) >= 1  # the hangs were cut, and survived
    assert 1 < measured["max_in_flight"] <= 8
    assert "at most 8 in flight" in summary["stderr"]


def test_a_month_whose_31_day_request_the_gateway_cuts_still_loads_all_its_days():
    require_images("extract", "transform", "testserver")
    # 31 days x 0.1 s is past the 2 s cut; the 16- and 15-day halves are not.
    with (
        apod_server(SAMPLE_FIXTURES, "--day-cost", "0.1", "--gateway-timeout", "2") as server,
        docker_volume(f"{PREFIX}-data") as volume,
    ):
        extracted = run_step(
            "extract", server, volume, "--start", "2024-01-01", "--end", "2024-01-31",
            "--run-id", "hlat-cut",
        )  # fmt: skip
        measured = server.stats()
        staged = run_step("transform", server, volume, "--run-id", "hlat-cut")
    assert extracted["status"] == "ok", extracted["stderr"][-2000:]
    assert measured["by_status"] == {"200": 2, "504": 1}
    assert extracted["entries"] == 31
    assert (extracted["chunks"], extracted["requests"]) == (1, 3)
    assert (
        "asking 2024-01-01..2024-01-16 and 2024-01-17..2024-01-31 instead" in (extracted["stderr"])
    )
    assert staged["status"] == "ok", staged["stderr"][-2000:]
    assert staged["rows"] == 31
