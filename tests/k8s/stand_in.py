"""Install the cluster stand-in (cluster_stub.py) as kind, minikube and kubectl in a
directory put first on PATH, and read back what the scripts did with it."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import k8s_images
from k8s_render import REPO, kustomize_command
from support.builds import build_images
from support.registry import Registry
from support.services import VERSION

HERE = Path(__file__).resolve().parent
TOOLS = ("kind", "minikube", "kubectl")
# The label of every Docker object the stand-in makes in this test session (kind's nodes
# and networks), for conftest.py to remove them at the end, whatever a test left.
SESSION = f"hk8s-{secrets.token_hex(4)}"
# Where a test that gave no registry would push: a name that cannot resolve, so that such
# a test fails at once instead of starting the user's own registry.
NO_REGISTRY = "no-registry.stand-in.invalid/apod"
# What the stand-in's modules import: this folder, tests/ (support), dags/, scripts/.
IMPORT_PATH = [str(HERE), str(REPO / "tests"), str(REPO / "dags"), str(REPO / "scripts")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def install(bin_dir: Path, python: str = sys.executable) -> None:
    """`python`: the interpreter of the launchers (another user may not reach the venv's)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    launcher = (
        f"#!{python}\n"
        "import sys\n"
        f"sys.path[:0] = {IMPORT_PATH!r}\n"
        "from cluster_stub import main\n"
        "raise SystemExit(main(sys.argv))\n"
    )
    for tool in TOOLS:
        path = bin_dir / tool
        path.write_text(launcher)
        path.chmod(0o755)


def environment(
    root: Path, python: str = sys.executable, registry: Registry | None = None, **more: str
) -> dict[str, str]:
    """The environment of a script run against the stand-in, everything under `root`:
    kind's nodes on a network of their own, images from the test session's `registry`."""
    install(root / "bin", python)
    token = secrets.token_hex(3)
    kustomize = kustomize_command()
    if kustomize is None or kustomize[1] != "kustomize":
        raise RuntimeError("the stand-in renders `apply -k` with kubectl's kustomize")
    return {
        **os.environ,
        "PATH": f"{root / 'bin'}:{os.environ['PATH']}",
        "CLUSTER_STUB_LOG": str(root / "calls.jsonl"),
        "CLUSTER_STUB_STATE": str(root / "stub-state"),
        "CLUSTER_STUB_KUSTOMIZE": kustomize[0],
        "APOD_K8S_SECRETS_FILE": str(root / "k8s" / ".secrets.env"),
        "APOD_K8S_STATE_DIR": str(root / "state"),
        "APOD_K8S_UI_PORT": str(free_port()),
        "APOD_K8S_SKIP_BUILD": "1",
        "APOD_K8S_TIMEOUT": "20",
        "NASA_API_KEY": "stub-nasa-key",
        "CLUSTER_STUB_NODE_IMAGE": f"apod-registry:{VERSION}",  # Debian, with bash
        "CLUSTER_STUB_DOCKER_LABEL": SESSION,
        "KIND_EXPERIMENTAL_DOCKER_NETWORK": f"hk8s-kind-{token}",
        "CLUSTER_STUB_NODE_PREFIX": f"hk8s-{token}-",
        **(registry.env() if registry else {"APOD_IMAGE_REGISTRY": NO_REGISTRY}),
        **more,
    }


def private_postgres(image: str) -> None:
    """Postgres built from this checkout under a name of the test's own (apod-postgres:<major>
    is every checkout's; a build from the cache is quick), for APOD_LOCAL_POSTGRES."""
    built = build_images("--tag", image, "postgres", timeout=600)
    if built.returncode != 0:
        raise RuntimeError(f"apod_build --tag {image} postgres: {built.stderr[-3000:]}")


def remove_docker_objects(env: dict[str, str]) -> None:
    """kind's nodes and network of this environment, whatever the test left."""
    import stub_registry

    stub_registry.remove_leftovers(SESSION, env["KIND_EXPERIMENTAL_DOCKER_NETWORK"])


def calls(env: dict[str, str]) -> list[dict]:
    path = Path(env["CLUSTER_STUB_LOG"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def state(env: dict[str, str]) -> dict:
    path = Path(env["CLUSTER_STUB_STATE"]) / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def without_globals(call: dict) -> list[str]:
    """The call's argv without --context/--namespace and their values."""
    out, skip = [], False
    for arg in call["args"]:
        if skip:
            skip = False
        elif arg in ("--context", "--namespace"):
            skip = True
        else:
            out.append(arg)
    return [call["tool"], *out]


def local_tags() -> set[str]:
    listing = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return {tag for tag in listing if tag.startswith("apod-")}


@contextlib.contextmanager
def removing_content_tags() -> Iterator[None]:
    """Untag, when the block ends, the content tags the up scripts made in it (and only
    those: others may build images meanwhile)."""
    before = local_tags()
    try:
        yield
    finally:
        for made in sorted(local_tags() - before):
            tag = made.rpartition(":")[2]
            if k8s_images.is_content_tag(tag, tag.split(f"-{k8s_images.MARK}.")[0]):
                subprocess.run(["docker", "image", "rm", made], capture_output=True, check=False)
