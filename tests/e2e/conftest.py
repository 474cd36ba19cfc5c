"""The compose stack, brought up once per session for the compose and browser tests.

The session fixture does what `make demo` does (scripts/compose-up.sh --offline, then
one run of apod_etl for DEMO_DATE through the REST API) and tears the stack down with
its volumes at the end. APOD_KEEP_STACK=1 leaves it running; a stack that was already
running before the session is left running too (its volumes hold someone's data).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.services import REPO, docker_available

from e2e.stack import DEMO_DATE, UP_TIMEOUT, Stack, compose, env_file


def _stack_running() -> bool:
    result = compose("ps", "-q", "--status", "running", "airflow-apiserver", check=False)
    return result.returncode == 0 and bool(result.stdout.strip())


@pytest.fixture(scope="session")
def compose_stack() -> Iterator[Stack]:
    if not docker_available():
        pytest.skip("no Docker engine answers (make test starts one)")
    was_running = (REPO / ".env").exists() and _stack_running()
    started = time.monotonic()
    up = subprocess.run(
        [str(REPO / "scripts" / "compose-up.sh"), "--offline"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=UP_TIMEOUT,
        check=False,
    )
    up_seconds = time.monotonic() - started
    if up.returncode != 0:
        pytest.fail(f"compose-up.sh --offline failed ({up.returncode}):\n{up.stderr[-5000:]}")
    stack = Stack(up_seconds=up_seconds, demo={}, env=env_file())
    stack.demo = stack.run_dag(DEMO_DATE)
    try:
        yield stack
    finally:
        keep = os.environ.get("APOD_KEEP_STACK") == "1" or was_running
        if not keep:
            subprocess.run(
                [str(REPO / "scripts" / "compose-down.sh"), "--volumes"],
                cwd=REPO,
                capture_output=True,
                timeout=600,
                check=False,
            )


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = REPO / "artifacts"
    path.mkdir(exist_ok=True)
    return path
