"""scripts/k8s_doctor.py (make k8s-doctor, run first by the up scripts) against the
cluster stand-in's kind, minikube and kubectl with chosen versions, and the real Docker
engine; and k8s/tools.env against what the manifests ask for (the node's size)."""

from __future__ import annotations

import math
import subprocess
import sys

import k8s_doctor
import pytest
import stand_in
import yaml
from deploy_env import read_env
from k8s_render import REPO, dag_pods, kustomize_command, pod_spec, render_overlay
from support.services import docker_available

pytestmark = pytest.mark.k8s

TOOLS = read_env(REPO / "k8s" / "tools.env")
# The control plane's requests: kubeadm's static pods (kube-apiserver 250m, controller
# manager 200m, scheduler 100m, etcd 100m + 100Mi), kind's two CoreDNS (100m + 70Mi each)
# and kindnet (100m + 50Mi); minikube's (one CoreDNS, no kindnet) is smaller.
CONTROL_PLANE_MILLICPUS = 950
CONTROL_PLANE_MIB = 290


def doctor(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    if not docker_available():
        pytest.skip("no Docker engine answers")
    environ = stand_in.environment(tmp_path, **env)
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "k8s_doctor.py"), *args],
        env=environ, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def lines(result: subprocess.CompletedProcess, level: str) -> list[str]:
    return [line.strip() for line in result.stdout.splitlines() if line.strip().startswith(level)]


def test_the_pinned_tools_pass(tmp_path):
    # The smallest minikube node the stack fits, so that any Docker host can give it.
    smallest = f"{k8s_doctor.kube_mib(TOOLS['STACK_MEMORY_REQUESTS'])}mb"
    result = doctor(tmp_path, MINIKUBE_MEMORY=smallest)
    assert result.returncode == 0, result.stdout
    assert lines(result, "FAIL") == []
    assert "what kind-up needs" in result.stdout
    assert "what minikube-up needs" in result.stdout


@pytest.mark.parametrize(
    ("cluster", "env", "what", "hint"),
    [
        (
            "kind",
            {"CLUSTER_STUB_KIND_VERSION": "v0.29.0"},
            "kind: v0.29.0 is older",
            "/dl/v0.33.0/",
        ),
        ("kind", {"CLUSTER_STUB_KUBECTL_VERSION": "v1.32.4"}, "kubectl: v1.32.4", "dl.k8s.io"),
        ("minikube", {"CLUSTER_STUB_KUBECTL_VERSION": "v1.36.0"}, "kubectl: v1.36.0", "v1.34"),
        (
            "minikube",
            {"CLUSTER_STUB_MINIKUBE_KNOWS": "v1.34.0,v1.33.5"},
            "does not know Kubernetes v1.34.11",
            "MINIKUBE_K8S_VERSION=v1.34.0",
        ),
        ("minikube", {"MINIKUBE_MEMORY": "1g"}, "node size", "raise MINIKUBE_MEMORY"),
        ("minikube", {"MINIKUBE_MEMORY": "4096g"}, "node size", "lower MINIKUBE_MEMORY"),
    ],
)
def test_what_would_break_is_named_with_how_to_fix_it(tmp_path, cluster, env, what, hint):
    result = doctor(tmp_path, cluster, **env)
    assert result.returncode == 1, result.stdout
    (failure,) = lines(result, "FAIL")
    assert what in failure
    assert hint in result.stdout.split(failure, 1)[1]


def test_a_missing_tool_is_named(tmp_path):
    result = doctor(tmp_path, "kind", PATH="/usr/bin:/bin")
    assert result.returncode == 1
    failures = lines(result, "FAIL")
    assert any(f.startswith("FAIL  kind: not on PATH") for f in failures)
    assert "https://kind.sigs.k8s.io/dl/v0.33.0/kind-linux-" in result.stdout


def test_a_newer_kind_is_a_warning(tmp_path):
    result = doctor(tmp_path, "kind", CLUSTER_STUB_KIND_VERSION="v0.34.0")
    assert result.returncode == 0, result.stdout
    assert any("kind: v0.34.0 is newer" in line for line in lines(result, "warn"))


def test_tools_env_names_the_node_image_kind_cluster_yaml_pins():
    config = yaml.safe_load((REPO / "k8s" / "kind-cluster.yaml").read_text())
    (node,) = config["nodes"]
    name, _, digest = node["image"].partition("@")
    assert name == f"kindest/node:{TOOLS['KUBERNETES_VERSION']}"
    assert digest.startswith("sha256:")
    assert k8s_doctor.version_tuple(TOOLS["KUBERNETES_VERSION"])[:2] == (1, 34)


def requests(spec: dict) -> tuple[int, int]:
    """(millicpus, MiB) a pod asks for: its containers', or its largest init container's."""

    def of(container: dict) -> tuple[int, int]:
        asked = (container.get("resources") or {}).get("requests") or {}
        return (
            k8s_doctor.millicpus(asked.get("cpu", "0m")),
            k8s_doctor.kube_mib(asked.get("memory", "0Mi")),
        )

    main = [of(c) for c in spec["containers"]]
    init = [of(c) for c in spec.get("initContainers", [])]
    total = (sum(c for c, _ in main), sum(m for _, m in main))
    return tuple(max([total[i], *(x[i] for x in init)]) for i in (0, 1))


def surge(workload: dict) -> int:
    """Pods a rollout adds beside the old ones: a Deployment's RollingUpdate maxSurge
    (25% of the replicas, rounded up, unless set); none for Recreate, nor for a
    StatefulSet, which removes a pod before it starts its successor."""
    if workload["kind"] != "Deployment":
        return 0
    strategy = workload["spec"].get("strategy") or {}
    if strategy.get("type", "RollingUpdate") == "Recreate":
        return 0
    replicas = workload["spec"].get("replicas", 1)
    max_surge = str((strategy.get("rollingUpdate") or {}).get("maxSurge", "25%"))
    if max_surge.endswith("%"):
        return math.ceil(replicas * int(max_surge[:-1]) / 100)
    return int(max_surge)


def in_flight(pods: list[tuple[str, dict]]) -> list[dict]:
    """The DAG's pods that run at once at most: the steps with the same upstream steps
    run side by side (the two loads), each group after the one before."""
    from apod_pipeline.settings import Settings
    from apod_pipeline.steps import steps

    groups: dict[tuple[str, ...], list[str]] = {}
    for step in steps(Settings()):
        groups.setdefault(step.upstream, []).append(step.task_id)
    specs = dict(pods)
    return max(
        ([specs[task]["spec"] for task in group] for group in groups.values()),
        key=lambda group: sum(requests(spec)[0] for spec in group),
    )


def test_the_stack_at_its_busiest_fits_the_node_tools_env_sizes():
    """The control plane, Airflow, Postgres and the object store, a run's pods in flight
    (the two loads) and a rollout's surge (the API server's next pod beside the old one:
    the scheduler and the object store are never replaced during a run, the DAG
    processor is recreated) are what STACK_*_REQUESTS say, and fit minikube's node (and
    a 2-CPU kind host)."""
    pytest.importorskip("airflow.providers.cncf.kubernetes")
    if kustomize_command() is None:
        pytest.skip("no kubectl or kustomize on PATH")
    workloads = [o for o in render_overlay("kind") if o["kind"] in ("Deployment", "StatefulSet")]
    running = [pod_spec(o) for o in workloads]
    surging = [pod_spec(o) for o in workloads for _ in range(surge(o))]
    loads = in_flight(dag_pods())
    assert len(running) == 5
    assert len(surging) == 1
    assert len(loads) == 2
    asked = [requests(spec) for spec in running + loads + surging]
    cpu = CONTROL_PLANE_MILLICPUS + sum(c for c, _ in asked)
    memory = CONTROL_PLANE_MIB + sum(m for _, m in asked)
    assert f"{cpu}m" == TOOLS["STACK_CPU_REQUESTS"]
    assert f"{memory}Mi" == TOOLS["STACK_MEMORY_REQUESTS"]
    assert cpu <= int(TOOLS["MINIKUBE_CPUS"]) * 1000 == 2000
    assert memory <= k8s_doctor.quantity_mib(TOOLS["MINIKUBE_MEMORY"])
