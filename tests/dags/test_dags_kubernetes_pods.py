"""`apod_etl_k8s`: the pods it would launch, rendered without a cluster.

`render_pods()` (tests/support/airflow_render.py) is what the k8s tests validate against
the Kubernetes schemas and run with Docker; here every pod is checked against the
restricted Pod Security Standard and the interface (PVCs, Secret references, pull
policy, resources).
"""

from __future__ import annotations

import pytest

from apod_pipeline.settings import Settings
from apod_pipeline.steps import steps

pytestmark = pytest.mark.dags

TASKS = [step.task_id for step in steps(Settings())]  # one pod per step, in order


@pytest.fixture(scope="module")
def pods():
    from support.airflow_render import render_pods

    from apod_pipeline.settings import Settings

    return dict(
        render_pods(logical_date="2024-01-02", run_id="scheduled__2024-01-02", settings=Settings())
    )


def container(manifest):
    (only,) = manifest["spec"]["containers"]  # no XCom sidecar
    return only


def test_one_pod_per_task_in_order():
    from support.airflow_render import render_pods

    from apod_pipeline.settings import Settings

    rendered = render_pods(settings=Settings())
    assert [task_id for task_id, _ in rendered] == TASKS
    for _, manifest in rendered:
        assert manifest["apiVersion"] == "v1"
        assert manifest["kind"] == "Pod"


@pytest.mark.parametrize("task_id", TASKS)
def test_restricted_pod_security_standard(pods, task_id):
    spec = pods[task_id]["spec"]
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] == 10001
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(pods[task_id])["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in sc
    assert spec["hostNetwork"] is False
    assert spec["automountServiceAccountToken"] is False
    assert spec["restartPolicy"] == "Never"
    # Read-only root: /tmp is the writable scratch space.
    tmp = next(v for v in spec["volumes"] if v["name"] == "tmp")
    assert "emptyDir" in tmp
    assert {"name": "tmp", "mountPath": "/tmp"} in container(pods[task_id])["volumeMounts"]
    # Only volume types the restricted profile allows.
    for volume in spec["volumes"]:
        assert set(volume) - {"name"} <= {"persistentVolumeClaim", "emptyDir"}


@pytest.mark.parametrize(
    ("task_id", "requests", "limits"),
    [
        ("extract", {"cpu": "100m", "memory": "128Mi"}, {"cpu": "500m", "memory": "256Mi"}),
        ("transform", {"cpu": "200m", "memory": "256Mi"}, {"cpu": "1", "memory": "1Gi"}),
        ("load_postgres", {"cpu": "200m", "memory": "256Mi"}, {"cpu": "1", "memory": "1Gi"}),
        ("load_csv", {"cpu": "200m", "memory": "256Mi"}, {"cpu": "1", "memory": "1Gi"}),
        ("version", {"cpu": "200m", "memory": "256Mi"}, {"cpu": "1", "memory": "1Gi"}),
    ],
)
def test_resources_image_and_arguments(pods, task_id, requests, limits):
    c = container(pods[task_id])
    assert c["resources"] == {"requests": requests, "limits": limits}
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["image"] == f"apod-{task_id.split('_')[0]}:0.1.0"
    assert c.get("command") in (None, [])  # the image's ENTRYPOINT runs
    assert "scheduled__2024-01-02" in c["args"]
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert pods[task_id]["metadata"]["namespace"] == "apod"


@pytest.mark.parametrize(
    ("task_id", "mounts"),
    [
        ("extract", {"/data": "apod-data"}),
        ("transform", {"/data": "apod-data"}),
        ("load_postgres", {"/data": "apod-data"}),
        ("load_csv", {"/data": "apod-data"}),
        ("version", {"/data": "apod-data", "/dvc-remote": "apod-dvc-remote"}),
    ],
)
def test_pvc_mounts(pods, task_id, mounts):
    spec = pods[task_id]["spec"]
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in spec["volumes"]
        if "persistentVolumeClaim" in v
    }
    mounted = {
        m["mountPath"]: claims[m["name"]]
        for m in container(pods[task_id])["volumeMounts"]
        if m["name"] in claims
    }
    assert mounted == mounts


@pytest.mark.parametrize(
    ("task_id", "env"),
    [
        (
            "extract",
            [
                {"name": "APOD_API_URL", "value": "https://api.nasa.gov/planetary/apod"},
                {
                    "name": "NASA_API_KEY",
                    "valueFrom": {"secretKeyRef": {"name": "apod-secrets", "key": "nasa-api-key"}},
                },
            ],
        ),
        ("transform", []),
        (
            "load_postgres",
            [
                {
                    "name": "APOD_DATABASE_URL",
                    "valueFrom": {"secretKeyRef": {"name": "apod-secrets", "key": "database-url"}},
                }
            ],
        ),
        ("load_csv", []),
        ("version", [{"name": "APOD_DVC_REMOTE", "value": "/dvc-remote"}]),
    ],
)
def test_environment_holds_secret_references_only(pods, task_id, env):
    assert container(pods[task_id]).get("env", []) == env


@pytest.mark.parametrize("task_id", TASKS)
def test_operator_lifecycle_arguments(k8s_dag, task_id):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    task = k8s_dag.get_task(task_id)
    assert isinstance(task, KubernetesPodOperator)
    assert task.on_finish_action.value == "delete_succeeded_pod"
    assert task.get_logs is True
    assert task.do_xcom_push is False
    assert task.skip_on_exit_code == [99]
    assert task.image_pull_policy == "IfNotPresent"
    assert task.namespace == "apod"
    assert task.deferrable is False
    # One launch timeout for scheduling and for starting (image pull included).
    assert task.startup_timeout_seconds == task.schedule_timeout_seconds == 600
    assert task.failed_pods_kept == 10
    assert not task.affinity  # one node: no placement rule


def test_launch_timeout_bound_and_placement_follow_the_settings():
    from apod_pipeline.kubernetes import pod_task
    from apod_pipeline.placement import beside_data_holder
    from apod_pipeline.settings import Settings

    settings = Settings.from_env(
        {
            "APOD_K8S_POD_START_TIMEOUT": "45",
            "APOD_K8S_FAILED_PODS_KEPT": "0",
            "APOD_K8S_DATA_HOLDER": "apod-data-holder",
        }
    )
    for step in steps(settings):
        task = pod_task(step, settings)
        assert task.startup_timeout_seconds == task.schedule_timeout_seconds == 45
        assert task.failed_pods_kept == 0
        # Every step mounts the data volume: each is held beside its holder.
        assert task.affinity.to_dict()["pod_affinity"] is not None, step.task_id
        rule = beside_data_holder("apod-data-holder")["podAffinity"]
        (term,) = rule["requiredDuringSchedulingIgnoredDuringExecution"]
        (rendered,) = task.affinity.pod_affinity.required_during_scheduling_ignored_during_execution
        assert rendered.topology_key == term["topologyKey"] == "kubernetes.io/hostname"
        assert rendered.label_selector.match_labels == {
            "app.kubernetes.io/name": "apod-data-holder"
        }


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("APOD_K8S_POD_START_TIMEOUT", "0"),
        ("APOD_K8S_POD_START_TIMEOUT", "ten"),
        ("APOD_K8S_FAILED_PODS_KEPT", "-1"),
    ],
)
def test_a_bad_pod_setting_names_its_variable(variable, text):
    from apod_pipeline.settings import Settings

    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: text})


def test_manual_backfill_pod_arguments():
    from support.airflow_render import render_pods

    from apod_pipeline.settings import Settings

    rendered = dict(
        render_pods(
            logical_date=None,
            start_date="2024-01-01",
            end_date="2024-01-31",
            run_id="manual__backfill",
            settings=Settings(),
        )
    )
    assert container(rendered["extract"])["args"] == [
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-31",
        "--run-id",
        "manual__backfill",
    ]
    assert rendered["extract"]["metadata"]["labels"]["run_id"] == "manual__backfill"


def test_namespace_and_tag_follow_the_settings(monkeypatch):
    from support.airflow_render import render_pods

    monkeypatch.setenv("APOD_K8S_NAMESPACE", "apod-ci")
    monkeypatch.setenv("APOD_IMAGE_TAG", "0.2.0")
    monkeypatch.setenv("APOD_API_URL", "http://apod-testserver:8000/planetary/apod")
    rendered = dict(render_pods())
    assert rendered["transform"]["metadata"]["namespace"] == "apod-ci"
    assert container(rendered["transform"])["image"] == "apod-transform:0.2.0"
    assert container(rendered["extract"])["env"][0]["value"] == (
        "http://apod-testserver:8000/planetary/apod"
    )


@pytest.mark.parametrize("task_id", TASKS)
def test_manifest_is_a_valid_pod_for_the_kubernetes_schema(pods, task_id):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")

    kubernetes_validate.validate(pods[task_id], kubernetes_validate.latest_version(), strict=True)
