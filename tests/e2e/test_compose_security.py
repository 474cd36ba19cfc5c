"""The compose stack's exposure and privileges, checked on the running containers."""

from __future__ import annotations

import json
import os
import stat

import pytest
import requests
from support.services import REPO, docker

from e2e.stack import UI_URL, compose

pytestmark = pytest.mark.compose

LONG_RUNNING = ("postgres", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor")


def inspect(service: str) -> dict:
    container = compose("ps", "-a", "-q", service).stdout.split()[0]
    return json.loads(docker("inspect", container).stdout)[0]


def test_published_ports_are_loopback_only(compose_stack):
    published = {}
    for service in (*LONG_RUNNING, "apod-testserver"):
        for port, bindings in (inspect(service)["HostConfig"]["PortBindings"] or {}).items():
            for binding in bindings:
                published[f"{service} {port}"] = binding["HostIp"]
    assert set(published) == {"postgres 5432/tcp", "airflow-apiserver 8080/tcp"}
    assert set(published.values()) == {"127.0.0.1"}


def test_only_the_scheduler_has_the_docker_socket(compose_stack):
    for service in (*LONG_RUNNING, "apod-testserver", "apod-db-init", "airflow-init"):
        info = inspect(service)
        sources = {m.get("Source") for m in info["Mounts"]}
        has_socket = "/var/run/docker.sock" in sources
        assert has_socket == (service == "airflow-scheduler"), service
        assert info["Config"]["User"] != "" or service == "postgres", f"{service} runs as root"
    scheduler = inspect("airflow-scheduler")
    socket = os.stat("/var/run/docker.sock")
    assert scheduler["HostConfig"]["GroupAdd"] == [str(socket.st_gid)]
    mode = stat.S_IMODE(socket.st_mode)
    assert not mode & stat.S_IWOTH, "the Docker socket must not be world-writable"


def test_env_file_is_private(compose_stack):
    assert stat.S_IMODE((REPO / ".env").stat().st_mode) == 0o600


def test_api_refuses_a_wrong_password(compose_stack):
    response = requests.post(
        f"{UI_URL}/auth/token", json={"username": "admin", "password": "not-it"}, timeout=30
    )
    assert response.status_code == 401
    assert requests.get(f"{UI_URL}/api/v2/dags", timeout=30).status_code == 401


def test_loader_role_has_least_privilege(compose_stack):
    import psycopg

    env = compose_stack.env
    loader = {
        "host": "127.0.0.1",
        "port": int(env.get("APOD_PG_PORT") or 5433),
        "user": "apod_loader",
        "password": env["APOD_LOADER_PASSWORD"],
        "connect_timeout": 10,
    }
    with psycopg.connect(dbname="apod", autocommit=True, **loader) as conn:
        assert conn.execute("SELECT count(*) FROM apod.apod_entries").fetchone()[0] >= 1
        for ddl in (
            "CREATE TABLE apod.intruder (x int)",
            "CREATE TABLE public.intruder (x int)",
            "DROP TABLE apod.apod_entries",
            "CREATE SCHEMA intruder",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(ddl)
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(dbname="airflow", **loader).close()
