"""The project's registry image (images/registry) run for the tests, the way `make registry`
runs it (scripts/registry.py), under a name, port and volume of its own; removed after with
every local tag that names it (those are the tests' own: the port is theirs)."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from support.services import REPO, docker, require_images


@dataclass(frozen=True)
class Registry:
    name: str  # the container, as kind's nodes reach it on the kind network
    port: int  # published on 127.0.0.1

    @property
    def host(self) -> str:
        """How this machine's Docker (and kind's nodes, through hosts.toml) name it."""
        return f"localhost:{self.port}"

    def env(self) -> dict[str, str]:
        """What scripts/registry.py (make registry, kind-up) reads to use this one."""
        return {"APOD_REGISTRY_NAME": self.name, "APOD_REGISTRY_PORT": str(self.port)}

    def has(self, reference: str) -> bool:
        """Whether the registry serves a manifest for `host/repository:tag`."""
        import urllib.error
        import urllib.request

        _, _, rest = reference.partition("/")
        repository, _, tag = rest.rpartition(":")
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v2/{repository}/manifests/{tag}",
            method="HEAD",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - local
                return answer.status == 200
        except urllib.error.HTTPError:
            return False

    def local_tags(self) -> list[str]:
        """Local tags that name this registry: pushed or pulled by the tests."""
        listing = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        prefixes = (f"localhost:{self.port}/", f"127.0.0.1:{self.port}/")
        return [tag for tag in listing if tag.startswith(prefixes)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def registry_script(registry: Registry, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "registry.py"), *argv],
        env={**os.environ, **registry.env()},
        capture_output=True,
        text=True,
        check=False,
    )


@contextlib.contextmanager
def project_registry() -> Iterator[Registry]:
    require_images("registry")
    registry = Registry(name=f"hk8s-registry-{secrets.token_hex(3)}", port=free_port())
    try:
        started = registry_script(registry, "up")
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == registry.host
        yield registry
    finally:
        for tag in registry.local_tags():
            docker("image", "rm", tag, check=False)
        registry_script(registry, "down", "--volumes")
