"""No secret value ever reaches a templated field, a rendered field or the serialized DAG.

Canary values sit in the connections the Docker DAG reads; the tasks are rendered as a
run would render them, and every place Airflow stores or shows is searched for them.
The same connections must still reach the containers, through private_environment.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.dags

NASA_CANARY = "CANARY-nasa-key-7f3a91"
DB_CANARY = "CANARY-db-p@ss:w/rd?#%+"


@pytest.fixture
def canary_connections(monkeypatch):
    from urllib.parse import quote

    monkeypatch.setenv(
        "AIRFLOW_CONN_APOD_NASA_API",
        json.dumps({"conn_type": "http", "host": "api.nasa.gov", "password": NASA_CANARY}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_APOD_DB",
        f"postgres://apod_loader:{quote(DB_CANARY, safe='')}@postgres:5432/apod",
    )


def _render_all(dag):
    from support.airflow_render import render_context

    for task in dag.tasks:
        task.render_template_fields(
            render_context(
                dag,
                task,
                run_id="manual__canary",
                logical_date="2024-01-02",
                conf={"start_date": "2024-01-01"},
            )
        )


def _assert_no_canary(text: str) -> None:
    from urllib.parse import quote

    for canary in (NASA_CANARY, DB_CANARY, quote(DB_CANARY, safe="")):
        assert canary not in text


@pytest.mark.usefixtures("canary_connections")
@pytest.mark.parametrize("dag_fixture", ["docker_dag", "k8s_dag"])
def test_canaries_absent_from_template_fields_and_serialized_dag(request, dag_fixture):
    from airflow.serialization.serialized_objects import DagSerialization

    dag = request.getfixturevalue(dag_fixture)
    _assert_no_canary(json.dumps(DagSerialization.to_dict(dag), default=str))
    _render_all(dag)
    for task in dag.tasks:
        for field in task.template_fields:
            _assert_no_canary(repr(getattr(task, field)))
    _assert_no_canary(json.dumps(DagSerialization.to_dict(dag), default=str))


@pytest.mark.usefixtures("canary_connections")
def test_docker_tasks_resolve_the_connections_only_when_asked(docker_dag):
    import psycopg.conninfo

    resolved = {task.task_id: task.resolve_secrets() for task in docker_dag.tasks}
    assert resolved["extract"] == {"NASA_API_KEY": NASA_CANARY}
    assert set(resolved["load_postgres"]) == {"APOD_DATABASE_URL"}
    parsed = psycopg.conninfo.conninfo_to_dict(resolved["load_postgres"]["APOD_DATABASE_URL"])
    assert parsed == {
        "user": "apod_loader",
        "password": DB_CANARY,
        "host": "postgres",
        "port": "5432",
        "dbname": "apod",
    }
    assert resolved["transform"] == resolved["load_csv"] == resolved["version"] == {}
    # Resolving is not storing: the operators still hold no value.
    for task in docker_dag.tasks:
        assert task._private_environment == {}


@pytest.mark.usefixtures("canary_connections")
def test_secret_values_are_registered_with_the_log_masker(docker_dag):
    from airflow.sdk._shared.secrets_masker import redact

    uri = docker_dag.get_task("load_postgres").resolve_secrets()["APOD_DATABASE_URL"]
    key = docker_dag.get_task("extract").resolve_secrets()["NASA_API_KEY"]
    line = f"connecting with {uri} and key={key}"
    masked = redact(line)
    assert NASA_CANARY not in masked
    assert uri not in masked


@pytest.mark.usefixtures("no_connections")
def test_missing_nasa_connection_means_demo_key_and_missing_db_fails_fast(docker_dag):
    from airflow.sdk.exceptions import AirflowFailException

    assert docker_dag.get_task("extract").resolve_secrets() == {"NASA_API_KEY": "DEMO_KEY"}
    with pytest.raises(AirflowFailException, match="apod_db") as info:
        docker_dag.get_task("load_postgres").resolve_secrets()
    assert "AIRFLOW_CONN_APOD_DB" in str(info.value)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"host": "db", "port": 5432, "database": "apod", "login": "u", "password": "p"},
            "postgresql://u:p@db:5432/apod",
        ),
        (
            {"host": "db", "port": None, "database": "a b", "login": "u@x", "password": "@:/?#%"},
            "postgresql://u%40x:%40%3A%2F%3F%23%25@db/a%20b",
        ),
        (
            {"host": "::1", "port": 5433, "database": "apod", "login": None, "password": None},
            "postgresql://[::1]:5433/apod",
        ),
        (
            {
                "host": "db",
                "port": 5432,
                "database": "apod",
                "login": "u",
                "password": "p",
                "extra": {"sslmode": "require", "cursor": "dictcursor"},
            },
            "postgresql://u:p@db:5432/apod?sslmode=require",
        ),
    ],
)
def test_postgres_uri_quotes_every_part(fields, expected):
    import psycopg.conninfo

    from apod_pipeline.secrets import postgres_uri

    uri = postgres_uri(**fields)
    assert uri == expected
    parsed = psycopg.conninfo.conninfo_to_dict(uri)
    if fields["password"]:
        assert parsed["password"] == fields["password"]
    assert parsed["dbname"] == fields["database"]


@pytest.mark.parametrize("missing", ["host", "database"])
def test_postgres_uri_names_the_missing_field_not_the_password(missing):
    from airflow.sdk.exceptions import AirflowFailException

    from apod_pipeline.secrets import postgres_uri

    fields = {"host": "db", "port": 5432, "database": "apod", "login": "u", "password": "s3cret"}
    fields[missing] = None
    with pytest.raises(AirflowFailException) as info:
        postgres_uri(**fields)
    assert "s3cret" not in str(info.value)
