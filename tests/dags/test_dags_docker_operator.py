"""`apod_etl`: the exact DockerOperator arguments each step is built with."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.dags

DATA = {"Target": "/data", "Source": "apod-data", "Type": "volume", "ReadOnly": False}
DVC = {"Target": "/dvc-remote", "Source": "apod-dvc-remote", "Type": "volume", "ReadOnly": False}
DAYS = (
    "run_days(ti, dag_run, params, params.start_date or ds | default(dag_run.run_after | ds), "
    "params.end_date or params.start_date or ds | default(dag_run.run_after | ds))"
)
START = "{{ " + DAYS + ".start }}"
END = "{{ " + DAYS + ".end }}"

EXPECTED = {
    "extract": {
        "image": "apod-extract:0.1.0",
        "command": ["--start", START, "--end", END, "--run-id", "{{ run_id }}"],
        "environment": {"APOD_API_URL": "https://api.nasa.gov/planetary/apod"},
        "secrets": ["NASA_API_KEY"],
        "mounts": [DATA],
        "mem_limit": "256m",
    },
    "transform": {
        "image": "apod-transform:0.1.0",
        "command": ["--run-id", "{{ run_id }}"],
        "environment": {},
        "secrets": [],
        "mounts": [DATA],
        "mem_limit": "1g",
    },
    "load_postgres": {
        "image": "apod-load:0.1.0",
        "command": ["postgres", "--run-id", "{{ run_id }}"],
        "environment": {},
        "secrets": ["APOD_DATABASE_URL"],
        "mounts": [DATA],
        "mem_limit": "1g",
    },
    "load_csv": {
        "image": "apod-load:0.1.0",
        "command": ["csv", "--run-id", "{{ run_id }}"],
        "environment": {},
        "secrets": [],
        "mounts": [DATA],
        "mem_limit": "1g",
    },
    "version": {
        "image": "apod-version:0.1.0",
        "command": ["--run-id", "{{ run_id }}", "--init-repo"],
        "environment": {"APOD_DVC_REMOTE": "/dvc-remote"},
        "secrets": [],
        "mounts": [DATA, DVC],
        "mem_limit": "1g",
    },
}


@pytest.mark.parametrize("task_id", list(EXPECTED))
def test_operator_arguments(docker_dag, task_id):
    from airflow.providers.docker.operators.docker import DockerOperator

    task = docker_dag.get_task(task_id)
    expected = EXPECTED[task_id]
    assert isinstance(task, DockerOperator)
    assert task.image == expected["image"]
    assert task.command == expected["command"]
    assert task.environment == expected["environment"]
    assert [ref.env for ref in task.secret_env] == expected["secrets"]
    assert [dict(m) for m in task.mounts] == expected["mounts"]
    assert task.mem_limit == expected["mem_limit"]
    assert task.docker_url == "unix://var/run/docker.sock"
    assert task.network_mode == "apod-net"
    assert task.auto_remove == "force"
    assert task.mount_tmp_dir is False
    assert task.skip_on_exit_code == [99]
    assert task.xcom_all is True  # execute() keeps the JSON summary among the lines
    assert task.do_xcom_push is True
    assert task.force_pull is False
    assert task.entrypoint is None  # the image's ENTRYPOINT is the step's CLI
    assert task.user is None  # the image's non-root USER
    # Nothing secret at parse time: the private environment is filled in execute().
    assert task._private_environment == {}


def test_settings_from_the_environment_reach_the_operators(monkeypatch):
    from apod_pipeline import docker

    monkeypatch.setenv("APOD_IMAGE_TAG", "9.9.9")
    monkeypatch.setenv("APOD_DOCKER_URL", "tcp://docker:2375")
    monkeypatch.setenv("APOD_DOCKER_NETWORK", "host")
    monkeypatch.setenv("APOD_DATA_VOLUME", "data-x")
    monkeypatch.setenv("APOD_DVC_VOLUME", "dvc-x")
    monkeypatch.setenv("APOD_API_URL", "http://apod-testserver:8000/planetary/apod")
    dag = docker.dag()
    version = dag.get_task("version")
    assert version.image == "apod-version:9.9.9"
    assert version.docker_url == "tcp://docker:2375"
    assert version.network_mode == "host"
    assert [m["Source"] for m in version.mounts] == ["data-x", "dvc-x"]
    assert dag.get_task("extract").environment == {
        "APOD_API_URL": "http://apod-testserver:8000/planetary/apod"
    }


def test_resource_conversion_to_docker_units():
    from apod_pipeline.docker import docker_cpus, docker_memory

    assert docker_memory("256Mi") == "256m"
    assert docker_memory("1Gi") == "1g"
    assert docker_cpus("500m") == 0.5
    assert docker_cpus("1") == 1.0
