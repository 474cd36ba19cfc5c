#!/usr/bin/env python3
"""`make k8s-smoke`: the pipeline on a real kind or minikube cluster, checked against the
same range run by hand (standard library only, plus Docker).

    k8s_smoke.py kind|minikube [--start 2024-01-01] [--end 2024-01-31] [--keep]

1. brings up a cluster of its own (KIND_CLUSTER_NAME / MINIKUBE_PROFILE apod-smoke, UI on
   127.0.0.1:8081, state in .cache/k8s/smoke-<cluster>) with scripts/k8s-<cluster>-up.sh;
2. runs the DAG for the range with scripts/k8s-run.sh (only that run starts);
3. reads what the cluster left: the range's rows (psql in the Postgres pod), the CSV and
   its .dvc file and the data repository's commits (a read-only pod on apod-data);
4. runs the same images by hand on fresh Docker volumes and a throwaway Postgres, with the
   cluster's API URL, NASA key and image tag (scripts/apod_tools runner);
5. prints PASS or FAIL per check, deletes the cluster (--keep leaves it) and the by-hand
   containers and volumes.

Exit codes: 0 every check passed, 1 a check failed, 2 usage, 3 the stack did not come up.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "dags"), str(REPO / "scripts")]

from deploy_env import read_env  # noqa: E402

from apod_pipeline.by_hand import Placement  # noqa: E402
from apod_pipeline.placement import beside_data_holder  # noqa: E402
from apod_pipeline.settings import Settings  # noqa: E402
from apod_pipeline.steps import DATA, DATA_CSV, DVC_REMOTE, END, RUN_ID, START  # noqa: E402
from apod_tools.runner import Runner, failure  # noqa: E402

OK, FAILED, USAGE, NOT_UP = 0, 1, 2, 3
NAMESPACE = "apod"
READER = "apod-smoke-reader"
CONTENT = (
    "date, title, explanation, media_type, url, hdurl, thumbnail_url, copyright, service_version"
)


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} k8s-smoke: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Evidence:
    """What one run left: the range's rows (CSV with a header), the files, the commits."""

    rows: bytes
    csv: bytes
    dvc_file: bytes
    commits: list[str]


def rows_query(start: str, end: str) -> list[str]:
    """psql's argv: the range's rows as CSV, the same on both sides."""
    days = [dt.date.fromisoformat(day).isoformat() for day in (start, end)]  # dates only
    select = (
        f"SELECT {CONTENT} FROM apod.apod_entries "  # noqa: S608 - constants and two dates
        f"WHERE date BETWEEN '{days[0]}' AND '{days[1]}' ORDER BY date"
    )
    return [
        "psql", "-U", "postgres", "-d", "apod", "-X", "-q", "-v", "ON_ERROR_STOP=1",
        "-c", f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER)",
    ]  # fmt: skip


def git_log(where: str) -> list[str]:
    return ["git", "-C", where, "-c", f"safe.directory={where}", "log", "--format=%s"]


def dvc_md5(dvc_file: bytes) -> str:
    for line in dvc_file.decode("utf-8", "replace").splitlines():
        if line.strip().startswith("- md5:") or line.strip().startswith("md5:"):
            return line.split("md5:", 1)[1].strip()
    return ""


def short_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def count(csv_text: bytes) -> int:
    """Data rows of a CSV with a header."""
    return max(len(csv_text.splitlines()) - 1, 0)


def compare(cluster: Evidence, by_hand: Evidence, start: str, end: str) -> list[tuple[bool, str]]:
    """(passed, line) per check: the cluster's result against the by-hand run's."""
    same_rows = cluster.rows == by_hand.rows
    same_csv = cluster.csv == by_hand.csv
    same_dvc = cluster.dvc_file == by_hand.dvc_file
    md5 = dvc_md5(cluster.dvc_file)
    rows = f"rows   {count(cluster.rows)} rows for {start}..{end} in Postgres, " + (
        "the same as by hand" if same_rows else f"NOT as by hand ({count(by_hand.rows)} rows)"
    )
    csv = f"csv    {DATA_CSV}: {len(cluster.csv)} bytes, sha256 {short_hash(cluster.csv)}" + (
        ", the same bytes as by hand"
        if same_csv
        else f", by hand {len(by_hand.csv)} bytes, sha256 {short_hash(by_hand.csv)}"
    )
    dvc = f"dvc    md5 {md5 or '(none)'}" + (
        ", the same .dvc file as by hand" if same_dvc else f", by hand {dvc_md5(by_hand.dvc_file)}"
    )
    commits = (
        f"git    {len(cluster.commits)} commits in the data repository "
        f"(by hand: {len(by_hand.commits)})"
    )
    return [
        (same_rows and count(cluster.rows) > 0, rows),
        (same_csv and count(cluster.csv) > 0, csv),
        (same_dvc and bool(md5), dvc),
        (len(cluster.commits) == len(by_hand.commits) >= 2, commits),
    ]


def run(
    argv: list[str], env: dict[str, str] | None = None, **kwargs
) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, check=False, **kwargs)


# --- the cluster ---------------------------------------------------------------------


class Cluster:
    def __init__(self, context: str, env: dict[str, str]):
        self.context = context
        self.env = env

    def kubectl(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        return run(
            ["kubectl", "--context", self.context, "--namespace", NAMESPACE, *args],
            self.env, input=stdin, capture_output=True,
        )  # fmt: skip

    def object(self, kind: str, name: str) -> dict:
        result = self.kubectl("get", kind, name, "-o", "json")
        if result.returncode != 0:
            raise RuntimeError(f"kubectl get {kind} {name}: {result.stderr.decode().strip()}")
        return json.loads(result.stdout)

    def settings(self) -> dict[str, str]:
        """The ConfigMap the scheduler runs with: APOD_IMAGE_TAGS, APOD_API_URL..."""
        spec = self.object("statefulset", "airflow-scheduler")["spec"]["template"]["spec"]
        (source,) = spec["containers"][0]["envFrom"]
        return self.object("configmap", source["configMapRef"]["name"])["data"]

    def postgres_image(self) -> str:
        spec = self.object("statefulset", "postgres")["spec"]["template"]["spec"]
        return spec["containers"][0]["image"]

    def read(self, argv: list[str], pod: str, container: str) -> bytes:
        result = self.kubectl("exec", pod, "-c", container, "--", *argv)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} in {pod}: {result.stderr.decode().strip()}")
        return result.stdout

    @contextlib.contextmanager
    def reader(self, image: str, holder: str | None = None) -> Iterator[str]:
        """A pod with apod-data mounted read-only, under the namespace's restricted rules;
        beside the data holder, on the multinode overlay's ReadWriteOnce storage."""
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": READER, "namespace": NAMESPACE},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "runAsGroup": 0,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "reader",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python", "-c", "import time; time.sleep(3600)"],
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "32Mi"},
                            "limits": {"cpu": "200m", "memory": "128Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
                    }
                ],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "apod-data"}}],
            },
        }  # fmt: skip
        if holder:
            pod["spec"]["affinity"] = beside_data_holder(holder)
        applied = self.kubectl("apply", "-f", "-", stdin=json.dumps(pod).encode())
        if applied.returncode != 0:
            raise RuntimeError(f"reader pod: {applied.stderr.decode().strip()}")
        try:
            ready = self.kubectl("wait", "--for=condition=Ready", f"pod/{READER}", "--timeout=180s")
            if ready.returncode != 0:
                raise RuntimeError(f"reader pod not ready: {ready.stderr.decode().strip()}")
            yield READER
        finally:
            self.kubectl("delete", "pod", READER, "--ignore-not-found", "--wait=false")

    def evidence(self, start: str, end: str, image: str, holder: str | None) -> Evidence:
        rows = self.read(rows_query(start, end), "postgres-0", "postgres")
        with self.reader(image, holder) as pod:
            return Evidence(
                rows=rows,
                csv=self.read(["cat", f"{DATA.path}/{DATA_CSV}"], pod, "reader"),
                dvc_file=self.read(["cat", f"{DATA.path}/{DATA_CSV}.dvc"], pod, "reader"),
                commits=self.read(git_log(DATA.path), pod, "reader").decode().splitlines(),
            )


# --- the same range by hand ----------------------------------------------------------


def docker(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run(["docker", *args], capture_output=True, **kwargs)


@contextlib.contextmanager
def throwaway_postgres(image: str) -> Iterator[tuple[str, str]]:
    """(container, database URL as the host sees it): a fresh server, removed after."""
    name = f"apod-smoke-pg-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    env = {**os.environ, "POSTGRES_PASSWORD": password}
    started = docker(
        "run", "-d", "--name", name, "-e", "POSTGRES_PASSWORD", "-e", "POSTGRES_DB=apod",
        "-p", "127.0.0.1::5432", image, env=env,
    )  # fmt: skip
    try:
        if started.returncode != 0:
            raise RuntimeError(f"by-hand Postgres: {started.stderr.decode().strip()}")
        deadline = time.monotonic() + 120
        while docker("exec", name, "pg_isready", "-h", "127.0.0.1", "-U", "postgres").returncode:
            if time.monotonic() > deadline:
                raise RuntimeError("by-hand Postgres did not come up in 120 s")
            time.sleep(2)
        port = docker("port", name, "5432/tcp").stdout.decode().split(":")[-1].strip()
        yield name, f"postgresql://postgres:{password}@127.0.0.1:{port}/apod"
    finally:
        docker("rm", "-f", "-v", name)


@contextlib.contextmanager
def throwaway_volumes() -> Iterator[dict[str, str]]:
    suffix = secrets.token_hex(4)
    volumes = {DATA.name: f"apod-smoke-data-{suffix}", DVC_REMOTE.name: f"apod-smoke-dvc-{suffix}"}
    try:
        for volume in volumes.values():
            docker("volume", "create", volume)
        yield volumes
    finally:
        for volume in volumes.values():
            docker("volume", "rm", "-f", volume)


def volume_read(volume: str, image: str, argv: list[str]) -> bytes:
    result = docker(
        "run", "--rm", "--network", "none", "-v", f"{volume}:{DATA.path}:ro",
        "--entrypoint", argv[0], image, *argv[1:],
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"reading {volume}: {result.stderr.decode().strip()}")
    return result.stdout


def by_hand(
    settings: Settings, nasa_key: str, postgres_image: str, start: str, end: str
) -> Evidence:
    with throwaway_postgres(postgres_image) as (pg, url), throwaway_volumes() as volumes:
        runner = Runner(
            settings,
            Placement(volumes=volumes),
            {"APOD_DATABASE_URL": url, "NASA_API_KEY": nasa_key},
            log=lambda message: log(f"by hand: {message}"),
        )
        runs = runner.pipeline(
            {START: start, END: end, RUN_ID: f"manual__smoke_{secrets.token_hex(3)}"}
        )
        failed = failure(runs)
        if failed:
            raise RuntimeError(
                f"by hand: {failed.name} exited {failed.returncode}: {failed.stderr[-500:]}"
            )
        rows = docker("exec", pg, *rows_query(start, end))
        if rows.returncode != 0:
            raise RuntimeError(f"by hand: psql: {rows.stderr.decode().strip()}")
        image = settings.image("version")
        data = volumes[DATA.name]
        return Evidence(
            rows=rows.stdout,
            csv=volume_read(data, image, ["cat", f"{DATA.path}/{DATA_CSV}"]),
            dvc_file=volume_read(data, image, ["cat", f"{DATA.path}/{DATA_CSV}.dvc"]),
            commits=volume_read(data, image, git_log(DATA.path)).decode().splitlines(),
        )  # fmt: skip


# --- all of it -----------------------------------------------------------------------


def smoke_env(cluster: str) -> dict[str, str]:
    """The up/run/down scripts' settings for a cluster of the smoke's own."""
    name = os.environ.get("APOD_K8S_SMOKE_NAME", "apod-smoke")
    state = os.environ.get("APOD_K8S_STATE_DIR") or str(
        REPO / ".cache" / "k8s" / f"smoke-{cluster}"
    )
    return {
        **os.environ,
        "KIND_CLUSTER_NAME": name,
        "MINIKUBE_PROFILE": name,
        "APOD_K8S_STATE_DIR": state,
        "APOD_K8S_SECRETS_FILE": os.environ.get("APOD_K8S_SECRETS_FILE") or f"{state}/.secrets.env",
        "APOD_K8S_UI_PORT": os.environ.get("APOD_K8S_UI_PORT") or "8081",
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="k8s_smoke.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("cluster", choices=("kind", "minikube"))
    parser.add_argument("--start", default="2024-01-01", help="first day (default %(default)s)")
    parser.add_argument("--end", default="2024-01-31", help="last day (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args(argv)
    env = smoke_env(args.cluster)
    scripts = REPO / "scripts"
    results: list[tuple[bool, str]] = []
    try:
        log(f"bringing up {args.cluster} cluster {env['KIND_CLUSTER_NAME']}")
        if run([str(scripts / f"k8s-{args.cluster}-up.sh")], env).returncode != 0:
            print("k8s-smoke: FAIL up     the stack did not come up (see above)")
            return NOT_UP
        context = Path(env["APOD_K8S_STATE_DIR"], "context").read_text().strip()
        log(f"running apod_etl_k8s for {args.start}..{args.end}")
        ran = run(
            [str(scripts / "k8s-run.sh"), args.start, args.end],
            env,
            stdout=subprocess.PIPE,
            text=True,
        )
        summary = json.loads((ran.stdout.strip().splitlines() or ["{}"])[-1] or "{}")
        results.append(
            (
                ran.returncode == 0,
                f"run    {summary.get('run_id', '?')}: {summary.get('state', 'no run')}",
            )
        )
        cluster = Cluster(context, env)
        config = cluster.settings()
        # The cluster's API and its images (registry, each step image's tag); the by-hand
        # run keeps its own DVC remote.
        settings = Settings.from_env(
            {k: v for k, v in config.items() if k.startswith("APOD_IMAGE_") or k == "APOD_API_URL"}
        )
        if ran.returncode == 0:
            log("reading what the cluster left")
            in_cluster = cluster.evidence(
                args.start, args.end, settings.image("version"), config.get("APOD_K8S_DATA_HOLDER")
            )
            log("running the same images by hand")
            nasa_key = read_env(Path(env["APOD_K8S_SECRETS_FILE"]))["NASA_API_KEY"]
            hand = by_hand(settings, nasa_key, cluster.postgres_image(), args.start, args.end)
            results += compare(in_cluster, hand, args.start, args.end)
    except (RuntimeError, OSError, KeyError, ValueError) as exc:
        results.append((False, f"error  {exc}"))
    finally:
        if not args.keep:
            run([str(scripts / f"k8s-{args.cluster}-down.sh")], env)
    for passed, line in results:
        print(f"k8s-smoke: {'PASS' if passed else 'FAIL'} {line}")
    failed = [line for passed, line in results if not passed]
    print(f"k8s-smoke: {len(results) - len(failed)} of {len(results)} checks passed")
    return FAILED if failed else OK


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
