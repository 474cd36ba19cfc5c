"""The stand-in's kind nodes and their image pulls: what makes kind's local-registry
pattern testable where no cluster runs.

Each node of a kind cluster the stand-in creates is a real, idle Docker container named as
kind names it (<cluster>-control-plane, <cluster>-worker, ...; after CLUSTER_STUB_NODE_PREFIX,
so that no test takes the name of a real cluster's node) on the kind network
(KIND_EXPERIMENTAL_DOCKER_NETWORK, default kind), so that `docker network connect` and
`docker exec <node> ...` of the scripts act on something real. A node pulls an image the
way its containerd would with the cluster config's `config_path`: the image's registry host
is looked up in the node's /etc/containerd/certs.d/<host>/hosts.toml, and the manifest is
asked for from inside the node, over the kind network, from the `[host."http://..."]` it
names. So an image counts as pullable only when the registry runs, is joined to the kind
network under that name, holds the image under that tag, and every node has the hosts
entry: what kind's documentation sets up.

Settings: CLUSTER_STUB_NODE_IMAGE (an image with bash: the nodes' stand-in),
CLUSTER_STUB_DOCKER_LABEL (put on every container and network made here, for cleanup).
"""

from __future__ import annotations

import os
import re
import subprocess

HOSTS_DIR = "/etc/containerd/certs.d"
CONFIG_PATH = re.compile(r'config_path\s*=\s*"/etc/containerd/certs\.d"')
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.index.v1+json"
)


def network() -> str:
    return os.environ.get("KIND_EXPERIMENTAL_DOCKER_NETWORK") or "kind"


def label() -> list[str]:
    value = os.environ.get("CLUSTER_STUB_DOCKER_LABEL") or "apod.stand-in"
    return ["--label", f"apod.stand-in={value}"]


def docker(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, check=False
    )


def node_names(cluster: str, config: dict) -> list[str]:
    """kind's names: one per node of the config, workers numbered from the second."""
    cluster = os.environ.get("CLUSTER_STUB_NODE_PREFIX", "") + cluster
    names, workers = [], 0
    for node in config.get("nodes") or [{"role": "control-plane"}]:
        if node.get("role", "control-plane") == "control-plane":
            names.append(f"{cluster}-control-plane")
        else:
            workers += 1
            names.append(f"{cluster}-worker" + (str(workers) if workers > 1 else ""))
    return names


def config_path_enabled(config: dict) -> bool:
    return any(CONFIG_PATH.search(patch) for patch in config.get("containerdConfigPatches") or [])


def start_nodes(cluster: str, config: dict) -> list[str]:
    """Run the cluster's nodes; returns their names, or raises RuntimeError."""
    image = os.environ.get("CLUSTER_STUB_NODE_IMAGE")
    if not image:
        raise RuntimeError("stand-in: CLUSTER_STUB_NODE_IMAGE names no image for the nodes")
    if docker("network", "inspect", network()).returncode != 0:
        made = docker("network", "create", *label(), network())
        if made.returncode != 0:
            raise RuntimeError(f"stand-in: network {network()}: {made.stderr.strip()}")
    names = node_names(cluster, config)
    for name in names:
        started = docker(
            "run", "--detach", "--name", name, "--network", network(), *label(),
            "--user", "0:0", "--entrypoint", "sleep", image, "infinity",
        )  # fmt: skip
        if started.returncode != 0:
            remove_nodes(names)
            raise RuntimeError(f"stand-in: node {name}: {started.stderr.strip()}")
    return names


def remove_nodes(names: list[str]) -> None:
    for name in names:
        docker("rm", "--force", name)


def split_reference(image: str) -> tuple[str, str, str] | None:
    """(registry host, repository, tag) of a reference that names a registry, else None."""
    first, _, rest = image.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        return None
    repository, _, tag = rest.rpartition(":")
    return (first, repository, tag) if repository else (first, rest, "latest")


def registry_of(node: str, host: str) -> tuple[str, int] | None:
    """(name, port) of the first `[host."http://..."]` of the node's hosts.toml for host."""
    read = docker("exec", node, "cat", f"{HOSTS_DIR}/{host}/hosts.toml")
    if read.returncode != 0:
        return None
    match = re.search(r'^\[host\."http://([^":/]+)(?::(\d+))?"\]', read.stdout, re.M)
    return (match.group(1), int(match.group(2) or 80)) if match else None


def node_pulls(node: str, image: str) -> bool:
    """Whether the node's containerd would pull `image` (see the module's docstring)."""
    parts = split_reference(image)
    if parts is None:
        return False  # Docker Hub: no registry answers here
    host, repository, tag = parts
    target = registry_of(node, host)
    if target is None:
        return False  # containerd would try https://<host>: nothing listens in the node
    name, port = target
    request = (
        f"HEAD /v2/{repository}/manifests/{tag} HTTP/1.1\\r\\nHost: {name}:{port}\\r\\n"
        f"Accept: {MANIFEST_TYPES}\\r\\nConnection: close\\r\\n\\r\\n"
    )
    script = (
        f'exec 3<>"/dev/tcp/{name}/{port}" || exit 1; printf "{request}" >&3; '
        'IFS= read -r -t 5 status <&3; [[ $status == "HTTP/1."?" 200"* ]]'
    )
    return docker("exec", node, "bash", "-c", script).returncode == 0


def pullable(cluster: dict, image: str) -> bool:
    """Every node of a stand-in kind cluster can pull the image (a pod may land on any)."""
    nodes = cluster.get("nodes") or []
    if not nodes or not cluster.get("config_path"):
        return False
    return all(node_pulls(node, image) for node in nodes)


def absent(cluster: dict, images: list[str]) -> list[str]:
    """The images a pod of the cluster cannot start from: neither loaded into it nor
    pullable by its nodes. A pulled image is recorded as on the nodes (IfNotPresent)."""
    out = []
    for image in images:
        if image in cluster["loaded"]:
            continue
        if pullable(cluster, image):
            cluster["loaded"][image] = "pulled"
            continue
        out.append(image)
    return out


def remove_network(name: str) -> None:
    """A network the stand-in made, after disconnecting what was joined to it (the
    registry: kind's network outlives its clusters, and so does the registry)."""
    attached = docker("network", "inspect", "--format",
                      "{{range .Containers}}{{.Name}} {{end}}", name)  # fmt: skip
    for container in attached.stdout.split():
        docker("network", "disconnect", "--force", name, container)
    docker("network", "rm", name)


def remove_leftovers(value: str, network_name: str | None = None) -> None:
    """Every container and network the stand-in made under the label `value` (only those
    of one network when it is named)."""
    scope = ["--filter", f"network={network_name}"] if network_name else []
    containers = docker("container", "ls", "-qa", "--filter", f"label=apod.stand-in={value}",
                        *scope)  # fmt: skip
    for container in containers.stdout.split():
        docker("rm", "--force", "--volumes", container)
    networks = docker("network", "ls", "-q", "--filter", f"label=apod.stand-in={value}")
    for network_id in networks.stdout.split():
        name = docker("network", "inspect", "--format", "{{.Name}}", network_id).stdout.strip()
        if network_name in (None, name):
            remove_network(name)
