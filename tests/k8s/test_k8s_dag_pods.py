"""Every pod the DAG apod_etl_k8s would launch (tests/support/airflow_render.py) is a
valid Pod of the pinned Kubernetes version, meets the restricted standard the namespace
enforces, and only references what k8s/ and the up scripts provide (PVCs, Secret keys,
images loaded into the cluster)."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

import pytest
from k8s_pss import project_violations, restricted_violations
from k8s_render import (
    NAMESPACE,
    REPO,
    dag_pods,
    kustomize_command,
    pod_spec,
    render_overlay,
    secret_refs,
    validate,
)
from support.services import VERSION

pytestmark = pytest.mark.k8s

sys.path.insert(0, str(REPO / "scripts"))
import k8s_images  # noqa: E402 - scripts/ is no package
import k8s_secrets  # noqa: E402

from apod_pipeline.settings import Settings  # noqa: E402
from apod_pipeline.steps import steps  # noqa: E402

TASKS = [step.task_id for step in steps(Settings())]
RUNS = {
    "manual range": {"start_date": "2024-01-01", "end_date": "2024-01-31", "logical_date": None},
    "scheduled": {"start_date": None, "end_date": None, "logical_date": "2024-01-02"},
}


@pytest.fixture(scope="module", params=list(RUNS))
def pods(request) -> list[tuple[str, dict]]:
    pytest.importorskip("airflow.providers.cncf.kubernetes")
    return dag_pods(**RUNS[request.param])


def test_the_dag_launches_one_pod_per_step_in_order(pods):
    assert [task for task, _ in pods] == TASKS


def test_every_pod_validates_as_a_pod_strictly(pods):
    for task, pod in pods:
        assert pod["kind"] == "Pod", task
        validate(pod)


def test_every_pod_meets_restricted_and_the_project_rules(pods):
    for task, pod in pods:
        spec = pod["spec"]
        assert restricted_violations(spec) == [], task
        assert project_violations(spec, VERSION) == [], task
        assert spec["automountServiceAccountToken"] is False, task
        assert pod["metadata"]["namespace"] == NAMESPACE


def test_pods_use_only_what_the_manifests_and_scripts_provide(pods):
    if kustomize_command() is None:
        pytest.skip("no kubectl or kustomize on PATH")
    claims = {
        o["metadata"]["name"]
        for o in render_overlay("kind")
        if o["kind"] == "PersistentVolumeClaim"
    }
    created = k8s_secrets.secret_data({name: "x" for name in k8s_secrets.GENERATED})
    # What the up scripts load (scripts/k8s_images.py), before their content tags.
    loaded_images = set(k8s_images.sources(VERSION))
    for task, pod in pods:
        spec = pod_spec(pod)
        for volume in spec["volumes"]:
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, task
        for secret, key in secret_refs(spec):
            assert secret == "apod-secrets", task
            assert key in created[secret], task
        for container in spec["containers"]:
            assert container["image"] in loaded_images, task


def test_pods_mount_the_shared_volumes_where_the_steps_expect_them(pods):
    mounts = {}
    for task, pod in pods:
        spec = pod["spec"]
        claim_of = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in spec["volumes"]
            if "persistentVolumeClaim" in v
        }
        (container,) = spec["containers"]
        mounts[task] = {
            m["mountPath"]: claim_of.get(m["name"], "emptyDir") for m in container["volumeMounts"]
        }
    for task in TASKS:
        assert mounts[task]["/data"] == "apod-data"
        assert mounts[task]["/tmp"] == "emptyDir"
    # The DVC remote is the object store, not a volume.
    assert not [m for task in TASKS for m in mounts[task] if m not in ("/data", "/tmp")]


def test_the_version_pod_pushes_to_the_object_store_with_its_identity(pods):
    """The cluster's settings send version to the Service objectstore, with the same two
    keys of apod-secrets the store reads as its one identity."""
    if kustomize_command() is None:
        pytest.skip("no kubectl or kustomize on PATH")
    index = {(o["kind"], o["metadata"]["name"]): o for o in render_overlay("kind")}
    (container,) = dict(pods)["version"]["spec"]["containers"]
    env = {var["name"]: var.get("value", var.get("valueFrom")) for var in container["env"]}
    assert env["APOD_DVC_REMOTE"] == "s3://apod-dvc/apod"
    endpoint = urlsplit(env["AWS_ENDPOINT_URL_S3"])
    service = index[("Service", endpoint.hostname)]["spec"]
    assert [p["port"] for p in service["ports"]] == [endpoint.port]
    statefulset = index[("StatefulSet", endpoint.hostname)]
    assert (
        service["selector"].items() <= statefulset["spec"]["template"]["metadata"]["labels"].items()
    )
    store = pod_spec(statefulset)
    (bucket,) = [e["value"] for e in store["containers"][0]["env"] if e["name"].endswith("BUCKET")]
    assert env["APOD_DVC_REMOTE"].startswith(f"s3://{bucket}/")
    pod_keys = {
        env["AWS_ACCESS_KEY_ID"]["secretKeyRef"]["key"],
        env["AWS_SECRET_ACCESS_KEY"]["secretKeyRef"]["key"],
    }
    assert secret_refs(store) == {("apod-secrets", key) for key in pod_keys}
    # No task reads the other's: only version gets the store's keys.
    for task, pod in pods:
        if task != "version":
            assert not {key for _, key in secret_refs(pod_spec(pod))} & pod_keys, task


def test_manual_and_scheduled_runs_pass_their_dates():
    pytest.importorskip("airflow.providers.cncf.kubernetes")
    manual = dict(dag_pods(**RUNS["manual range"]))["extract"]["spec"]["containers"][0]["args"]
    scheduled = dict(dag_pods(**RUNS["scheduled"]))["extract"]["spec"]["containers"][0]["args"]
    assert manual[:4] == ["--start", "2024-01-01", "--end", "2024-01-31"]
    assert scheduled[:4] == ["--start", "2024-01-02", "--end", "2024-01-02"]
