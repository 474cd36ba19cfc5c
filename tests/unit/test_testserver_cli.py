"""`python -m apod_testserver` as a process: port 0, the listening line, env keys, bad input."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "fixtures" / "apod"


def start(*args: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    process, base, _ = start_logged(*args, env=env)
    return process, base


def start_logged(*args: str, env: dict | None = None) -> tuple[subprocess.Popen, str, str]:
    """The process, its base URL and what it logged up to the listening line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "apod_testserver", "--port", "0", *args],
        env={**os.environ, "PYTHONPATH": str(REPO / "images" / "testserver"), **(env or {})},
        stderr=subprocess.PIPE,
        text=True,
    )
    preamble = ""
    for line in process.stderr:
        preamble += line
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)$", line.strip())
        if match:
            return process, match.group(1), preamble
    process.wait(timeout=10)
    pytest.fail(f"no listening line; exit code {process.returncode}")


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=10)
    assert process.returncode == 0
    return err


def test_port_zero_prints_the_bound_address_and_sigterm_stops_cleanly():
    process, base = start("--fixtures", str(SAMPLE), "--today", "2024-01-31")
    try:
        response = requests.get(
            f"{base}/planetary/apod", params={"api_key": "cli-secret-key"}, timeout=10
        )
        assert response.json()["date"] == "2024-01-31"
    finally:
        log = stop(process)
    assert "api_key=***" in log
    assert "cli-secret-key" not in log


def test_keys_come_from_the_environment_and_the_sample_is_the_default_fixture():
    env = {"APOD_TESTSERVER_INVALID_KEYS": "bad-one, bad-two", "APOD_ARCHIVE_DIR": ""}
    process, base = start("--today", "2024-01-31", "--quiet", env=env)
    try:
        for key, code in (("bad-two", 403), ("good", 200)):
            response = requests.get(
                f"{base}/planetary/apod", params={"api_key": key, "date": "2024-01-02"}, timeout=10
            )
            assert response.status_code == code
    finally:
        stop(process)


def test_archive_dir_may_name_the_whole_archive_folder(tmp_path):
    years = tmp_path / "ellanan-apod-api" / "api" / "_data" / "years"
    years.mkdir(parents=True)
    (years / "2024.json").write_bytes((SAMPLE / "2024.json").read_bytes())
    process, base = start("--today", "2024-01-31", env={"APOD_ARCHIVE_DIR": str(tmp_path)})
    try:
        response = requests.get(
            f"{base}/planetary/apod", params={"api_key": "k", "date": "2024-01-03"}, timeout=10
        )
        assert response.status_code == 200
    finally:
        stop(process)


def refused(*args: str) -> subprocess.CompletedProcess:
    """Run a server that must not start; it exits 2 at once."""
    result = subprocess.run(
        [sys.executable, "-m", "apod_testserver", *args],
        env={**os.environ, "PYTHONPATH": str(REPO / "images" / "testserver")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    return result


def test_a_missing_fixture_folder_is_a_clear_usage_error(tmp_path):
    result = refused("--fixtures", str(tmp_path / "nowhere"))
    assert "does not exist" in result.stderr
    assert "--fixtures" in result.stderr


def test_latency_switches_are_announced_and_the_exit_line_reports_the_peak():
    process, base, preamble = start_logged(
        "--fixtures", str(SAMPLE), "--today", "2024-01-31", "--quiet",
        "--day-cost", "0.02", "--gateway-timeout", "0.3", "--hang-rate", "0",
    )  # fmt: skip
    try:
        params = {"api_key": "k", "start_date": "2024-01-01", "end_date": "2024-01-10"}
        fits = requests.get(f"{base}/planetary/apod", params=params, timeout=10)
        cut = requests.get(
            f"{base}/planetary/apod", params={**params, "end_date": "2024-01-31"}, timeout=10
        )
    finally:
        log = stop(process)
    assert fits.status_code == 200
    assert cut.status_code == 504
    assert "latency model: 0.02 s per day answered, gateway time-out 0.3 s" in preamble
    assert "served 2 APOD request(s), at most 1 in flight" in log


@pytest.mark.parametrize(
    "args",
    [("--day-cost", "-1"), ("--gateway-timeout", "-2"), ("--hang-rate", "2")],
    ids=["day-cost", "gateway-timeout", "hang-rate"],
)
def test_impossible_latency_switches_are_usage_errors(args):
    assert args[0] in refused("--fixtures", str(SAMPLE), *args).stderr
