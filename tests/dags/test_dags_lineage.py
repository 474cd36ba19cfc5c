"""The figures both DAGs attach to their asset events, from the steps' real summary lines.

The steps run here for real, from the checkout (extract against the repository's APOD
test server with one hostile entry, transform, load csv, version into a git + DVC
repository in a temporary directory); no Docker, no Postgres. Their output lines go
through each renderer's own way of getting the summary: the Docker path picks it from
the container's lines, the KPO path reads the pod's log through the Kubernetes client
(from a local server answering the pod-log call with the same lines).
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from support.services import REPO, apod_test_server

pytestmark = [pytest.mark.dags, pytest.mark.timeout(600)]

DAY_RANGE = ("2024-01-01", "2024-01-31")
HOSTILE_DAY = "2024-01-20"
RUN_ID = "manual__lineage"
STEP_PATHS = ("common", "extract", "transform", "load", "version")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # stderr's last log line overtook the summary in Docker's attached stream
        (
            ["INFO extract: start", '{"status": "ok", "rows": 1}', "INFO load: wrote x"],
            '{"status": "ok", "rows": 1}',
        ),
        (["INFO a", '{"rows": 2}'], '{"rows": 2}'),
        (['{"rows": 1}', "{not json}", "INFO b"], '{"rows": 1}'),
        (["INFO only logs"], None),
        ([], None),
        (None, None),
        ('{"rows": 3}', '{"rows": 3}'),
        ('INFO a\n{"rows": 4}\nINFO b\n', '{"rows": 4}'),  # a pod log: one text
    ],
)
def test_summary_is_the_last_json_line(lines, expected):
    from apod_pipeline.lineage import summary_line

    assert summary_line(lines) == expected


def test_every_figure_comes_from_the_emitting_step_or_one_upstream():
    from apod_pipeline.settings import Settings
    from apod_pipeline.steps import steps

    defined = steps(Settings())
    upstream = {step.task_id: set(step.upstream) for step in defined}

    def ancestors(task_id: str) -> set[str]:
        found = set(upstream[task_id])
        for parent in upstream[task_id]:
            found |= ancestors(parent)
        return found

    emitted = [(step, output) for step in defined for output in step.outputs]
    assert {output.name for _, output in emitted} == {"apod_data.csv", "apod.apod_entries"}
    for step, output in emitted:
        for figures in output.figures:
            assert figures.task_id in ancestors(step.task_id) | {step.task_id}


def run_step(env: dict[str, str], module: str, *args: str) -> list[str]:
    """The step as its container runs it; its output lines, stderr then stdout (as a
    racing log line may arrive after the summary)."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, f"{module}: {result.stderr[-2000:]}"
    return result.stdout.splitlines() + result.stderr.splitlines()[-1:]


@pytest.fixture(scope="module")
def step_lines(tmp_path_factory) -> dict[str, list[str]]:
    """Output lines of extract, transform, load csv and version for one real run."""
    data = tmp_path_factory.mktemp("data")
    home = tmp_path_factory.mktemp("home")
    remote = tmp_path_factory.mktemp("dvc-remote")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("APOD_", "GIT_", "DVC_"))}
    env = {
        **base,
        "HOME": str(home),
        "PYTHONPATH": os.pathsep.join(str(REPO / "images" / p) for p in STEP_PATHS),
        "APOD_DATA_DIR": str(data),
        "APOD_RUN_ID": RUN_ID,
        "APOD_DVC_REMOTE": str(remote),
        "NASA_API_KEY": "DEMO_KEY",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    with apod_test_server() as server:
        # One hostile entry among the month's: transform sets it aside with its reason.
        hostile = {"date": HOSTILE_DAY, "title": "x", "explanation": "y", "media_type": "hologram"}
        server.control(f"entries/{HOSTILE_DAY}", hostile, method="PUT")
        env["APOD_API_URL"] = server.url
        lines = {
            "extract": run_step(env, "apod_extract", "--start", DAY_RANGE[0], "--end", DAY_RANGE[1])
        }
    lines["transform"] = run_step(env, "apod_transform")
    lines["load_csv"] = run_step(env, "apod_load", "csv")
    lines["version"] = run_step(env, "apod_version", "--init-repo")
    lines["repo"] = [str(data)]
    return lines


def summaries(step_lines: dict[str, list[str]]) -> dict[str, str]:
    from apod_pipeline.lineage import summary_line

    return {task: summary_line(step_lines[task]) for task in ("transform", "load_csv", "version")}


def git(repo: str, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", repo, *args], capture_output=True, text=True, check=True
    ).stdout


def test_the_csv_event_holds_the_version_the_repository_holds(step_lines):
    from apod_pipeline.dag import event_extras
    from apod_pipeline.steps import CSV

    xcoms = summaries(step_lines)
    extras = event_extras("version", [CSV], xcoms["version"], xcoms.get)
    extra = extras[CSV]
    repo = step_lines["repo"][0]
    assert (
        extra["commit"] == git(repo, "log", "-1", "--format=%H", "--", "apod_data.csv.dvc").strip()
    )
    dvc_file = Path(repo, "apod_data.csv.dvc").read_text()
    assert f"md5: {extra['md5']}" in dvc_file
    served = len(Path(repo, "apod_data.csv").read_text().splitlines()) - 1
    assert extra["rows"] == served == extra["accepted"] == 30
    assert extra["rejected"] == 1
    assert extra["reject_reasons"] == {"unknown media_type": 1}
    assert extra["rejected_file"].endswith("/rejected.csv")
    assert extra["dvc_pushed"] is True
    assert extra["git_pushed"] is False
    assert len(extra["sha256"]) == 64
    assert (extra["first_date"], extra["last_date"]) == DAY_RANGE
    json.dumps(extra)  # an asset event's extra must be JSON


class PodLog(http.server.BaseHTTPRequestHandler):
    """The one Kubernetes API call the KPO path makes after the pod: its container's log."""

    logs: ClassVar[dict[tuple[str, str, str], str]] = {}
    asked: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        from urllib.parse import parse_qs, urlparse

        url = urlparse(self.path)
        self.asked.append(self.path)
        parts = url.path.split("/")  # /api/v1/namespaces/<ns>/pods/<name>/log
        query = parse_qs(url.query)
        key = (parts[4], parts[6], query.get("container", [""])[0])
        text = self.logs.get(key)
        if text is None or parts[-1] != "log":
            self.send_error(404)
            return
        tail = int(query.get("tailLines", ["0"])[0]) or None
        lines = text.splitlines(keepends=True)
        body = "".join(lines[-tail:] if tail else lines).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_the_kpo_path_reads_the_same_summary_from_the_pod_log(step_lines, k8s_dag, docker_dag):
    from kubernetes import client
    from kubernetes.client import models as k8s

    from apod_pipeline.dag import event_extras
    from apod_pipeline.kubernetes import SUMMARY_TAIL_LINES, pod_summary
    from apod_pipeline.lineage import summary_line

    pods = {}
    for task in ("transform", "load_csv", "version"):
        pod = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=f"apod-{task}-x1", namespace="apod"))
        # A long log: the summary is found in the tail the operator asks for.
        noise = [f"INFO {task}: line {i}" for i in range(500)]
        PodLog.logs[("apod", pod.metadata.name, "base")] = (
            "\n".join(noise + step_lines[task]) + "\n"
        )
        pods[task] = pod
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PodLog)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
        api = client.CoreV1Api(client.ApiClient(config))
        from_pods = {task: pod_summary(api, pod, "base") for task, pod in pods.items()}
        missing = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="gone", namespace="apod"))
        assert pod_summary(api, missing, "base") is None  # a warning, not a failed task
    finally:
        server.shutdown()
    assert all(f"tailLines={SUMMARY_TAIL_LINES}" in asked for asked in PodLog.asked)
    from_docker = {task: summary_line(step_lines[task]) for task in pods}
    assert from_pods == from_docker
    for dag in (k8s_dag, docker_dag):
        version = dag.get_task("version")
        (output,) = version.step_outputs
        assert [a.name for a in version.outlets] == [output.name]
        assert event_extras("version", [output], from_pods["version"], from_pods.get) == (
            event_extras("version", [output], from_docker["version"], from_docker.get)
        )


def test_the_table_event_figures(step_lines, docker_dag):
    """load_postgres's summary keys are the upsert's (no Postgres in this tier: its figures
    are read from the line the load step prints, here as it prints them)."""
    from apod_pipeline.dag import event_extras
    from apod_pipeline.steps import TABLE

    task = docker_dag.get_task("load_postgres")
    assert task.step_outputs == (TABLE,)
    xcoms = summaries(step_lines)
    loaded = {"rows": 30, "inserted": 29, "updated": 1, "unchanged": 0, "table_rows": 40}
    extra = event_extras("load_postgres", [TABLE], json.dumps(loaded), xcoms.get)[TABLE]
    assert extra == {
        **loaded,
        "accepted": 30,
        "rejected": 1,
        "reject_reasons": {"unknown media_type": 1},
        "rejected_file": json.loads(xcoms["transform"])["rejected_file"],
        "first_date": DAY_RANGE[0],
        "last_date": DAY_RANGE[1],
    }
