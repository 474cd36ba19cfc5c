"""The compose stack's exposure and privileges, checked on the running containers."""

from __future__ import annotations

import json
import os
import stat

import pytest
import requests
from support.services import docker

pytestmark = pytest.mark.compose

LONG_RUNNING = (
    "postgres",
    "objectstore",
    "docker-gate",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
)


def inspect(stack, service: str) -> dict:
    container = stack.compose("ps", "-a", "-q", service).stdout.split()[0]
    return json.loads(docker("inspect", container).stdout)[0]


def assert_non_root(service: str, info: dict) -> None:
    """A running container: none of its processes is root (an official postgres image starts
    as root and drops to postgres, so its USER alone says nothing). An exited one: its user."""
    if info["State"]["Running"]:
        rows = docker("top", info["Id"], "-eo", "pid,uid,comm").stdout.splitlines()[1:]
        processes = [row.split(None, 2) for row in rows]
        assert processes, f"{service}: no process seen"
        assert [p for p in processes if p[1] == "0"] == [], f"{service} runs a process as root"
    else:
        user = info["Config"]["User"].split(":")[0]
        assert user not in ("", "0", "root"), f"{service} runs as root"


def test_published_ports_are_loopback_only(compose_stack):
    published = {}
    for service in (*LONG_RUNNING, "apod-testserver", "alertcatcher"):
        bindings_of = inspect(compose_stack, service)["HostConfig"]["PortBindings"] or {}
        for port, bindings in bindings_of.items():
            for binding in bindings:
                published[f"{service} {port}"] = binding["HostIp"]
    assert set(published) == {
        "postgres 5432/tcp",
        "objectstore 8333/tcp",
        "airflow-api-server 8080/tcp",
        "alertcatcher 8025/tcp",  # the catcher's page (profile alerts)
    }
    assert set(published.values()) == {"127.0.0.1"}


def test_only_the_docker_gate_has_the_docker_socket(compose_stack):
    for service in (
        *LONG_RUNNING,
        "apod-testserver",
        "alertcatcher",
        "apod-db-init",
        "airflow-init",
    ):
        info = inspect(compose_stack, service)
        sources = {m.get("Source") for m in info["Mounts"]}
        has_socket = "/var/run/docker.sock" in sources
        assert has_socket == (service == "docker-gate"), service
        assert_non_root(service, info)
    socket = os.stat("/var/run/docker.sock")
    gate = inspect(compose_stack, "docker-gate")
    assert gate["HostConfig"]["GroupAdd"] == [str(socket.st_gid)]
    assert gate["HostConfig"]["ReadonlyRootfs"] is True
    assert gate["HostConfig"]["CapDrop"] == ["ALL"]
    assert list(gate["NetworkSettings"]["Networks"]) == [f"{compose_stack.project}_docker-gate"]
    # The scheduler reaches Docker through the gate only: no socket, not the socket's group.
    scheduler = inspect(compose_stack, "airflow-scheduler")
    assert not scheduler["HostConfig"]["GroupAdd"]
    env = dict(e.split("=", 1) for e in scheduler["Config"]["Env"])
    assert env["DOCKER_HOST"] == env["APOD_DOCKER_URL"] == "tcp://docker-gate:2375"
    mode = stat.S_IMODE(socket.st_mode)
    assert not mode & stat.S_IWOTH, "the Docker socket must not be world-writable"


def test_env_file_is_private(compose_stack):
    assert stat.S_IMODE(compose_stack.env_file.stat().st_mode) == 0o600


def test_api_refuses_a_wrong_password(compose_stack):
    url = compose_stack.ui_url

    def token(password: str) -> requests.Response:
        login = {"username": "admin", "password": password}
        return requests.post(f"{url}/auth/token", json=login, timeout=30)

    assert token("not-it").status_code == 401
    assert requests.get(f"{url}/api/v2/dags", timeout=30).status_code == 401
    # The same calls with the right password pass: the 401s were the password's doing.
    right = token(compose_stack.env["AIRFLOW_ADMIN_PASSWORD"])
    assert right.status_code == 201
    bearer = {"Authorization": f"Bearer {right.json()['access_token']}"}
    assert requests.get(f"{url}/api/v2/dags", headers=bearer, timeout=30).status_code == 200


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
