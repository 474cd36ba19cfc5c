"""The `multinode` overlay: the steps' shared volume apod-data reached from any node.
In both of its forms (ReadWriteOnce with the data holder, as committed; ReadWriteMany
with APOD_DATA_STORAGE_CLASS) every object validates strictly against the schemas, and
every pod that mounts apod-data (the overlay's and every pod the DAG launches, rendered
by the operator with the overlay's ConfigMap) is either on a ReadWriteMany claim or
held on the holder's node. And the kind config of `KIND_NODES=3 make kind-up`."""

from __future__ import annotations

import copy
import os
import shutil

import k8s_kind_config
import k8s_overlay
import k8s_storage
import pytest
import yaml
from k8s_render import (
    REPO,
    by_kind_name,
    config_maps,
    kustomize_command,
    pod_spec,
    render,
    validate,
)

pytestmark = pytest.mark.k8s

HOSTNAME = "kubernetes.io/hostname"


def render_multinode(storage_class: str | None, monkeypatch) -> list[dict]:
    """The overlay as the up scripts apply it, with APOD_DATA_STORAGE_CLASS as given."""
    if kustomize_command() is None:
        pytest.skip("no kubectl or kustomize on PATH")
    if storage_class:
        monkeypatch.setenv(k8s_storage.STORAGE_CLASS_ENV, storage_class)
    else:
        monkeypatch.delenv(k8s_storage.STORAGE_CLASS_ENV, raising=False)
    target = REPO / ".cache" / "k8s" / f"test-multinode-{storage_class or 'rwo'}-{os.getpid()}"
    try:
        k8s_overlay.write("multinode", target)
        return render(str(target.relative_to(REPO)))
    finally:
        shutil.rmtree(target, ignore_errors=True)


@pytest.fixture(scope="module", params=[None, "nfs-client"], ids=["rwo-holder", "rwx"])
def multinode(request):
    with pytest.MonkeyPatch.context() as monkeypatch:
        objs = render_multinode(request.param, monkeypatch)
    return request.param, objs


def dag_pods_of(objs: list[dict]) -> list[tuple[str, dict]]:
    """Every pod of one run, rendered by the operator with the overlay's ConfigMap."""
    pytest.importorskip("airflow.providers.cncf.kubernetes")
    from support.airflow_render import render_pods

    from apod_pipeline.settings import Settings

    (config,) = [v for k, v in config_maps(objs).items() if k.startswith("apod-airflow-config")]
    settings = Settings.from_env({**config, "APOD_K8S_NAMESPACE": "apod"})
    return render_pods(logical_date="2024-01-02", run_id="scheduled__multinode", settings=settings)


def mounts_data(spec: dict) -> bool:
    return any(
        (v.get("persistentVolumeClaim") or {}).get("claimName") == "apod-data"
        for v in spec.get("volumes", [])
    )


def beside(spec: dict, labels: dict[str, str]) -> bool:
    """A required pod affinity to pods with these labels, on the same node."""
    terms = ((spec.get("affinity") or {}).get("podAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or []
    return any(
        t.get("topologyKey") == HOSTNAME
        and (t.get("labelSelector") or {}).get("matchLabels", {}).items() <= labels.items()
        and (t.get("labelSelector") or {}).get("matchLabels")
        for t in terms
    )


def placement_violations(objs: list[dict], pods: list[tuple[str, dict]]) -> list[str]:
    """Each pod that mounts apod-data and could land where the volume is not."""
    index = by_kind_name(objs)
    claim = index[("PersistentVolumeClaim", "apod-data")]["spec"]
    if "ReadWriteMany" in claim["accessModes"]:
        return []
    holders = [
        o for o in objs if o["kind"] in ("Deployment", "StatefulSet") and mounts_data(pod_spec(o))
    ]
    if len(holders) != 1:
        return [f"ReadWriteOnce apod-data needs one holder, found {len(holders)}"]
    (holder,) = holders
    labels = holder["spec"]["template"]["metadata"]["labels"]
    out = []
    if holder["spec"]["replicas"] != 1 or holder["spec"]["strategy"]["type"] != "Recreate":
        out.append("the holder must be one pod, replaced by Recreate (never two at once)")
    for where, spec in [
        *((f"{o['kind']}/{o['metadata']['name']}", pod_spec(o)) for o in objs if pod_spec(o)),
        *((f"DAG pod {task}", pod["spec"]) for task, pod in pods),
    ]:
        if spec is not pod_spec(holder) and mounts_data(spec) and not beside(spec, labels):
            out.append(f"{where} mounts apod-data anywhere")
    return out


def test_every_object_validates_strictly(multinode):
    _, objs = multinode
    for obj in objs:
        validate(obj)


def test_every_pod_that_mounts_the_data_can_reach_it(multinode):
    storage_class, objs = multinode
    pods = dag_pods_of(objs)
    assert [task for task, pod in pods if mounts_data(pod["spec"])] == [
        "extract",
        "transform",
        "load_postgres",
        "load_csv",
        "version",
    ]
    assert placement_violations(objs, pods) == []
    claim = by_kind_name(objs)[("PersistentVolumeClaim", "apod-data")]["spec"]
    holder = ("Deployment", "apod-data-holder")
    if storage_class:
        assert claim["accessModes"] == ["ReadWriteMany"]
        assert claim["storageClassName"] == storage_class
        assert holder not in by_kind_name(objs)
        assert not [task for task, pod in pods if pod["spec"].get("affinity")]
    else:
        assert claim["accessModes"] == ["ReadWriteOnce"]
        assert "storageClassName" not in claim  # the cluster's default
        assert holder in by_kind_name(objs)


def test_the_placement_check_can_fail(monkeypatch):
    """A DAG pod without the rule, or a second holder, breaks it."""
    objs = render_multinode(None, monkeypatch)
    pods = dag_pods_of(objs)
    stray = copy.deepcopy(pods)
    del stray[3][1]["spec"]["affinity"]
    assert placement_violations(objs, stray) == [f"DAG pod {stray[3][0]} mounts apod-data anywhere"]
    twice = copy.deepcopy(objs)
    holder = by_kind_name(twice)[("Deployment", "apod-data-holder")]
    holder["spec"]["strategy"]["type"] = "RollingUpdate"
    assert placement_violations(twice, pods) == [
        "the holder must be one pod, replaced by Recreate (never two at once)"
    ]


def test_the_holder_the_dag_is_told_of_is_the_holder_that_runs(monkeypatch):
    objs = render_multinode(None, monkeypatch)
    (config,) = [v for k, v in config_maps(objs).items() if k.startswith("apod-airflow-config")]
    holder = by_kind_name(objs)[("Deployment", "apod-data-holder")]
    labels = holder["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == config["APOD_K8S_DATA_HOLDER"] == k8s_storage.HOLDER
    (container,) = pod_spec(holder)["containers"]
    assert container["volumeMounts"][0] == {"name": "data", "mountPath": "/data", "readOnly": True}


@pytest.mark.parametrize("overlay", ["kind", "minikube"])
def test_the_storage_class_setting_is_for_the_multinode_overlay_only(overlay):
    assert k8s_storage.data_volume(overlay, {"APOD_DATA_STORAGE_CLASS": "nfs"}).patches == ()


@pytest.mark.parametrize("name", ["NFS", "nfs_client", "-nfs", "a" * 254])
def test_a_storage_class_that_cannot_be_one_is_refused(name):
    with pytest.raises(ValueError, match="APOD_DATA_STORAGE_CLASS"):
        k8s_storage.data_volume("multinode", {"APOD_DATA_STORAGE_CLASS": name})


def test_kind_nodes_three_is_a_control_plane_and_two_workers_of_the_pinned_image():
    committed = yaml.safe_load(k8s_kind_config.CONFIG.read_text())
    config = yaml.safe_load(k8s_kind_config.with_workers(k8s_kind_config.CONFIG.read_text(), 3))
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker"]
    assert {n["image"] for n in config["nodes"]} == {committed["nodes"][0]["image"]}
    assert {k: v for k, v in config.items() if k != "nodes"} == {
        k: v for k, v in committed.items() if k != "nodes"
    }
    assert yaml.safe_load(k8s_kind_config.with_workers(k8s_kind_config.CONFIG.read_text(), 1)) == (
        committed
    )
    with pytest.raises(ValueError, match="KIND_NODES"):
        k8s_kind_config.with_workers(k8s_kind_config.CONFIG.read_text(), 0)
    with pytest.raises(ValueError, match="last key"):
        k8s_kind_config.with_workers(
            "kind: Cluster\nnodes:\n  - role: x\n    image: i\nname: a\n", 2
        )
