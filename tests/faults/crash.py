"""What the crash scenarios of the fault tier share: a Postgres server in a container of
its own (so that a test may kill the whole server), a size-limited /data volume, and the
alert a task's last try would send for a crashed step, delivered for real.

The alert: a crash that outlives a task's retries fails the task's last try with the
step's exit code and output, and the task's on_failure_callback (alerts.task_failed)
sends the message. Here the failed step's real output and exit code go into the real
DockerOperator failure, the real `apod_etl` task and the callback, and the message goes
through the real channels to the alert catcher: what reaches an operator for this crash.
That Airflow calls the callback when the retries run out is the callback's own contract,
tested with `airflow dags test` (tests/integration/test_alerts_dags_test.py).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace

import psycopg
from support.alerting import AlertCatcher, alert_settings, connection_env
from support.services import REPO, Database, docker, image

from apod_tools.runner import StepRun

PG_MAJOR = (REPO / "images" / "postgres" / "PG_MAJOR").read_text().strip()
POSTGRES_IMAGE = f"apod-postgres:{PG_MAJOR}"  # what compose runs when no registry answers
HOLDER = "apod-faults-holder"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def postgres_server(label: str) -> Iterator[tuple[str, Database]]:
    """A Postgres server of the test's own: a container on a volume of its own, published
    on a free loopback port, with one database owned by one login role. Yields the
    container's name (to kill and start) and the database. Removed with its volume."""
    token = secrets.token_hex(4)
    name, volume = f"apod-faults-pg-{label}-{token}", f"apod-faults-pg-{label}-{token}"
    port, password = free_port(), secrets.token_hex(16)
    docker("volume", "create", volume)
    try:
        docker(
            "run", "-d", "--name", name, "-e", "POSTGRES_PASSWORD",
            "-p", f"127.0.0.1:{port}:5432", "-v", f"{volume}:/var/lib/postgresql/data",
            POSTGRES_IMAGE,
            env={**os.environ, "POSTGRES_PASSWORD": password},
        )  # fmt: skip
        admin = Database("postgres", "postgres", password, "127.0.0.1", port)
        wait_for_server(admin)
        db = Database(
            f"apod_{label}", f"apod_{label}_owner", secrets.token_hex(16), "127.0.0.1", port
        )
        with psycopg.connect(admin.url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE \"{db.role}\" LOGIN PASSWORD '{db.password}'")
            conn.execute(f'CREATE DATABASE "{db.name}" OWNER "{db.role}"')
        yield name, db
    finally:
        docker("rm", "-f", name, check=False)
        docker("volume", "rm", "-f", volume, check=False)


def wait_for_server(db: Database, timeout: float = 120) -> None:
    """Until the server takes a query (after its first start, or crash recovery)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.query("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@contextlib.contextmanager
def small_volume(label: str, size: str) -> Iterator[str]:
    """A /data volume of `size` (a tmpfs, owned by the steps' uid 10001). A container holds
    it mounted for the whole block: a tmpfs lives as long as something mounts it, and the
    steps, each a container of its own, must find what the one before wrote."""
    name = f"apod-faults-{label}-{secrets.token_hex(4)}"
    options = f"size={size},uid=10001,gid=0,mode=0775"
    docker("volume", "create", "--driver", "local", "--opt", "type=tmpfs", "--opt",
           "device=tmpfs", "--opt", f"o={options}", name)  # fmt: skip
    holder = f"{HOLDER}-{name}"
    try:
        docker("run", "-d", "--name", holder, "--network", "none", "-v", f"{name}:/data",
               "--entrypoint", "sleep", image("version"), "infinity")  # fmt: skip
        yield name
    finally:
        docker("rm", "-f", holder, check=False)
        docker("volume", "rm", "-f", name, check=False)


def last_try_alert(run: StepRun, task_id: str, monkeypatch) -> list:
    """The alert of `task_id`'s last try failing as `run` failed, sent through e-mail and
    webhook to an alert catcher; what it caught."""
    from airflow.providers.docker.exceptions import DockerContainerFailedException

    from apod_pipeline import alerts
    from apod_pipeline import docker as docker_dag

    task = docker_dag.dag().get_task(task_id)
    result = {"Error": None, "StatusCode": run.returncode}
    failure = DockerContainerFailedException(
        f"Docker container failed: {result!r}", logs=run.output.splitlines()
    )
    run_id = "scheduled__2024-02-01T00:00:00+00:00"
    ti = SimpleNamespace(
        dag_id=docker_dag.DAG_ID,
        run_id=run_id,
        task_id=task_id,
        try_number=task.retries + 1,
        max_tries=task.retries,
        log_url=f"http://127.0.0.1:8080/dags/apod_etl/runs/{run_id}/tasks/{task_id}",
    )
    with AlertCatcher() as catcher:
        for name, value in connection_env(alert_settings(catcher)).items():
            monkeypatch.setenv(name, value)
        context = {
            "ti": ti,
            "task": task,
            "exception": failure,
            "data_interval_start": datetime(2024, 1, 31, tzinfo=UTC),
            "data_interval_end": datetime(2024, 2, 1, tzinfo=UTC),
        }
        alerts.task_failed(context)
        return catcher.caught()
