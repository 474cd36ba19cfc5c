"""scripts/k8s-{kind,minikube}-{up,down}.sh, driven against stand-ins for kind, minikube
and kubectl (tests/k8s/cluster_stub.py: no cluster can run here) with the real Docker
images and the real secrets generator: what they call, in what order, on which context,
and that no secret value ever reaches a command line or the output."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from k8s_render import REPO
from support.services import VERSION, docker, require_images

pytestmark = [pytest.mark.k8s, pytest.mark.docker, pytest.mark.timeout(300)]

sys.path.insert(0, str(REPO / "scripts"))
import k8s_secrets  # noqa: E402 - scripts/ is no package

CLUSTERS = {
    # cluster kind -> (kubectl context, the call that creates it, the call that loads an image)
    "kind": ("kind-apod", ["kind", "create", "cluster"], ["kind", "load", "docker-image"]),
    "minikube": ("apod", ["minikube", "start"], ["minikube", "image", "load"]),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PG_MAJOR = (REPO / "images" / "postgres" / "PG_MAJOR").read_text().strip()
POSTGRES_IMAGE = f"apod-postgres:{PG_MAJOR}"


@pytest.fixture
def stub(tmp_path: Path) -> dict[str, str]:
    require_images("extract", "transform", "load", "version", "airflow")
    if docker("image", "inspect", POSTGRES_IMAGE, check=False).returncode != 0:
        pytest.skip(f"{POSTGRES_IMAGE} not built")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    source = (Path(__file__).parent / "cluster_stub.py").read_text()
    for tool in ("kind", "minikube", "kubectl"):
        path = bin_dir / tool
        path.write_text(f"#!{sys.executable}\n{source}")
        path.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CLUSTER_STUB_LOG": str(tmp_path / "calls.jsonl"),
        "CLUSTER_STUB_STATE": str(tmp_path / "stub-state"),
        "APOD_K8S_SECRETS_FILE": str(tmp_path / "k8s" / ".secrets.env"),
        "APOD_K8S_STATE_DIR": str(tmp_path / "state"),
        "APOD_K8S_UI_PORT": str(free_port()),
        "APOD_K8S_SKIP_BUILD": "1",
        "APOD_K8S_TIMEOUT": "30",
        "NASA_API_KEY": "stub-nasa-key",
    }


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent that may never reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REPO / "scripts" / name)], env=env, capture_output=True, text=True, timeout=240
    )


def calls(env: dict[str, str]) -> list[dict]:
    path = Path(env["CLUSTER_STUB_LOG"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def index_of(log: list[dict], *prefix: str) -> int:
    for i, call in enumerate(log):
        if [call["tool"], *call["args"]][: len(prefix)] == list(prefix):
            return i
    raise AssertionError(f"no call {prefix}")


def without_globals(call: dict) -> list[str]:
    args, out, skip = call["args"], [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--context", "--namespace"):
            skip = True
        else:
            out.append(arg)
    return [call["tool"], *out]


@pytest.mark.parametrize("cluster", list(CLUSTERS))
def test_up_then_down_with_stand_in_cluster_tools(cluster, stub):
    context, create, load = CLUSTERS[cluster]
    up = script(f"k8s-{cluster}-up.sh", stub)
    assert up.returncode == 0, up.stderr[-3000:]
    log = calls(stub)
    secrets_file = Path(stub["APOD_K8S_SECRETS_FILE"])
    values = k8s_secrets.read_env(secrets_file)
    assert values["NASA_API_KEY"] == "stub-nasa-key"
    assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"

    # No secret value on any command line, nor in what the script printed.
    argv_text = " ".join(" ".join(c["args"]) for c in log)
    printed = up.stdout + up.stderr
    for name, value in values.items():
        assert value not in argv_text, name
        assert value not in printed, name

    kubectl_calls = [c for c in log if c["tool"] == "kubectl"]
    assert kubectl_calls
    assert all(c["args"][:2] == ["--context", context] for c in kubectl_calls)

    # The cluster, then every image loaded into it.
    assert index_of(log, *create) < index_of(log, *load)
    loaded = {c["args"][-1] for c in log if [c["tool"], *c["args"]][:3] == load}
    steps_and_airflow = ("extract", "transform", "load", "version", "airflow")
    assert loaded == {f"apod-{name}:{VERSION}" for name in steps_and_airflow} | {POSTGRES_IMAGE}

    # The Secrets travel on stdin, exactly what the manifests reference.
    applied = {}
    for call in log:
        if call["stdin"]:
            manifest = json.loads(call["stdin"])
            applied[manifest["metadata"]["name"]] = {
                k: base64.b64decode(v).decode() for k, v in manifest["data"].items()
            }
    assert applied == k8s_secrets.secret_data(values)

    # The overlay applied is the cluster's, wrapped with the tags of what was loaded.
    tagged = Path(stub["APOD_K8S_STATE_DIR"]) / "kustomize" / cluster
    kustomization = yaml.safe_load((tagged / "kustomization.yaml").read_text())
    (resource,) = kustomization["resources"]
    assert (tagged / resource).resolve() == REPO / "k8s" / "overlays" / cluster
    tags = {f"{i['name']}:{i['newTag']}" for i in kustomization["images"]}
    assert tags == {f"apod-airflow:{VERSION}", f"apod-load:{VERSION}", POSTGRES_IMAGE}
    assert tags <= loaded

    # Order: Secrets, old Jobs removed, the overlay, then the waits and the port-forward.
    plain = [without_globals(c) for c in log]
    apply_k = plain.index(["kubectl", "apply", "-k", str(tagged)])
    assert max(i for i, c in enumerate(log) if c["stdin"]) < apply_k
    assert (
        plain.index(
            ["kubectl", "delete", "job", "apod-db-init", "airflow-db-migrate", "--ignore-not-found"]
        )
        < apply_k
    )
    waits = [i for i, c in enumerate(plain) if c[1] in ("rollout", "get") and i > apply_k]
    assert len(waits) >= 6
    forward = [c for c in plain if c[1] == "port-forward"]
    assert forward == [
        [
            "kubectl",
            "port-forward",
            "--address",
            "127.0.0.1",
            "svc/airflow-api-server",
            f"{stub['APOD_K8S_UI_PORT']}:8080",
        ]
    ]
    assert f"http://127.0.0.1:{stub['APOD_K8S_UI_PORT']}" in up.stderr
    pid = int((Path(stub["APOD_K8S_STATE_DIR"]) / "port-forward.pid").read_text())
    assert alive(pid)  # still forwarding

    # Again: the cluster is reused and the secrets kept.
    again = script(f"k8s-{cluster}-up.sh", stub)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [c for c in calls(stub) if [c["tool"], *c["args"]][:3] == create[:3]] == [
        c for c in log if [c["tool"], *c["args"]][:3] == create[:3]
    ]
    assert k8s_secrets.read_env(secrets_file) == values

    pid = int((Path(stub["APOD_K8S_STATE_DIR"]) / "port-forward.pid").read_text())
    down = script(f"k8s-{cluster}-down.sh", stub)
    assert down.returncode == 0, down.stderr
    for _ in range(50):
        if not alive(pid):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the port-forward survived the down script")
    deleted = [c for c in calls(stub) if c["args"][:1] == ["delete"] and c["tool"] != "kubectl"]
    assert len(deleted) == 1
    assert secrets_file.exists()
