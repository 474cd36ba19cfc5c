"""A step pod's life as the DAG's operator leads it, against the cluster stand-in's API
(stub_apiserver.py: the requests KubernetesPodOperator makes, authorised by the Role
as applied): a pod that never starts is deleted once its task gives up at the launch
timeout (APOD_K8S_POD_START_TIMEOUT), so it cannot start late beside the retry's; a
failed pod is kept for inspection, and only the newest APOD_K8S_FAILED_PODS_KEPT of
them. The task runs for real: `airflow tasks test` on the repository's DAG."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import stand_in
import stub_apiserver
import stub_state
import yaml
from k8s_render import REPO, kustomize_command, render_overlay

# docker: the stand-in's kind nodes are containers.
pytestmark = [pytest.mark.k8s, pytest.mark.docker, pytest.mark.timeout(300)]

AIRFLOW = Path(sys.executable).with_name("airflow")
CONTEXT = "kind-apod"
NAMESPACE = "apod"
START_TIMEOUT = 3  # seconds: the pod waits for a claim the cluster does not have
KEPT = 2


def failed_pod(name: str, minutes_ago: int, phase: str = "Failed") -> dict:
    """A step pod an earlier run left, as the API server keeps it."""
    created = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/name": "apod-pipeline", "task_id": "transform"},
            "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "spec": {"containers": [{"name": "base", "image": "apod-transform:x"}]},
        "status": {
            "phase": phase,
            "containerStatuses": [
                {
                    "name": "base",
                    "image": "apod-transform:x",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0 if phase == "Succeeded" else 3}},
                }
            ],
        },
    }


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """A stand-in cluster with the namespace and the scheduler's RBAC applied (from the
    rendered overlay), no claim and no image: a step pod there never starts."""
    if kustomize_command() is None:
        pytest.skip("no kubectl or kustomize on PATH")
    env = stand_in.environment(tmp_path)
    monkeypatch.setenv("CLUSTER_STUB_STATE", env["CLUSTER_STUB_STATE"])

    def run(*argv: str, stdin: str | None = None) -> None:
        result = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr

    run(
        "kind",
        "create",
        "cluster",
        "--name",
        "apod",
        "--config",
        str(REPO / "k8s/kind-cluster.yaml"),
    )
    run("kubectl", "--context", CONTEXT, "create", "namespace", NAMESPACE)
    rbac = [
        o for o in render_overlay("kind") if o["kind"] in ("ServiceAccount", "Role", "RoleBinding")
    ]
    run("kubectl", "--context", CONTEXT, "apply", "-f", "-", stdin=yaml.safe_dump_all(rbac))
    with stub_state.changing() as state:
        objects = state["clusters"][CONTEXT]["objects"]
        for name, minutes in (("old-1", 50), ("old-2", 40), ("old-3", 30), ("old-4", 20)):
            objects[stub_state.key("Pod", NAMESPACE, name)] = failed_pod(name, minutes)
    with stub_apiserver.serve(CONTEXT) as (url, token):
        kubeconfig = tmp_path / "kubeconfig"
        stub_apiserver.kubeconfig(kubeconfig, url, token)
        yield kubeconfig


def pods() -> dict[str, dict]:
    objects = stub_state.read()["clusters"][CONTEXT]["objects"]
    return {k.rsplit("/", 1)[1]: v for k, v in objects.items() if k.startswith("Pod/")}


def test_a_pod_that_never_started_is_gone_once_its_task_failed(cluster, tmp_path):
    home = tmp_path / "airflow"
    home.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "APOD_DEPLOYMENT": "kubernetes",
        "APOD_K8S_NAMESPACE": NAMESPACE,
        "APOD_K8S_POD_START_TIMEOUT": str(START_TIMEOUT),
        "APOD_K8S_FAILED_PODS_KEPT": str(KEPT),
        "KUBECONFIG": str(cluster),
    }

    def airflow(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(AIRFLOW), *args], env=env, cwd=home, capture_output=True, text=True, timeout=240
        )

    migrated = airflow("db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    task = airflow("tasks", "test", "apod_etl_k8s", "extract", "2024-01-02")
    log = task.stdout + task.stderr
    # The task gave up at the launch timeout, on a pod the scheduler could not place.
    assert f"More than {START_TIMEOUT}s" in log, log[-3000:]
    assert "new_state=up_for_retry" in log, log[-3000:]
    # ... and deleted it: nothing is left to start late, once a claim appears.
    deleted = stub_state.read()["clusters"][CONTEXT].get("deleted_pods", [])
    (created,) = [name for name in deleted if name.startswith("apod-extract-")]
    assert f"deleting pod {created} (Pending)" in log
    left = pods()
    assert not [name for name in left if name.startswith("apod-extract-")]
    # The failed pods of earlier runs: the newest KEPT stay, the older ones went.
    assert sorted(left) == ["old-3", "old-4"]
    assert {"old-1", "old-2"} <= set(deleted)


def test_a_failed_pod_is_kept_and_a_succeeded_one_deleted(cluster):
    """The operator's own decision once a pod has finished, on pods as the API holds them."""
    pytest.importorskip("airflow.providers.cncf.kubernetes")
    from kubernetes.client import models as k8s

    from apod_pipeline.kubernetes import ApodPodOperator, pod_kwargs
    from apod_pipeline.settings import Settings
    from apod_pipeline.steps import steps

    with stub_state.changing() as state:
        objects = state["clusters"][CONTEXT]["objects"]
        objects[stub_state.key("Pod", NAMESPACE, "done")] = failed_pod("done", 1, "Succeeded")
        objects[stub_state.key("Pod", NAMESPACE, "broke")] = failed_pod("broke", 1)
    settings = Settings(k8s_failed_pods_kept=KEPT)
    (transform,) = [s for s in steps(settings) if s.task_id == "transform"]
    operator = ApodPodOperator(**pod_kwargs(transform, settings), config_file=str(cluster))

    def pod(name: str) -> k8s.V1Pod:
        return k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=name, namespace=NAMESPACE))

    assert operator.process_pod_deletion(pod("broke")) is False
    assert operator.process_pod_deletion(pod("done")) is True
    # The failed one stays; with it the newest KEPT failed pods in all.
    assert sorted(pods()) == ["broke", "old-4"]
