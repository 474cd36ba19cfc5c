"""The pods of the cluster stand-in, run with Docker as tests/k8s/k8s_podrun.py runs a
rendered pod: the DAG's step pods when a run is triggered through the stand-in's Airflow
API, and pods applied with `kubectl apply -f -` (k8s-smoke's reader). What the test wires
in through the environment stands for the cluster's storage and database:

    CLUSTER_STUB_CLAIMS    {"<PVC name>": "<Docker volume or host directory>"}
    CLUSTER_STUB_DATABASE  the URL of the database that plays the StatefulSet postgres:
                           the DAG's pods get it as their database-url, and
                           `kubectl exec postgres-0 -- psql ...` runs psql against it
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import stub_registry
import stub_state
from k8s_podrun import Cluster, docker_run

POSTGRES_POD = "postgres-0"
PSQL_CONNECTION_FLAGS = {"-U", "--username", "-d", "--dbname", "-h", "--host", "-p", "--port"}


def claims() -> dict[str, str]:
    return json.loads(os.environ.get("CLUSTER_STUB_CLAIMS") or "{}")


def database_url() -> str | None:
    return os.environ.get("CLUSTER_STUB_DATABASE") or None


def images_of(spec: dict) -> list[str]:
    return [c["image"] for c in [*spec.get("initContainers", []), *spec.get("containers", [])]]


def missing_claims(spec: dict, cluster: dict, namespace: str) -> list[str]:
    wanted = [
        v["persistentVolumeClaim"]["claimName"]
        for v in spec.get("volumes", [])
        if "persistentVolumeClaim" in v
    ]
    return [
        c
        for c in wanted
        if stub_state.key("PersistentVolumeClaim", namespace, c) not in cluster["objects"]
        or c not in claims()
    ]


def start_pod(pod: dict, cluster: dict) -> str:
    """Start a pod applied to the cluster; returns its container, or raises RuntimeError
    with what a kubelet would report."""
    spec, namespace = pod["spec"], pod["metadata"].get("namespace", "default")
    absent = stub_registry.absent(cluster, images_of(spec))
    if absent:
        raise RuntimeError(f"ErrImagePull: {', '.join(absent)} not in the cluster nor pullable")
    unbound = missing_claims(spec, cluster, namespace)
    if unbound:
        raise RuntimeError(f"Pending: persistentvolumeclaim {', '.join(unbound)} not found")
    name = f"hk8s-stub-{secrets.token_hex(3)}-{pod['metadata']['name']}"
    (container,) = spec["containers"]
    workdir = Path(tempfile.mkdtemp(prefix="pod-", dir=stub_state.directory()))
    result = docker_run(
        pod,
        container["name"],
        Cluster(workdir=workdir, claims=claims(), namespace=namespace, network="none"),
        name=name,
        detach=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"CreateContainerError: {result.stderr.strip()}")
    return name


def running(container: str) -> bool:
    result = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", container],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.stdout.strip() == "true"


def wait_running(container: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running(container):
            return True
        time.sleep(0.5)
    return False


def remove(container: str) -> None:
    subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)


def exec_in(container: str, argv: list[str], stdin: bool) -> int:
    """`docker exec`, its output passed through byte for byte."""
    return subprocess.run(
        ["docker", "exec", *(["-i"] if stdin else []), container, *argv]
    ).returncode


def psql() -> str:
    found = shutil.which("psql") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))), None
    )
    if not found:
        raise RuntimeError("no psql on this machine")
    return found


def exec_postgres(argv: list[str]) -> int:
    """psql in the stand-in's Postgres pod: its own database replaces the connection the
    command names (the real pod's local socket and superuser)."""
    url = database_url()
    if not url or not argv or argv[0] != "psql":
        raise RuntimeError(
            f"the stand-in's {POSTGRES_POD} runs only psql, with CLUSTER_STUB_DATABASE"
        )
    rest, skip = [], False
    for arg in argv[1:]:
        if skip:
            skip = False
        elif arg in PSQL_CONNECTION_FLAGS:
            skip = True
        elif arg.split("=", 1)[0] not in PSQL_CONNECTION_FLAGS:
            rest.append(arg)
    return subprocess.run([psql(), *rest, "--dbname", url]).returncode


def secret_values(cluster: dict, name: str, namespace: str = "apod") -> dict[str, str]:
    import base64

    secret = cluster["objects"].get(stub_state.key("Secret", namespace, name))
    if not secret:
        return {}
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def airflow_config(cluster: dict, namespace: str = "apod") -> dict[str, str]:
    """The settings the scheduler runs with: the ConfigMap its pod template names (an
    apply leaves the ConfigMaps of earlier builds behind)."""
    scheduler = cluster["objects"].get(
        stub_state.key("StatefulSet", namespace, "airflow-scheduler")
    )
    if scheduler is None:
        raise RuntimeError("no airflow-scheduler applied")
    (container, *_sidecars) = scheduler["spec"]["template"]["spec"]["containers"]
    (source,) = container["envFrom"]
    name = source["configMapRef"]["name"]
    return cluster["objects"][stub_state.key("ConfigMap", namespace, name)].get("data") or {}


def run_dag(context: str, run_id: str, conf: dict, set_task: Callable[[str, str], None]) -> str:
    """The DAG's pods for one manual run, in order, as the scheduler would launch them
    with the cluster's settings (the ConfigMap's: APOD_IMAGE_TAG, APOD_API_URL, the DVC
    remote and APOD_S3_ENDPOINT among them) and Secrets. Returns the run's state."""
    from support.airflow_render import render_pods

    from apod_pipeline.exit_codes import NOTHING_TO_DO
    from apod_pipeline.settings import Settings
    from apod_pipeline.steps import steps

    cluster = stub_state.read()["clusters"][context]
    config = airflow_config(cluster)
    settings = Settings.from_env({**config, "APOD_K8S_NAMESPACE": "apod"})
    pods = render_pods(
        logical_date=None,
        start_date=conf["start_date"],
        end_date=conf["end_date"],
        run_id=run_id,
        settings=settings,
    )
    values = secret_values(cluster, "apod-secrets")
    if database_url():
        values["database-url"] = database_url()
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=stub_state.directory()))
    podrun = Cluster(workdir=workdir, secrets={"apod-secrets": values}, claims=claims())
    upstream = {step.task_id: step.upstream for step in steps(settings)}
    skipped: set[str] = set()
    for task, pod in pods:
        if skipped.intersection(upstream[task]):
            skipped.add(task)  # the default trigger rule: an upstream skip skips this too
            set_task(task, "skipped")
            continue
        set_task(task, "running")
        if stub_registry.absent(cluster, images_of(pod["spec"])):
            set_task(task, "failed")  # ErrImagePull: not on the nodes, and no registry has it
            return "failed"
        (container,) = pod["spec"]["containers"]
        result = docker_run(pod, container["name"], podrun)
        if result.returncode == NOTHING_TO_DO:
            skipped.add(task)
            set_task(task, "skipped")
        elif result.returncode != 0:
            (workdir / f"{task}.log").write_text(result.stderr)
            set_task(task, "failed")
            return "failed"
        else:
            set_task(task, "success")
    return "success"
