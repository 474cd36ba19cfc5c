"""Real services for the tests: the APOD test server, a fresh Postgres database, Docker.

Every fixture here starts or creates something real and removes it afterwards; when a
service cannot be had the test is skipped with the reason (CI turns skips into failures).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE_FIXTURES = REPO / "tests" / "fixtures" / "apod"
VERSION = re.search(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)


def image(name: str) -> str:
    return f"apod-{name}:{VERSION}"


@dataclass
class TestServer:
    url: str  # .../planetary/apod, as the host sees it
    base: str  # http://host:port
    process: subprocess.Popen

    def control(self, path: str, payload: dict | None = None, method: str = "POST") -> dict:
        import requests

        response = requests.request(
            method, f"{self.base}/_control/{path}", json=payload, timeout=10
        )
        response.raise_for_status()
        return response.json() if response.content else {}

    def stats(self) -> dict:
        return self.control("stats", method="GET")


@contextlib.contextmanager
def apod_test_server(fixtures: Path = SAMPLE_FIXTURES, *extra: str) -> Iterator[TestServer]:
    """Run `python -m apod_testserver` on a free port of 127.0.0.1 until the block ends."""
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
        import threading

        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield TestServer(url=f"{base}/planetary/apod", base=base, process=process)
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


# --- Postgres ---------------------------------------------------------------------------


def pg_admin_env() -> dict[str, str]:
    """libpq variables of the throwaway test server (scripts/ensure-test-postgres.sh)."""
    env_file = Path(os.environ.get("APOD_TEST_PG_ENV", REPO / ".cache" / "test-postgres" / "env"))
    if not env_file.exists():
        pytest.skip(
            "test Postgres not started: run scripts/ensure-test-postgres.sh (make test does)"
        )
    values = dict(re.findall(r"^export (\w+)=(.*)$", env_file.read_text(), re.M))
    return values


def superuser(dbname: str = "postgres"):
    """An autocommit connection as the test server's superuser."""
    import psycopg

    admin = pg_admin_env()
    return psycopg.connect(
        host=admin["PGHOST"],
        port=admin["PGPORT"],
        user=admin["PGUSER"],
        dbname=dbname,
        passfile=admin["PGPASSFILE"],
        autocommit=True,
    )


@dataclass
class Database:
    name: str
    role: str
    password: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://{self.role}:{self.password}@{self.host}:{self.port}/{self.name}"

    def query(self, sql: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, params).fetchall()


@contextlib.contextmanager
def fresh_database(prefix: str = "apod_test") -> Iterator[Database]:
    """A new database owned by a new login role with a random password; dropped after."""
    import psycopg

    admin = pg_admin_env()
    suffix = secrets.token_hex(4)
    name, role, password = f"{prefix}_{suffix}", f"{prefix}_owner_{suffix}", secrets.token_hex(16)
    conninfo = dict(
        host=admin["PGHOST"],
        port=admin["PGPORT"],
        user=admin["PGUSER"],
        dbname="postgres",
        passfile=admin["PGPASSFILE"],
    )
    try:
        admin_conn = psycopg.connect(**conninfo, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"test Postgres unreachable: {exc}")
    with admin_conn:
        admin_conn.execute(
            psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                psycopg.sql.Identifier(role), psycopg.sql.Literal(password)
            )
        )
        admin_conn.execute(
            psycopg.sql.SQL("CREATE DATABASE {} OWNER {}").format(
                psycopg.sql.Identifier(name), psycopg.sql.Identifier(role)
            )
        )
        try:
            yield Database(name, role, password, admin["PGHOST"], int(admin["PGPORT"]))
        finally:
            admin_conn.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(name)
                )
            )
            admin_conn.execute(
                psycopg.sql.SQL("DROP ROLE IF EXISTS {}").format(psycopg.sql.Identifier(role))
            )


# --- Docker -----------------------------------------------------------------------------


def docker_available() -> bool:
    return (
        shutil.which("docker") is not None
        and subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0
    )


def require_images(*names: str) -> None:
    if not docker_available():
        pytest.skip("no Docker engine answers (make test starts one)")
    for name in names:
        if (
            subprocess.run(
                ["docker", "image", "inspect", image(name)], capture_output=True, check=False
            ).returncode
            != 0
        ):
            pytest.skip(f"{image(name)} not built (make images)")


def docker(*args: str, env: dict | None = None, check: bool = True, timeout: int = 600):
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, env=env, check=check, timeout=timeout
    )


@contextlib.contextmanager
def docker_volume(prefix: str) -> Iterator[str]:
    name = f"{prefix}-{secrets.token_hex(4)}"
    docker("volume", "create", name)
    try:
        yield name
    finally:
        docker("volume", "rm", "-f", name, check=False)


def volume_cat(volume: str, path: str) -> str:
    """A file on a docker volume, read by a throwaway container (the host may not own it)."""
    return docker(
        "run", "--rm", "-v", f"{volume}:/data", "--entrypoint", "cat", image("version"), path
    ).stdout


def volume_git(volume: str, *args: str) -> str:
    """git in the version image on a volume mounted at /data (the data repository)."""
    return docker(
        "run", "--rm", "-v", f"{volume}:/data", "-w", "/data", "--entrypoint", "git",
        image("version"), "-c", "safe.directory=/data", *args,
    ).stdout  # fmt: skip
