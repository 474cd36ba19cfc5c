"""`airflow dags test apod_etl` on the real Docker engine, as the integration tests run it:
a throwaway AIRFLOW_HOME (sqlite), the repository's DAGs, step containers on the host
network, a fresh Postgres database prepared by `apod-load init-db` with a loader role of
the test's own, and queries on what Airflow recorded of the latest run.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from support.services import REPO, docker, image, pg_admin_env, superuser

AIRFLOW = Path(sys.executable).with_name("airflow")
DAG_ID = "apod_etl"
LATEST_RUN = f"(SELECT run_id FROM dag_run WHERE dag_id = '{DAG_ID}' ORDER BY id DESC LIMIT 1)"


def role_url(db, role: str, password: str, scheme: str = "postgresql") -> str:
    """A URI for `role` on the test database (Airflow's connection scheme is postgres)."""
    return f"{scheme}://{role}:{quote(password, safe='')}@{db.host}:{db.port}/{db.name}"


def admin_password() -> str:
    passfile = Path(pg_admin_env()["PGPASSFILE"])
    return passfile.read_text().strip().split(":", 4)[4]


def init_db(db, loader_role: str, loader_password: str) -> None:
    """`apod-load init-db` as the server's superuser: schema, table and the loader role."""
    env = {
        **os.environ,
        "APOD_DATABASE_URL": role_url(db, "postgres", admin_password()),
        "APOD_LOADER_PASSWORD": loader_password,
    }
    result = docker(
        "run", "--rm", "--network", "host", "-e", "APOD_DATABASE_URL",
        "-e", "APOD_LOADER_PASSWORD", image("load"), "init-db", "--loader-role", loader_role,
        env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]


def admin_query(dbname: str, query) -> list[tuple]:
    """As the server's superuser: init-db made the schema, the database owner cannot read it."""
    with superuser(dbname) as conn:
        cursor = conn.execute(query)
        return cursor.fetchall() if cursor.description else []


def drop_role(role: str) -> None:
    from psycopg import sql

    admin_query("postgres", sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def dags_test_env(home: Path, *, data: str, remote: str, api_url: str, db_url: str, **extra):
    """The environment of `airflow` for one test: its home, the repository's DAGs, the
    step containers on the host network with these volumes, the loader's connection."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "APOD_DOCKER_NETWORK": "host",
        "APOD_DATA_VOLUME": data,
        "APOD_DVC_VOLUME": remote,
        "APOD_API_URL": api_url,
        "AIRFLOW_CONN_APOD_DB": db_url,
        **extra,
    }


def airflow(env: dict, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(AIRFLOW), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=env["AIRFLOW_HOME"],
    )


def of_latest_run(home: Path, query: str) -> list[tuple]:
    """The rows of `query`, in which `{run}` stands for the latest apod_etl run's id."""
    with sqlite3.connect(home / "airflow.db") as conn:
        return conn.execute(query.format(run=LATEST_RUN)).fetchall()
