"""The one pipeline definition (dags/apod_pipeline/steps.py) and its three renderers:
DockerOperator, KubernetesPodOperator and `docker run` by hand run the same steps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.dags

REPO = Path(__file__).resolve().parents[2]
RUN = {"run_id": "manual__agree", "start": "2024-01-01", "end": "2024-01-31"}


def values(run=RUN):
    from apod_pipeline.steps import END, RUN_ID, START

    return {START: run["start"], END: run["end"], RUN_ID: run["run_id"]}


def volume_placement():
    from apod_pipeline.by_hand import Placement

    return Placement(volumes={"data": "apod-data", "dvc-remote": "apod-dvc-remote"})


def option_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def test_definition_and_by_hand_runner_need_only_the_standard_library():
    """`make steps` runs on a machine with Docker and python3 only: no virtualenv."""
    code = (
        "import json, sys; sys.path[:0] = sys.argv[1:];"
        "import apod_pipeline.steps, apod_pipeline.by_hand, apod_tools.runner;"
        "top = {m.split('.')[0] for m in sys.modules};"
        "print(json.dumps(sorted(top - set(sys.stdlib_module_names) - {'__main__'})))"
    )
    # -S: no site-packages at all (Airflow is installed in this interpreter's venv).
    plain = [sys.executable, "-I", "-S"]
    imported = subprocess.run(
        [*plain, "-c", code, str(REPO / "dags"), str(REPO / "scripts")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout) == ["apod_pipeline", "apod_tools"]
    usage = subprocess.run(
        [*plain, str(REPO / "scripts" / "run-steps.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode == 0, usage.stderr
    assert "usage: run-steps.py" in usage.stdout


def test_the_three_renderers_run_the_same_containers(docker_dag):
    from support.airflow_render import render_context, render_pods

    from apod_pipeline.by_hand import docker_run
    from apod_pipeline.settings import Settings
    from apod_pipeline.steps import steps

    settings = Settings()
    conf = {"start_date": RUN["start"], "end_date": RUN["end"]}
    pods = dict(render_pods(logical_date=None, run_id=RUN["run_id"], settings=settings, **conf))
    secrets = {"NASA_API_KEY": "k", "APOD_DATABASE_URL": "u"}
    for step in steps(settings):
        task = docker_dag.get_task(step.task_id)
        task.render_template_fields(
            render_context(docker_dag, task, run_id=RUN["run_id"], logical_date=None, conf=conf)
        )
        (pod,) = pods[step.task_id]["spec"]["containers"]
        by_hand = docker_run(step, settings, values(), volume_placement(), secrets)
        argv = by_hand.argv()

        assert task.image == pod["image"] == by_hand.image, step.task_id
        assert task.command == pod["args"] == list(by_hand.arguments), step.task_id
        docker_env = {**task.environment, **{ref.env: "" for ref in task.secret_env}}
        pod_env = {var["name"] for var in pod.get("env", [])}
        assert set(docker_env) == pod_env == set(option_values(argv, "-e")), step.task_id
        assert task.environment == {k: by_hand.environment[k] for k in task.environment}
        docker_targets = [m["Target"] for m in task.mounts]
        pod_targets = [m["mountPath"] for m in pod["volumeMounts"] if m["name"] != "tmp"]
        hand_targets = [v.split(":")[1] for v in option_values(argv, "-v")]
        assert docker_targets == pod_targets == hand_targets, step.task_id


def test_extract_concurrency_is_passed_only_when_set():
    from apod_pipeline.by_hand import docker_run
    from apod_pipeline.docker import docker_kwargs
    from apod_pipeline.kubernetes import pod_kwargs
    from apod_pipeline.settings import Settings
    from apod_pipeline.steps import steps

    for settings, expected in ((Settings(), []), (Settings(extract_concurrency=3), ["3"])):
        for step in steps(settings):
            wanted = expected if step.task_id == "extract" else []
            by_hand = docker_run(step, settings, values(), volume_placement(), {})
            for arguments in (
                docker_kwargs(step, settings)["command"],
                pod_kwargs(step, settings)["arguments"],
                list(by_hand.arguments),
            ):
                assert option_values(arguments, "--concurrency") == wanted, step.task_id


def test_by_hand_secrets_travel_by_name_and_files_read_only():
    from apod_pipeline.by_hand import docker_run
    from apod_pipeline.settings import Settings
    from apod_pipeline.steps import steps

    settings = Settings()
    environ = {
        "NASA_API_KEY_FILE": "/home/me/nasa.key",
        "APOD_DATABASE_URL": "postgresql://u:CANARY-pw@db/apod",
        "PGPASSFILE": "/home/me/.pgpass",
        "PGPASSWORD": "CANARY-libpq",
        "AWS_SECRET_ACCESS_KEY": "CANARY-unrelated",
    }
    by_step = {
        s.task_id: docker_run(s, settings, values(), volume_placement(), environ)
        for s in steps(settings)
    }
    for task_id, run in by_step.items():
        assert not [arg for arg in run.argv() if "CANARY" in arg], task_id
    extract = by_step["extract"].argv()
    assert "/home/me/nasa.key:/run/secrets/NASA_API_KEY_FILE:ro" in extract
    assert by_step["extract"].environment["NASA_API_KEY_FILE"] == "/run/secrets/NASA_API_KEY_FILE"
    load = by_step["load_postgres"]
    assert set(option_values(load.argv(), "-e")) == {
        "APOD_DATABASE_URL",
        "PGPASSFILE",
        "PGPASSWORD",
    }
    assert "/home/me/.pgpass:/run/secrets/PGPASSFILE:ro" in load.argv()
    assert load.cli_environment({})["APOD_DATABASE_URL"] == environ["APOD_DATABASE_URL"]
    # Each secret reaches only the step the definition gives it to.
    for task_id in ("transform", "load_csv", "version"):
        assert not {"NASA_API_KEY_FILE", "APOD_DATABASE_URL"} & set(by_step[task_id].environment), (
            task_id
        )


def test_make_steps_versions_into_the_checkout(tmp_path):
    """By hand on a checkout: version commits into it (no --init-repo), and the checkout
    and a local DVC remote are mounted at their own paths."""
    from apod_pipeline.by_hand import checkout_placement, docker_run
    from apod_pipeline.settings import Settings
    from apod_pipeline.steps import Checkout, steps

    settings = Settings()
    checkout = Checkout(path="/src/apod", local_remote="/var/tmp/remote")
    placement = checkout_placement(checkout, user="1000:1000")
    runs = {
        s.task_id: docker_run(s, settings, values(), placement, {})
        for s in steps(settings, checkout)
    }
    version = runs.pop("version")
    assert list(version.arguments) == [
        "--run-id",
        RUN["run_id"],
        "--csv",
        "/src/apod/data/apod_data.csv",
    ]
    assert option_values(version.argv(), "-v") == [
        "/src/apod:/src/apod",
        "/var/tmp/remote:/var/tmp/remote",
    ]
    # No APOD_DVC_REMOTE: the checkout's own .dvc/config names the remote. No git push.
    assert dict(version.environment) == {"APOD_GIT_REMOTE": "none"}
    for task_id, run in runs.items():
        assert option_values(run.argv(), "-v") == ["/src/apod/data:/data"], task_id
        assert option_values(run.argv(), "--user") == ["1000:1000"], task_id
    given = Checkout(path="/src/apod", dvc_remote="s3://bucket/apod", git_remote="origin")
    (version,) = [s for s in steps(settings, given) if s.task_id == "version"]
    assert version.environment == {
        "APOD_GIT_REMOTE": "origin",
        "APOD_DVC_REMOTE": "s3://bucket/apod",
    }
    assert [v.path for v in version.volumes] == ["/src/apod"]
