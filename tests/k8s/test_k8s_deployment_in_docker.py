"""The deployment of k8s/overlays/kind, run with Docker as rendered: Postgres (its init
script from the ConfigMap, passwords from the Secret files), the object store (its keys
from the Secret's files), the apod-db-init and airflow-db-migrate Jobs, then the Airflow
Deployments with their init containers, all
with the restricted security contexts and read-only root filesystems. Services become
network aliases on a private Docker network; Secret values come from
scripts/k8s_secrets.py, as the up scripts create them.

It ends when the UI answers, the admin logs in with the generated password, the DAG
apod_etl_k8s is parsed without import errors (and is the only DAG), every container's
probes pass, the log groomers swept, and a task's log still opens after the scheduler's
pod was replaced: the task recorded the pod's stable name under the headless Service,
and the successor serves the log from the same claim.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from k8s_podrun import Cluster, docker_run
from k8s_render import REPO, by_kind_name, config_maps, kustomize_command, pod_spec, render_overlay
from support.services import docker, docker_volume, image, require_images

pytestmark = [pytest.mark.k8s, pytest.mark.docker, pytest.mark.timeout(1500)]

sys.path.insert(0, str(REPO / "scripts"))
import airflow_api  # noqa: E402 - scripts/ is no package
import k8s_secrets  # noqa: E402


def as_pod(workload: dict, claims: dict[str, str] | None = None) -> dict:
    """The pod a workload's controller creates: a StatefulSet's is <name>-0, with its
    claims' volumes, and its hostname and subdomain (the headless Service) set."""
    spec = dict(workload["spec"]["template"]["spec"])
    name = workload["metadata"]["name"]
    if workload["kind"] == "StatefulSet":
        name = f"{name}-0"
        spec |= {"hostname": name, "subdomain": workload["spec"]["serviceName"]}
    for template in workload["spec"].get("volumeClaimTemplates", []):
        volume = template["metadata"]["name"]
        claim = f"{volume}-{name}"
        spec["volumes"] = [
            *spec.get("volumes", []),
            {"name": volume, "persistentVolumeClaim": {"claimName": claim}},
        ]
    for volume in spec.get("volumes", []):
        if claims is not None and "persistentVolumeClaim" in volume:
            assert volume["persistentVolumeClaim"]["claimName"] in claims
    return {"metadata": {"name": name}, "spec": spec}


def stable_name(workload: dict) -> str:
    """The DNS name of a StatefulSet's pod 0 under its headless Service."""
    name = workload["metadata"]["name"]
    return f"{name}-0.{workload['spec']['serviceName']}.apod.svc.cluster.local"


def probe(container: str, spec: dict) -> bool:
    """Run an exec or httpGet probe inside the container, as the kubelet would."""
    if "exec" in spec:
        command = spec["exec"]["command"]
    else:
        port = spec["httpGet"]["port"]
        command = [
            "python",
            "-c",
            "import sys, urllib.request; "
            f"urllib.request.urlopen(sys.argv[1], timeout={spec.get('timeoutSeconds', 5)})",
            f"http://127.0.0.1:{port}{spec['httpGet']['path']}",
        ]
    result = subprocess.run(["docker", "exec", container, *command], capture_output=True)
    return result.returncode == 0


def named_port(container_spec: dict, port):
    for entry in container_spec.get("ports", []):
        if entry.get("name") == port:
            return entry["containerPort"]
    return port


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(3)
    raise AssertionError(f"{what} not ready after {timeout:.0f}s")


@contextlib.contextmanager
def docker_network() -> Iterator[tuple[str, list[str]]]:
    name = f"apod-k8s-net-{secrets.token_hex(4)}"
    docker("network", "create", name)
    started: list[str] = []
    try:
        yield name, started
    finally:
        for container in started:
            logs = docker("logs", "--tail", "40", container, check=False)
            print(f"--- {container}\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}")
            docker("rm", "-f", "-v", container, check=False)
        docker("network", "rm", name, check=False)


def test_the_rendered_deployment_runs_in_docker(tmp_path):
    if kustomize_command() is None:
        pytest.skip("no kubectl or kustomize on PATH")
    require_images("airflow", "load", "objectstore")
    objs = render_overlay("kind")
    index = by_kind_name(objs)
    postgres = index[("StatefulSet", "postgres")]
    (postgres_image,) = {c["image"] for c in postgres["spec"]["template"]["spec"]["containers"]}
    if docker("image", "inspect", postgres_image, check=False).returncode != 0:
        pytest.skip(f"{postgres_image} not built (scripts/k8s-*-up.sh builds it)")
    baked = docker(
        "run", "--rm", "--entrypoint", "ls", image("airflow"), "/opt/airflow/dags", check=False
    ).stdout.split()
    assert "apod_etl_k8s.py" in baked, f"{image('airflow')} predates dags/: rebuild it"
    env_file = tmp_path / ".secrets.env"
    k8s_secrets.init(env_file)
    values = k8s_secrets.read_env(env_file)

    with (
        # Leaving in reverse order: the containers go before their volume.
        docker_volume("apod-k8s-pgdata") as pgdata,
        docker_volume("apod-k8s-objectstore") as store_data,
        docker_network() as (network, started),
    ):
        # The logs claims as local-path provisions them: a root-owned 0777 directory.
        logs = {}
        for claim in ("logs-airflow-scheduler-0", "airflow-dag-processor-logs"):
            logs[claim] = tmp_path / "pv" / claim
            logs[claim].mkdir(parents=True)
            logs[claim].chmod(0o777)
        cluster = Cluster(
            workdir=tmp_path / "volumes",
            secrets=k8s_secrets.secret_data(values),
            config_maps=config_maps(objs),
            claims={
                "pgdata-postgres-0": pgdata,
                "data-objectstore-0": store_data,
                **{claim: str(path) for claim, path in logs.items()},
            },
            network=network,
        )

        def start(
            workload: dict, container: str, alias: str, *extra: str, name: str | None = None
        ) -> str:
            pod = as_pod(workload, cluster.claims)
            name = f"{network}-{name or container}"
            result = docker_run(
                pod,
                container,
                cluster,
                name=name,
                detach=True,
                extra=("--network-alias", alias, *extra),
            )
            assert result.returncode == 0, result.stderr
            started.append(name)
            return name

        def run(workload: dict, container: str) -> subprocess.CompletedProcess:
            result = docker_run(as_pod(workload), container, cluster, timeout=900)
            assert result.returncode == 0, f"{container}: {result.stderr[-3000:]}"
            return result

        # Postgres: first start runs the init script from the ConfigMap.
        pg = start(postgres, "postgres", "postgres")
        readiness = postgres["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
        wait_until(lambda: probe(pg, readiness), 120, "postgres")
        listing = docker(
            "exec",
            pg,
            "psql",
            "-U",
            "postgres",
            "-XAtc",
            "SELECT d.datname || ':' || pg_get_userbyid(d.datdba) FROM pg_database d "
            "WHERE d.datname IN ('airflow', 'apod') ORDER BY 1",
        ).stdout.split()
        assert listing == ["airflow:airflow", "apod:apod_admin"]
        for role, password, database in (
            ("airflow", values["AIRFLOW_DB_PASSWORD"], "airflow"),
            ("apod_admin", values["APOD_ADMIN_PASSWORD"], "apod"),
        ):
            check = docker(
                "exec",
                "-e",
                "PGPASSWORD",
                pg,
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                role,
                "-d",
                database,
                "-XAtc",
                "SELECT current_user",
                env={**os.environ, "PGPASSWORD": password},
                check=False,
            )
            assert check.stdout.strip() == role, check.stderr
        wrong = docker(
            "exec",
            "-e",
            "PGPASSWORD=wrong",
            pg,
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "airflow",
            "-d",
            "apod",
            "-XAtc",
            "SELECT 1",
            check=False,
        )
        assert wrong.returncode != 0

        # The object store, where the version pods push (http://objectstore:8333): it
        # starts meanwhile; its probes are checked with the Deployments' below.
        objectstore = index[("StatefulSet", "objectstore")]
        names = {"objectstore": start(objectstore, "objectstore", "objectstore")}

        # The Jobs, twice each: both are idempotent. init-db creates the loader role.
        for _ in range(2):
            run(index[("Job", "apod-db-init")], "init-db")
        as_loader = docker(
            "exec",
            "-e",
            "PGPASSWORD",
            pg,
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "apod_loader",
            "-d",
            "apod",
            "-XAtc",
            "SELECT count(*) FROM apod.apod_entries",
            env={**os.environ, "PGPASSWORD": values["APOD_LOADER_PASSWORD"]},
            check=False,
        )
        assert as_loader.stdout.strip() == "0", as_loader.stderr
        run(index[("Job", "airflow-db-migrate")], "db-migrate")

        # Airflow: init container to completion, then the containers (and the log
        # groomer sidecars, on the same logs claim). The scheduler's pod is reached by its
        # stable name too: the headless Service's record of pod 0.
        scheduler = index[("StatefulSet", "airflow-scheduler")]

        def start_pod(workload: dict, container: str, *extra: str) -> None:
            alias = workload["metadata"]["name"]
            names[container] = start(workload, container, alias, *extra)
            if "log-groomer" in {c["name"] for c in pod_spec(workload)["containers"]}:
                groomer = f"{container}-log-groomer"
                names[groomer] = start(workload, "log-groomer", groomer, name=groomer)

        for workload, container, extra in (
            (index[("Deployment", "airflow-api-server")], "api-server", ("-p", "127.0.0.1::8080")),
            (scheduler, "scheduler", ("--network-alias", stable_name(scheduler))),
            (index[("Deployment", "airflow-dag-processor")], "dag-processor", ()),
        ):
            run(workload, "wait-for-migrations")
            start_pod(workload, container, *extra)

        port = docker("port", names["api-server"], "8080/tcp").stdout.split(":")[-1].strip()
        url = f"http://127.0.0.1:{port}"

        def ui_answers() -> bool:
            try:
                urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5)  # noqa: S310
            except OSError:
                return False
            return True

        wait_until(ui_answers, 300, "the API server")
        api = airflow_api.Airflow(url, "admin", values["AIRFLOW_ADMIN_PASSWORD"])
        api.wait_for_dag("apod_etl_k8s", 300)
        assert api.call("GET", "/api/v2/importErrors")["total_entries"] == 0
        with pytest.raises(airflow_api.ApiError):
            airflow_api.Airflow(url, "admin", "not-the-password").login()

        # Kubernetes' Airflow parses its own DAG only (APOD_DEPLOYMENT, kubernetes.env).
        dags = api.call("GET", "/api/v2/dags")["dags"]
        assert [d["dag_id"] for d in dags] == ["apod_etl_k8s"]

        for workload, container in (
            (("Deployment", "airflow-api-server"), "api-server"),
            (("StatefulSet", "airflow-scheduler"), "scheduler"),
            (("Deployment", "airflow-dag-processor"), "dag-processor"),
            (("StatefulSet", "objectstore"), "objectstore"),
        ):
            spec = pod_spec(index[workload])["containers"][0]
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                if kind in spec:
                    check = dict(spec[kind])
                    if "httpGet" in check:
                        check["httpGet"] = {
                            **check["httpGet"],
                            "port": named_port(spec, check["httpGet"]["port"]),
                        }
                    wait_until(
                        lambda c=check, n=names[container]: probe(n, c), 180, f"{container} {kind}"
                    )
        for name in started:
            state = docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
            assert state == "true", name
        for groomer in ("scheduler-log-groomer", "dag-processor-log-groomer"):
            swept = docker("logs", names[groomer]).stdout
            assert "apod-log-groomer: /opt/airflow/logs: removed 0 file(s)" in swept, groomer

        # A task's log outlives the scheduler's pod. The run's first task fails here (no
        # cluster to launch its pod in), and its log is written on the scheduler's claim.
        run_id = api.start_run("apod_etl_k8s", "2024-01-01", "2024-01-01", 120)["dag_run_id"]
        base = f"/api/v2/dags/apod_etl_k8s/dagRuns/{quote(run_id, safe='')}/taskInstances/extract"

        def first_try_over() -> bool:
            return api.call("GET", base).get("state") in ("up_for_retry", "failed")

        def log_events() -> list | None:
            try:
                return api.call("GET", f"{base}/logs/1").get("content") or []
            except airflow_api.ApiError:
                return None

        wait_until(first_try_over, 300, "the first try of extract")
        # The task recorded the scheduler's stable name, not the pod's address.
        assert api.call("GET", base)["hostname"] == stable_name(scheduler)
        before = log_events()
        assert any("apod_etl_k8s" in json.dumps(event) for event in before), before[:5]
        # Served by the scheduler's log server: gone with the pod ...
        for container in ("scheduler", "scheduler-log-groomer"):
            docker("rm", "-f", names[container])
            started.remove(names[container])
        assert log_events() != before
        # ... back with its successor, which mounts the same claim under the same name.
        start_pod(scheduler, "scheduler", "--network-alias", stable_name(scheduler))
        wait_until(lambda: log_events() == before, 240, "the log through the new scheduler")
