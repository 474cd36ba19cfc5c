"""scripts/k8s-{kind,minikube}-{up,down}.sh, driven against a stand-in for kind, minikube
and kubectl that keeps state and refuses what the real tools refuse (cluster_stub.py:
no cluster can run here), with the real Docker images and the real secrets generator:
what they call, in what order, on which context; that every workload they apply is
waited for; that a rebuild rolls the Deployments onto new images; that minikube starts
as root and as a user; and that no secret value reaches a command line or the output."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import k8s_images
import k8s_secrets
import pytest
import stand_in
import stub_pods
import yaml
from k8s_render import REPO
from support.services import VERSION, docker, require_images

pytestmark = [pytest.mark.k8s, pytest.mark.docker, pytest.mark.timeout(600)]

CLUSTERS = {
    # cluster kind -> (kubectl context, the call that creates it, the call that loads an image)
    "kind": ("kind-apod", ["kind", "create", "cluster"], ["kind", "load", "docker-image"]),
    "minikube": ("apod", ["minikube", "start"], ["minikube", "image", "load"]),
}
PG_MAJOR = (REPO / "images" / "postgres" / "PG_MAJOR").read_text().strip()
WORKLOADS = ("Deployment", "StatefulSet", "Job")


@contextlib.contextmanager
def build_tagged(tag: str) -> Iterator[None]:
    """The project's local images under another build tag (same images), removed after,
    with every content tag made from them."""
    for name in k8s_images.project_images():
        docker("tag", f"apod-{name}:{VERSION}", f"apod-{name}:{tag}")
    try:
        yield
    finally:
        for made in sorted(stand_in.local_tags()):
            if made.endswith(f":{tag}"):
                docker("image", "rm", made, check=False)


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The stand-in's environment, deploying a private build tag of the local images
    (so that other builds retagging apod-*:VERSION meanwhile change nothing here)."""
    require_images("extract", "transform", "load", "version", "airflow", "objectstore")
    if docker("image", "inspect", f"apod-postgres:{PG_MAJOR}", check=False).returncode != 0:
        pytest.skip(f"apod-postgres:{PG_MAJOR} not built")
    build = f"hk8s-{secrets.token_hex(3)}"
    with stand_in.removing_content_tags(), build_tagged(build):
        yield stand_in.environment(tmp_path, APOD_K8S_BUILD_TAG=build)


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent that may never reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def script(name: str, env: dict[str, str], *prefix: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, str(REPO / "scripts" / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def index_of(log: list[dict], *prefix: str) -> int:
    for i, call in enumerate(log):
        if [call["tool"], *call["args"]][: len(prefix)] == list(prefix):
            return i
    raise AssertionError(f"no call {prefix}")


def port_forward_pid(env: dict[str, str]) -> int:
    return int((Path(env["APOD_K8S_STATE_DIR"]) / "port-forward.pid").read_text())


def stop_port_forward(env: dict[str, str]) -> None:
    pid_file = Path(env["APOD_K8S_STATE_DIR"]) / "port-forward.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), 15)


def unwaited(cluster: dict) -> list[str]:
    """Workloads of the cluster whose latest generation no wait saw finished."""
    return [
        key
        for key in cluster["objects"]
        if key.split("/")[0] in WORKLOADS
        and cluster["observed"].get(key) != cluster["generation"][key]
    ]


@pytest.mark.parametrize("cluster", list(CLUSTERS))
def test_up_then_down_with_stand_in_cluster_tools(cluster, stub):
    context, create, load = CLUSTERS[cluster]
    try:
        up = script(f"k8s-{cluster}-up.sh", stub)
        assert up.returncode == 0, up.stderr[-3000:]
        log = stand_in.calls(stub)
        secrets_file = Path(stub["APOD_K8S_SECRETS_FILE"])
        values = k8s_secrets.read_env(secrets_file)
        assert values["NASA_API_KEY"] == "stub-nasa-key"
        assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"

        # The tools were checked before anything was made.
        assert "k8s-doctor: what" in up.stderr
        assert up.stderr.index("k8s-doctor") < up.stderr.index(f"{cluster} ")

        # No secret value on any command line, nor in what the script printed.
        argv_text = " ".join(" ".join(c["args"]) for c in log)
        printed = up.stdout + up.stderr
        for name, value in values.items():
            assert value not in argv_text, name
            assert value not in printed, name

        kubectl_calls = [c for c in log if c["tool"] == "kubectl" and c["args"][0] != "version"]
        assert kubectl_calls
        assert all(c["args"][:2] == ["--context", context] for c in kubectl_calls)

        # The cluster, then every image loaded into it under this build's content tags.
        assert index_of(log, *create) < index_of(log, *load)
        loaded = {c["args"][-1] for c in log if [c["tool"], *c["args"]][:3] == load}
        tagged = Path(stub["APOD_K8S_STATE_DIR"]) / "kustomize" / cluster
        kustomization = yaml.safe_load((tagged / "kustomization.yaml").read_text())
        tags = {i["name"]: i["newTag"] for i in kustomization["images"]}
        tag, pg_tag = tags["apod-airflow"], tags["apod-postgres"]
        assert k8s_images.is_content_tag(tag, VERSION)
        assert k8s_images.is_content_tag(pg_tag, PG_MAJOR)
        assert tags["apod-load"] == tag
        plan = k8s_images.plan(stub["APOD_K8S_BUILD_TAG"])
        assert set(plan.values()) == {f"apod-{n}:{tag}" for n in k8s_images.project_images()} | {
            f"apod-postgres:{pg_tag}"
        }
        assert loaded == set(plan.values())

        # The Secrets travel on stdin, exactly what the manifests reference.
        applied = {}
        for call in log:
            if call["stdin"]:
                manifest = yaml.safe_load(call["stdin"])
                applied[manifest["metadata"]["name"]] = {
                    k: base64.b64decode(v).decode() for k, v in manifest["data"].items()
                }
        assert applied == k8s_secrets.secret_data(values)

        # The overlay applied is the cluster's, wrapped with the content tags.
        (resource,) = kustomization["resources"]
        assert (tagged / resource).resolve() == REPO / "k8s" / "overlays" / cluster
        images = {f"{i['name']}:{i['newTag']}" for i in kustomization["images"]}
        assert images == {
            f"apod-airflow:{tag}",
            f"apod-load:{tag}",
            f"apod-objectstore:{tag}",
            f"apod-postgres:{pg_tag}",
        }
        assert images <= loaded

        # Order: Secrets, old Jobs removed, the overlay (with the Secrets' checksums:
        # scripts/k8s_rollout.py), then the waits and the port-forward.
        plain = [stand_in.without_globals(c) for c in log]
        applied = tagged.parent / f"{cluster}.applied"
        apply_k = plain.index(["kubectl", "apply", "-k", str(applied)])
        (resource,) = yaml.safe_load((applied / "kustomization.yaml").read_text())["resources"]
        assert (applied / resource).resolve() == tagged.resolve()
        assert max(i for i, c in enumerate(log) if c["stdin"]) < apply_k
        (delete_jobs,) = [i for i, c in enumerate(plain) if c[1:3] == ["delete", "job"]]
        assert set(plain[delete_jobs][3:]) == {
            "apod-db-init",
            "airflow-db-migrate",
            "--ignore-not-found",
        }
        assert delete_jobs < apply_k
        forward = [i for i, c in enumerate(plain) if c[1] == "port-forward"]
        assert [plain[i] for i in forward] == [
            [
                "kubectl",
                "port-forward",
                "--address",
                "127.0.0.1",
                "svc/airflow-api-server",
                f"{stub['APOD_K8S_UI_PORT']}:8080",
            ]
        ]
        # Every workload it applied was waited for, after the apply and before the UI.
        state = stand_in.state(stub)["clusters"][context]
        workloads = [k for k in state["objects"] if k.split("/")[0] in WORKLOADS]
        assert len(workloads) == 7
        assert unwaited(state) == []
        waits = [i for i, c in enumerate(plain) if c[1] in ("rollout", "get") and i > apply_k]
        assert waits
        assert max(waits) < forward[0]
        assert f"http://127.0.0.1:{stub['APOD_K8S_UI_PORT']}" in up.stderr
        assert alive(port_forward_pid(stub))  # still forwarding

        # Again: the cluster is reused, the secrets kept, and nothing rolls (same build),
        # not even the Jobs, which completed and did not change.
        generations = dict(state["generation"])
        before = len(stand_in.calls(stub))
        again = script(f"k8s-{cluster}-up.sh", stub)
        assert again.returncode == 0, again.stderr[-3000:]
        calls = stand_in.calls(stub)
        assert not [
            c for c in calls[before:] if stand_in.without_globals(c)[1:3] == ["delete", "job"]
        ]
        creates = [c for c in calls if [c["tool"], *c["args"]][: len(create)] == create]
        assert len(creates) == 1
        assert k8s_secrets.read_env(secrets_file) == values
        assert stand_in.state(stub)["clusters"][context]["generation"] == generations

        pid = port_forward_pid(stub)
        down = script(f"k8s-{cluster}-down.sh", stub)
        assert down.returncode == 0, down.stderr
        for _ in range(50):
            if not alive(pid):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the port-forward survived the down script")
        deleted = [
            c
            for c in stand_in.calls(stub)
            if c["args"][:1] == ["delete"] and c["tool"] != "kubectl"
        ]
        assert len(deleted) == 1
        assert context not in stand_in.state(stub)["clusters"]
        assert secrets_file.exists()
    finally:
        stop_port_forward(stub)


def rebuild(image: str) -> str:
    """A new image under the same name and tag (a label-only build: a new image ID)."""
    dockerfile = f"FROM {image}\nLABEL hk8s.rebuild={secrets.token_hex(4)}\n"
    result = subprocess.run(
        ["docker", "build", "-q", "-t", image, "-"],
        input=dockerfile, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def test_a_rebuild_rolls_the_deployments_and_the_dag_onto_the_new_images(stub):
    build = stub["APOD_K8S_BUILD_TAG"]
    context = "kind-apod"
    try:
        first = script("k8s-kind-up.sh", stub)
        assert first.returncode == 0, first.stderr[-3000:]
        old_plan = k8s_images.plan(build)
        before = stand_in.state(stub)["clusters"][context]

        rebuild(f"apod-airflow:{build}")
        again = script("k8s-kind-up.sh", stub)
        assert again.returncode == 0, again.stderr[-3000:]
    finally:
        stop_port_forward(stub)
    plan = k8s_images.plan(build)
    after = stand_in.state(stub)["clusters"][context]

    new_tag = plan[f"apod-airflow:{build}"].rpartition(":")[2]
    assert new_tag != old_plan[f"apod-airflow:{build}"].rpartition(":")[2]
    # The step images, unchanged themselves, come under the new tag too: the DAG names
    # them all by one APOD_IMAGE_TAG.
    assert set(plan.values()) <= set(after["loaded"])
    # The Deployments read the new ConfigMap (apply leaves the old one, as kubectl does).
    config = stub_pods.airflow_config(after)
    assert config["APOD_IMAGE_TAG"] == new_tag
    for step in ("extract", "transform", "load", "version"):
        assert f"apod-{step}:{new_tag}" in after["loaded"]
    # Each Airflow Deployment has a new pod template (its image and its ConfigMap's
    # hashed name), and the up script waited for it to roll out.
    for key in (
        "Deployment/apod/airflow-api-server",
        "StatefulSet/apod/airflow-scheduler",
        "Deployment/apod/airflow-dag-processor",
    ):
        assert after["generation"][key] == before["generation"][key] + 1
        images = {
            c["image"] for c in after["objects"][key]["spec"]["template"]["spec"]["containers"]
        }
        assert images == {f"apod-airflow:{new_tag}"}
    assert unwaited(after) == []
    # Postgres' image did not change: its StatefulSet stays as it was.
    assert after["generation"]["StatefulSet/apod/postgres"] == 1


def test_minikube_starts_as_root_with_force_and_as_a_user_without(stub):
    if os.geteuid() != 0:
        pytest.skip("the root half needs root; the user half is what runs anyway")
    try:
        as_root = script("k8s-minikube-up.sh", stub)
        assert as_root.returncode == 0, as_root.stderr[-3000:]
    finally:
        stop_port_forward(stub)
    (start,) = [c for c in stand_in.calls(stub) if c["args"][:1] == ["start"]]
    assert "--force" in start["args"]
    node = stand_in.state(stub)["minikube"]["apod"]
    assert (node["Memory"], node["CPUs"]) == (6144, 2)  # k8s/tools.env's MINIKUBE_MEMORY=6g

    # The same as an ordinary user in the docker group: no --force.
    docker_gid = os.stat("/var/run/docker.sock").st_gid
    home = Path(tempfile.mkdtemp(prefix="hk8s-user-"))
    home.chmod(0o777)
    # The system's python3 runs the stand-in: the venv's interpreter lives under /root.
    user_env = stand_in.environment(
        home, python="/usr/bin/python3", HOME=str(home), MINIKUBE_MEMORY="4g"
    )
    user_env["PATH"] = f"{home / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    try:
        as_user = script(
            "k8s-minikube-up.sh",
            user_env,
            "setpriv", "--reuid=65534", "--regid=65534", f"--groups={docker_gid}",
        )  # fmt: skip
        assert as_user.returncode == 0, as_user.stderr[-3000:]
        (start,) = [c for c in stand_in.calls(user_env) if c["args"][:1] == ["start"]]
        assert "--force" not in start["args"]
        assert start["args"][start["args"].index("--memory") + 1] == "4g"
        assert "running as root" not in as_user.stderr
    finally:
        stop_port_forward(user_env)
        subprocess.run(["rm", "-rf", str(home)], check=False)


def test_the_stand_in_refuses_minikube_as_root_without_force(stub):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    result = subprocess.run(
        ["minikube", "start", "--profile", "x", "--driver", "docker"],
        env=stub, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 57
    assert "DRV_AS_ROOT" in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["kind", "create", "cluster", "--name", "apod", "--wait-for", "180s"],
        ["kind", "load", "docker-image", "--cluster", "apod", "x:1"],
        ["minikube", "start", "--profile", "apod", "--memroy", "6g"],
        ["minikube", "image", "load", "--profile", "apod", "--force", "x:1"],
        ["kubectl", "--context", "kind-apod", "rollout", "status", "deploy/x", "--wait", "10s"],
        ["kubectl", "--context", "kind-apod", "apply", "--kustomization", "dir"],
        ["kubectl", "--context", "kind-apod", "port-forward", "--bind", "::1", "svc/x", "1:2"],
        ["kind", "get", "nodes", "--cluster", "apod"],
        ["kubectl", "--context", "kind-apod", "create", "-k", "d", "--dry-run=client", "--json"],
    ],
)
def test_the_stand_in_refuses_flags_the_real_tools_lack(argv, stub):
    result = subprocess.run(argv, env=stub, capture_output=True, text=True)
    assert result.returncode == 1
    assert "unknown flag" in result.stderr


def test_the_stand_in_completes_a_job_only_once_it_ran(stub):
    env = stub
    up = script("k8s-kind-up.sh", env)
    stop_port_forward(env)
    assert up.returncode == 0, up.stderr[-3000:]

    def kc(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["kubectl", "--context", "kind-apod", "--namespace", "apod", *args],
            env=env, capture_output=True, text=True,
        )  # fmt: skip

    def job_state() -> subprocess.CompletedProcess:
        conditions = '{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}'
        return kc("get", "job", "apod-db-init", "-o", f"jsonpath={conditions}")

    assert job_state().stdout == "Complete "
    deleted = kc("delete", "job", "apod-db-init")
    assert deleted.returncode == 0
    gone = job_state()
    assert gone.returncode == 1
    assert "NotFound" in gone.stderr
    # A rollout of a Deployment that was never applied does not finish either.
    never = kc("rollout", "status", "deployment/nothing", "--timeout=5s")
    assert never.returncode == 1
    assert "NotFound" in never.stderr
