"""scripts/k8s-{kind,minikube}-{up,down}.sh, driven against a stand-in for kind, minikube
and kubectl that keeps state and refuses what the real tools refuse (cluster_stub.py:
no cluster can run here), with the real Docker images, the project's real registry and
the real secrets generator: what they call, in what order, on which context; that kind's
nodes pull every image from the registry (kind's local-registry pattern: real node
containers, hosts.toml, the registry on the kind network) and minikube gets them loaded;
that every workload they apply is waited for; that a DAG change rolls only the Airflow
workloads; that minikube starts as root and as a user; and that no secret value reaches a
command line or the output."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
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
import stub_registry
import yaml
from k8s_render import REPO
from support.builds import build_images
from support.registry import Registry
from support.services import VERSION, docker, require_images

from apod_build import content_tags

pytestmark = [pytest.mark.k8s, pytest.mark.docker, pytest.mark.timeout(600)]

CLUSTERS = {
    # cluster kind -> (kubectl context, the call that creates it)
    "kind": ("kind-apod", ["kind", "create", "cluster"]),
    "minikube": ("apod", ["minikube", "start"]),
}
MINIKUBE_LOAD = ["minikube", "image", "load"]
PG_MAJOR = (REPO / "images" / "postgres" / "PG_MAJOR").read_text().strip()
WORKLOADS = ("Deployment", "StatefulSet", "Job")


@contextlib.contextmanager
def build_tagged(tag: str) -> Iterator[None]:
    """The project's local images under another build tag (same images), and Postgres
    built under it (apod-postgres:<major> is every checkout's), removed after, with every
    content tag made from them."""
    for name in k8s_images.project_images():
        docker("tag", f"apod-{name}:{VERSION}", f"apod-{name}:{tag}")
    try:
        stand_in.private_postgres(f"apod-postgres:{tag}")
        yield
    finally:
        for made in sorted(stand_in.local_tags()):
            if made.endswith(f":{tag}"):
                docker("image", "rm", made, check=False)


@pytest.fixture
def stub(tmp_path: Path, registry: Registry) -> Iterator[dict[str, str]]:
    """The stand-in's environment, deploying a private build tag of the local images
    (so that other builds retagging apod-*:VERSION meanwhile change nothing here), kind's
    images from the session's registry."""
    require_images("extract", "transform", "load", "version", "airflow", "objectstore")
    if docker("image", "inspect", f"apod-postgres:{PG_MAJOR}", check=False).returncode != 0:
        pytest.skip(f"apod-postgres:{PG_MAJOR} not built")
    build = f"hk8s-{secrets.token_hex(3)}"
    with stand_in.removing_content_tags(), build_tagged(build):
        env = stand_in.environment(
            tmp_path,
            registry=registry,
            APOD_K8S_BUILD_TAG=build,
            APOD_LOCAL_POSTGRES=f"apod-postgres:{build}",
        )
        try:
            yield env
        finally:
            stand_in.remove_docker_objects(env)


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
def test_up_then_down_with_stand_in_cluster_tools(cluster, stub, registry):
    context, create = CLUSTERS[cluster]
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

        # Every image the cluster runs, each under its own content tag: kind's from the
        # registry, minikube's loaded into it (no registry: local names).
        tagged = Path(stub["APOD_K8S_STATE_DIR"]) / "kustomize" / cluster
        kustomization = yaml.safe_load((tagged / "kustomization.yaml").read_text())
        names = {i["name"]: i.get("newName", i["name"]) for i in kustomization["images"]}
        tags = {i["name"]: i["newTag"] for i in kustomization["images"]}
        expected = content_tags.content_tags(REPO, k8s_images.cluster_images())
        assert tags == {f"apod-{n}": expected[n] for n in k8s_images.cluster_images()}
        assert len(set(tags.values())) == len(tags)
        state = stand_in.state(stub)["clusters"][context]
        loads = [c for c in log if [c["tool"], *c["args"]][:3] == MINIKUBE_LOAD]
        if cluster == "kind":
            prefix = f"{registry.host}/apod/"
            assert names == {n: prefix + n for n in names}
            references = {f"{names[n]}:{tags[n]}" for n in names}
            # Every one pushed (the step images too, which only a DAG run pulls).
            for reference in references:
                assert registry.has(reference), reference
            assert not [c for c in log if c["tool"] == "kind" and c["args"][:1] == ["load"]]
            (node,) = state["nodes"]
            entry = f"/etc/containerd/certs.d/{registry.host}/hosts.toml"
            hosts = docker("exec", node, "cat", entry).stdout
            assert hosts == f'[host."http://{registry.name}:5000"]\n'
            networks = docker("inspect", "--format", "{{json .NetworkSettings.Networks}}",
                              registry.name).stdout  # fmt: skip
            assert f'"{stub["KIND_EXPERIMENTAL_DOCKER_NETWORK"]}"' in networks
            hosting = state["objects"]["ConfigMap/kube-public/local-registry-hosting"]
            assert f'host: "{registry.host}"' in hosting["data"]["localRegistryHosting.v1"]
            # The registry-named local tags the push made are gone again.
            assert not [t for t in registry.local_tags() if t.startswith(prefix)]
            assert index_of(log, *create) < index_of(log, "kind", "get", "nodes")
        else:
            assert names == {n: n for n in names}
            loaded = {c["args"][-1] for c in loads}
            assert loaded == {f"{n}:{tags[n]}" for n in names}
            assert index_of(log, *create) < index_of(log, *MINIKUBE_LOAD)
        if cluster == "kind":
            assert loads == []

        # The Secrets travel on stdin, exactly what the manifests reference.
        applied = {}
        for call in log:
            manifest = yaml.safe_load(call["stdin"]) if call["stdin"] else None
            if manifest and manifest["kind"] == "Secret":
                applied[manifest["metadata"]["name"]] = {
                    k: base64.b64decode(v).decode() for k, v in manifest["data"].items()
                }
        assert applied == k8s_secrets.secret_data(values)

        # The overlay applied is the cluster's, wrapped with the content tags.
        (resource,) = kustomization["resources"]
        assert (tagged / resource).resolve() == REPO / "k8s" / "overlays" / cluster

        # Order: Secrets, old Jobs removed, the overlay (with the Secrets' checksums:
        # scripts/k8s_rollout.py), then the waits and the port-forward.
        plain = [stand_in.without_globals(c) for c in log]
        applied = tagged.parent / f"{cluster}.applied"
        apply_k = plain.index(["kubectl", "apply", "-k", str(applied)])
        (resource,) = yaml.safe_load((applied / "kustomization.yaml").read_text())["resources"]
        assert (applied / resource).resolve() == tagged.resolve()
        assert max(i for i, c in enumerate(log) if "kind: Secret" in (c["stdin"] or "")) < apply_k
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
        if cluster == "kind":
            # What the manifests run was pulled, for the waits to end.
            ran = {c["image"] for o in state["objects"].values() if o["kind"] in WORKLOADS
                   for c in o["spec"]["template"]["spec"]["containers"]}  # fmt: skip
            assert ran <= {i for i, how in state["loaded"].items() if how == "pulled"}
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


def checkout_copy(target: Path) -> Path:
    """The repository's files as they are (tracked and new), without its history: a
    checkout to change sources in and run the scripts from."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for relative in filter(None, listing):
        source = REPO / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    return target


def test_a_dag_change_rolls_only_the_airflow_workloads(stub, tmp_path):
    """Up, change a DAG file in a copy of the checkout, rebuild from it (the Airflow image
    alone changes), up again from it: the Airflow workloads roll onto the new image; the
    object store and Postgres, and the step images the DAG names, stay as they were."""
    build = stub["APOD_K8S_BUILD_TAG"]
    context = "kind-apod"
    copy = checkout_copy(tmp_path / "checkout")
    try:
        first = script("k8s-kind-up.sh", stub)
        assert first.returncode == 0, first.stderr[-3000:]
        before = stand_in.state(stub)["clusters"][context]
        old = content_tags.content_tags(copy)

        with (copy / "dags" / "apod_etl_k8s.py").open("a") as dag:
            dag.write("\n# a DAG-only change\n")
        new = content_tags.content_tags(copy)
        assert {n for n in old if old[n] != new[n]} == {"airflow"}
        built = build_images("--tag", f"apod-airflow:{build}", "airflow", root=copy, timeout=600)
        assert built.returncode == 0, built.stderr[-3000:]
        again = subprocess.run(
            [str(copy / "scripts" / "k8s-kind-up.sh")],
            env=stub, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr[-3000:]
    finally:
        stop_port_forward(stub)
    after = stand_in.state(stub)["clusters"][context]

    registry = stub_pods.airflow_config(after)["APOD_IMAGE_REGISTRY"]
    # Each Airflow workload has a new pod template (its image), and the up script waited
    # for it to roll out.
    for key in (
        "Deployment/apod/airflow-api-server",
        "StatefulSet/apod/airflow-scheduler",
        "Deployment/apod/airflow-dag-processor",
    ):
        assert after["generation"][key] == before["generation"][key] + 1
        images = {
            c["image"] for c in after["objects"][key]["spec"]["template"]["spec"]["containers"]
        }
        assert images == {f"{registry}/apod-airflow:{new['airflow']}"}
    assert unwaited(after) == []
    # The object store and Postgres did not change: their StatefulSets stay as they were.
    for name in ("postgres", "objectstore"):
        key = f"StatefulSet/apod/{name}"
        assert after["generation"][key] == before["generation"][key] == 1
    # The DAG names the same step images as before.
    config = stub_pods.airflow_config(after)
    assert config["APOD_IMAGE_TAGS"] == stub_pods.airflow_config(before)["APOD_IMAGE_TAGS"]
    assert config["APOD_IMAGE_TAGS"] == ",".join(f"{n}={new[n]}" for n in k8s_images.step_images())


def test_minikube_starts_as_root_with_force_and_as_a_user_without(stub, registry):
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
        home,
        python="/usr/bin/python3",
        registry=registry,
        HOME=str(home),
        MINIKUBE_MEMORY="4g",
        APOD_K8S_BUILD_TAG=stub["APOD_K8S_BUILD_TAG"],
        APOD_LOCAL_POSTGRES=stub["APOD_LOCAL_POSTGRES"],
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


def test_the_stand_in_completes_a_job_only_once_it_ran(stub, registry):
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

    # Its nodes pull only through their hosts entry, from the registry on the kind network.
    state = stand_in.state(env)["clusters"]["kind-apod"]
    (node,) = state["nodes"]
    pulled = next(i for i, how in state["loaded"].items() if how == "pulled")
    assert stub_registry.node_pulls(node, pulled)
    assert not stub_registry.node_pulls(node, pulled.rpartition(":")[0] + ":never-pushed")
    network = env["KIND_EXPERIMENTAL_DOCKER_NETWORK"]
    docker("network", "disconnect", network, registry.name)
    try:
        assert not stub_registry.node_pulls(node, pulled)
    finally:
        docker("network", "connect", network, registry.name)
    docker("exec", node, "rm", f"/etc/containerd/certs.d/{registry.host}/hosts.toml")
    assert not stub_registry.node_pulls(node, pulled)
