"""The deployment of k8s/overlays/kind, run with Docker as rendered: Postgres (its init
script from the ConfigMap, passwords from the Secret files), the object store (its keys
from the Secret's files), the apod-db-init and airflow-db-migrate Jobs, then the Airflow
Deployments with their init containers, all
with the restricted security contexts and read-only root filesystems. Services become
network aliases on a private Docker network; Secret values come from
scripts/k8s_secrets.py, as the up scripts create them.

It ends when the UI answers, the admin logs in with the generated password, the DAG
apod_etl_k8s is parsed without import errors and every container's probes pass.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from k8s_podrun import Cluster, docker_run
from k8s_render import REPO, by_kind_name, config_maps, kustomize_command, render_overlay
from support.services import docker, docker_volume, image, require_images

pytestmark = [pytest.mark.k8s, pytest.mark.docker, pytest.mark.timeout(1500)]

sys.path.insert(0, str(REPO / "scripts"))
import airflow_api  # noqa: E402 - scripts/ is no package
import k8s_secrets  # noqa: E402


def as_pod(workload: dict, claims: dict[str, str] | None = None) -> dict:
    """The pod a workload's controller creates (a StatefulSet adds its claims' volumes)."""
    spec = dict(workload["spec"]["template"]["spec"])
    for template in workload["spec"].get("volumeClaimTemplates", []):
        name = template["metadata"]["name"]
        claim = f"{name}-{workload['metadata']['name']}-0"
        spec["volumes"] = [
            *spec.get("volumes", []),
            {"name": name, "persistentVolumeClaim": {"claimName": claim}},
        ]
        if claims is not None:
            assert claim in claims
    return {"metadata": {"name": workload["metadata"]["name"]}, "spec": spec}


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
        cluster = Cluster(
            workdir=tmp_path / "volumes",
            secrets=k8s_secrets.secret_data(values),
            config_maps=config_maps(objs),
            claims={"pgdata-postgres-0": pgdata, "data-objectstore-0": store_data},
            network=network,
        )

        def start(workload: dict, container: str, alias: str, *extra: str) -> str:
            pod = as_pod(workload, cluster.claims)
            name = f"{network}-{container}"
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

        # The Deployments: init container to completion, then the main container.
        for deployment, container, extra in (
            ("airflow-api-server", "api-server", ("-p", "127.0.0.1::8080")),
            ("airflow-scheduler", "scheduler", ()),
            ("airflow-dag-processor", "dag-processor", ()),
        ):
            workload = index[("Deployment", deployment)]
            run(workload, "wait-for-migrations")
            names[container] = start(workload, container, deployment, *extra)

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

        for workload, container in (
            (("Deployment", "airflow-api-server"), "api-server"),
            (("Deployment", "airflow-scheduler"), "scheduler"),
            (("Deployment", "airflow-dag-processor"), "dag-processor"),
            (("StatefulSet", "objectstore"), "objectstore"),
        ):
            (spec,) = index[workload]["spec"]["template"]["spec"]["containers"]
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
