#!/usr/bin/env python3
"""The project's container registry (images/registry) on this machine, and kind's
local-registry wiring to it (standard library only).

    registry.py up                 start it (or reuse it), build its image when missing,
                                   wait until it answers; prints its host address
    registry.py down [--volumes]   stop and remove it (and its data volume)
    registry.py kind CLUSTER CONTEXT
                                   make it the kind cluster's registry: kind's documented
                                   local-registry pattern (k8s/README.md)

`up` runs container APOD_REGISTRY_NAME (apod-registry) from apod-registry:<VERSION>,
published on 127.0.0.1:APOD_REGISTRY_PORT (5001) only, its data on the volume
<name>-data; Docker's default of trusting a registry on 127.0.0.0/8 or localhost over plain
HTTP means nothing else is configured. A container of that name that already runs is
reused, as kind's own script does; one published on another port is an error.

`kind` does what kind's documentation does for a local registry, with this one:
  1. joins the registry to the kind network (KIND_EXPERIMENTAL_DOCKER_NETWORK, default kind),
     where the nodes reach it by its container name;
  2. writes /etc/containerd/certs.d/localhost:<port>/hosts.toml into every node of CLUSTER
     (`kind get nodes`): the name the images carry (localhost:<port>/apod/...) resolves to
     http://<container>:5000 for containerd, whose config_path k8s/kind-cluster.yaml sets;
  3. applies the ConfigMap kube-public/local-registry-hosting (KEP-1755), which tells
     tools where the cluster's local registry is.
Exit codes: 0 done, 1 docker, kind or kubectl failed or the registry does not answer, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTAINER_PORT = 5000  # images/registry/config.yml's http.addr
HEALTHY_WITHIN = 90  # seconds
HOSTS_DIR = "/etc/containerd/certs.d"  # config_path in k8s/kind-cluster.yaml


class RegistryError(Exception):
    pass


def name() -> str:
    return os.environ.get("APOD_REGISTRY_NAME") or "apod-registry"


def port() -> int:
    text = os.environ.get("APOD_REGISTRY_PORT") or "5001"
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise RegistryError(f"APOD_REGISTRY_PORT must be a port number, not {text!r}")
    return int(text)


def host() -> str:
    """The registry as this machine and kind's nodes name it (images/registry: no TLS)."""
    return f"localhost:{port()}"


def image() -> str:
    build = os.environ.get("APOD_K8S_BUILD_TAG") or (REPO / "VERSION").read_text().strip()
    return f"apod-registry:{build}"


def run(*argv: str, stdin: str | None = None) -> str:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RegistryError(f"{' '.join(argv[:3])}: {result.stderr.strip() or result.stdout}")
    return result.stdout


def inspect(container: str, template: str) -> str | None:
    result = subprocess.run(
        ["docker", "inspect", "--format", template, container],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.stdout.strip() if result.returncode == 0 else None


def log(message: str) -> None:
    print(f"registry: {message}", file=sys.stderr)


def up() -> str:
    container, wanted = name(), port()
    state = inspect(container, "{{.State.Running}}")
    if state is None:
        if subprocess.run(["docker", "image", "inspect", image()], capture_output=True).returncode:
            log(f"building {image()}")
            build = [sys.executable, "-m", "apod_build", "registry"]
            tools = {**os.environ, "PYTHONPATH": str(REPO / "tools")}
            if subprocess.run(build, stdout=sys.stderr, env=tools, check=False).returncode:
                raise RegistryError("python3 -m apod_build registry failed")
        log(f"starting {container} on 127.0.0.1:{wanted}")
        run(
            "docker", "run", "--detach", "--name", container, "--restart", "unless-stopped",
            "--publish", f"127.0.0.1:{wanted}:{CONTAINER_PORT}",
            "--volume", f"{container}-data:/var/lib/registry",
            "--label", "apod.pipeline.registry=1", image(),
        )  # fmt: skip
    elif state != "true":
        log(f"starting the stopped {container}")
        run("docker", "start", container)
    published = inspect(
        container, f'{{{{json (index .HostConfig.PortBindings "{CONTAINER_PORT}/tcp")}}}}'
    )
    if f'"HostPort":"{wanted}"' not in (published or ""):
        raise RegistryError(
            f"container {container} publishes {published}, not 127.0.0.1:{wanted}: "
            "set APOD_REGISTRY_PORT to its port, or APOD_REGISTRY_NAME to another name"
        )
    deadline = time.monotonic() + HEALTHY_WITHIN
    while (
        health := inspect(container, "{{if .State.Health}}{{.State.Health.Status}}{{end}}")
    ) != "healthy":
        if health == "" or time.monotonic() > deadline:
            state = health or "no healthcheck"
            raise RegistryError(f"{container} is not healthy ({state}): docker logs {container}")
        time.sleep(0.5)
    return host()


def down(volumes: bool) -> None:
    container = name()
    if inspect(container, "{{.Id}}") is not None:
        run("docker", "rm", "--force", container)
        log(f"removed {container}")
    if volumes:
        subprocess.run(["docker", "volume", "rm", f"{container}-data"], capture_output=True)


def hosts_toml() -> str:
    return f'[host."http://{name()}:{CONTAINER_PORT}"]\n'


def local_registry_hosting() -> str:
    """KEP-1755's ConfigMap, as kind's documentation writes it."""
    return (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
        "  name: local-registry-hosting\n  namespace: kube-public\ndata:\n"
        "  localRegistryHosting.v1: |\n"
        f'    host: "{host()}"\n'
        '    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"\n'
    )


def wire_kind(cluster: str, context: str) -> None:
    container = name()
    network = os.environ.get("KIND_EXPERIMENTAL_DOCKER_NETWORK") or "kind"
    joined = json.loads(inspect(container, "{{json .NetworkSettings.Networks}}") or "{}")
    if network not in joined:
        run("docker", "network", "connect", network, container)
        log(f"{container} joined the {network} network")
    nodes = run("kind", "get", "nodes", "--name", cluster).split()
    if not nodes:
        raise RegistryError(f"kind cluster {cluster} has no nodes")
    directory = f"{HOSTS_DIR}/{host()}"
    for node in nodes:
        run("docker", "exec", node, "mkdir", "-p", directory)
        run("docker", "exec", "-i", node, "cp", "/dev/stdin", f"{directory}/hosts.toml",
            stdin=hosts_toml())  # fmt: skip
    log(
        f"{len(nodes)} node(s) of {cluster} pull {host()}/... from http://{container}:{CONTAINER_PORT}"
    )
    run("kubectl", "--context", context, "apply", "-f", "-", stdin=local_registry_hosting())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="registry.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up")
    down_parser = commands.add_parser("down")
    down_parser.add_argument("--volumes", action="store_true", help="remove its data too")
    kind_parser = commands.add_parser("kind")
    kind_parser.add_argument("cluster")
    kind_parser.add_argument("context")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            print(up())
        elif args.command == "down":
            down(args.volumes)
        else:
            wire_kind(args.cluster, args.context)
    except RegistryError as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
