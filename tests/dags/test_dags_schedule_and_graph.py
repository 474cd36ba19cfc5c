"""Both DAGs: the same graph, schedule, params and retry behaviour; dates rendered per run."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

pytestmark = pytest.mark.dags

EDGES = {
    "extract": {"transform"},
    "transform": {"load_postgres", "load_csv"},
    "load_postgres": {"version"},
    "load_csv": {"version"},
    "version": set(),
}


@pytest.fixture(params=["docker", "k8s"])
def any_dag(request, docker_dag, k8s_dag):
    return {"docker": docker_dag, "k8s": k8s_dag}[request.param]


def rendered_arguments(dag, task_id, **run):
    from support.airflow_render import render_context

    task = dag.get_task(task_id)
    task.render_template_fields(render_context(dag, task, **run))
    return task.command if hasattr(task, "command") else task.arguments


def test_ids_and_tags(docker_dag, k8s_dag):
    assert docker_dag.dag_id == "apod_etl"
    assert k8s_dag.dag_id == "apod_etl_k8s"
    assert set(docker_dag.tags) == {"apod", "etl", "docker"}
    assert set(k8s_dag.tags) == {"apod", "etl", "kubernetes"}


def test_exact_task_graph(any_dag):
    assert {t.task_id: set(t.downstream_task_ids) for t in any_dag.tasks} == EDGES
    assert [t.task_id for t in any_dag.topological_sort()][:2] == ["extract", "transform"]
    # Exit 99 skips downstream: the default trigger rule everywhere.
    assert {t.trigger_rule for t in any_dag.tasks} == {"all_success"}


def test_schedule_catchup_and_concurrency(any_dag):
    from airflow.sdk import CronDataIntervalTimetable

    assert any_dag.timetable == CronDataIntervalTimetable("@daily", timezone="UTC")
    assert any_dag.catchup is False
    assert any_dag.max_active_runs == 1
    # Runs for any APOD date get task instances (none before a DAG's start_date).
    assert any_dag.start_date == dt.datetime(1995, 6, 16, tzinfo=dt.UTC)


def test_retries_with_exponential_backoff_and_timeouts(any_dag):
    timeouts = {t.task_id: t.execution_timeout for t in any_dag.tasks}
    assert timeouts == {
        "extract": dt.timedelta(minutes=45),
        "transform": dt.timedelta(minutes=15),
        "load_postgres": dt.timedelta(minutes=15),
        "load_csv": dt.timedelta(minutes=15),
        "version": dt.timedelta(minutes=30),
    }
    for task in any_dag.tasks:
        assert task.retries == 3
        assert task.retry_delay == dt.timedelta(seconds=30)
        # A multiplier: True (== 1.0) would silently mean a constant delay.
        assert task.retry_exponential_backoff == 2.0
        assert task.max_retry_delay == dt.timedelta(minutes=10)
        assert task.retry_policy is not None


def test_params_are_optional_dates(any_dag):
    from airflow.sdk.exceptions import ParamValidationError

    params = any_dag.params
    assert set(params) == {"start_date", "end_date"}
    for name in params:
        param = copy.copy(params.get_param(name))
        assert param.value is None
        assert param.schema["format"] == "date"
        assert param.schema["type"] == ["null", "string"]
        assert param.resolve("2024-02-29") == "2024-02-29"
        with pytest.raises(ParamValidationError):
            param.resolve("2024-02-30")


def test_doc_md_explains_params_and_backfill(any_dag):
    doc = any_dag.doc_md
    for needle in ("start_date", "end_date", "Backfill", "99", "skipped", any_dag.dag_id):
        assert needle in doc


def test_assets_on_the_table_load_and_the_data_version(any_dag):
    # The CSV's event is a committed version of it: version emits it, with md5 and commit.
    outlets = {t.task_id: [a.uri for a in t.outlets] for t in any_dag.tasks}
    assert outlets == {
        "extract": [],
        "transform": [],
        "load_postgres": ["postgres://postgres:5432/apod/apod/apod_entries"],
        "load_csv": [],
        "version": ["file:///data/apod_data.csv"],
    }


def test_scheduled_run_fetches_its_data_interval_date(any_dag):
    args = rendered_arguments(
        any_dag, "extract", run_id="scheduled__2024-01-02T00:00:00+00:00", logical_date="2024-01-02"
    )
    assert args == [
        "--start",
        "2024-01-02",
        "--end",
        "2024-01-02",
        "--run-id",
        "scheduled__2024-01-02T00:00:00+00:00",
    ]


def test_manual_run_backfills_the_params_range(any_dag):
    args = rendered_arguments(
        any_dag,
        "extract",
        run_id="manual__x",
        logical_date="2025-06-01",
        conf={"start_date": "1995-06-16", "end_date": "1995-12-31"},
    )
    assert args[:4] == ["--start", "1995-06-16", "--end", "1995-12-31"]


def test_manual_run_with_start_only_fetches_that_day(any_dag):
    args = rendered_arguments(
        any_dag,
        "extract",
        run_id="manual__x",
        logical_date="2025-06-01",
        conf={"start_date": "2024-03-05"},
    )
    assert args[:4] == ["--start", "2024-03-05", "--end", "2024-03-05"]


def test_manual_run_without_logical_date_uses_the_day_it_ran_for(any_dag):
    args = rendered_arguments(
        any_dag,
        "extract",
        run_id="manual__y",
        logical_date=None,
        run_after=dt.datetime(2024, 7, 4, 12, 30, tzinfo=dt.UTC),
    )
    assert args[:4] == ["--start", "2024-07-04", "--end", "2024-07-04"]


def test_bad_param_is_refused_before_any_container_starts(any_dag):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        rendered_arguments(
            any_dag,
            "extract",
            run_id="m",
            logical_date="2024-01-01",
            conf={"end_date": "yesterday"},
        )


@pytest.mark.parametrize(
    ("task_id", "arguments"),
    [
        ("transform", ["--run-id", "scheduled__r"]),
        ("load_postgres", ["postgres", "--run-id", "scheduled__r"]),
        ("load_csv", ["csv", "--run-id", "scheduled__r"]),
        ("version", ["--run-id", "scheduled__r", "--init-repo"]),
    ],
)
def test_step_arguments(any_dag, task_id, arguments):
    assert (
        rendered_arguments(any_dag, task_id, run_id="scheduled__r", logical_date="2024-01-02")
        == arguments
    )


def test_retry_policy_fails_at_once_on_exit_codes_retrying_cannot_fix(k8s_dag):
    from airflow.providers.docker.exceptions import DockerContainerFailedException
    from airflow.sdk import RetryAction
    from kubernetes.client import models as k8s

    from apod_pipeline.retry import DOCKER_RETRY_POLICY, POD_RETRY_POLICY

    def docker_failure(code):
        # The message DockerOperator raises (providers/docker/operators/docker.py).
        return DockerContainerFailedException(
            f"Docker container failed: {{'Error': None, 'StatusCode': {code}}}", logs=[]
        )

    def finished_pod(code):
        terminated = k8s.V1ContainerStateTerminated(exit_code=code)
        status = k8s.V1ContainerStatus(
            name="base",
            image="apod-extract:0.1.0",
            image_id="",
            ready=False,
            restart_count=0,
            state=k8s.V1ContainerState(terminated=terminated),
        )
        return k8s.V1Pod(status=k8s.V1PodStatus(container_statuses=[status]))

    pod_task = k8s_dag.get_task("extract")
    for code, action in [(2, "fail"), (3, "fail"), (4, "fail"), (5, "default"), (1, "default")]:
        expected = RetryAction(action)
        decision = DOCKER_RETRY_POLICY.evaluate(docker_failure(code), 1, 4)
        assert decision.action == expected, code
        # What KubernetesPodOperator leaves behind after a failed pod.
        pod_task.remote_pod = finished_pod(code)
        pod_failure = Exception("Pod apod-extract-x returned a failure.")
        decision = POD_RETRY_POLICY.evaluate(pod_failure, 1, 4, context={"task": pod_task})
        assert decision.action == expected, code
    # Failures with no exit code (the engine or the cluster is down) keep their retries.
    assert DOCKER_RETRY_POLICY.evaluate(ConnectionError("refused"), 1, 4).action == RetryAction(
        "default"
    )
    assert POD_RETRY_POLICY.evaluate(TimeoutError(), 1, 4, context={}).action == RetryAction(
        "default"
    )
