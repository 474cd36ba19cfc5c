"""The project's registry image (images/registry) as `make registry` runs it: the test
session's registry, inspected. Non-root, healthy by its own healthcheck, data on a volume,
published on 127.0.0.1 only, labelled like every image of the project; a second `up` reuses
it. (Pushing to and pulling from it: test_k8s_pod_contract.py, test_k8s_up_scripts.py.)"""

from __future__ import annotations

import json

import pytest
from support.registry import Registry, registry_script
from support.services import VERSION, docker

pytestmark = [pytest.mark.k8s, pytest.mark.docker]


def inspect(what: str) -> dict:
    return json.loads(docker("inspect", what).stdout)[0]


def test_the_registry_runs_as_make_registry_runs_it(registry: Registry):
    container = inspect(registry.name)
    image = inspect(f"apod-registry:{VERSION}")
    assert image["Config"]["User"] == "10001:0"
    assert image["Config"]["Healthcheck"]["Test"] == ["CMD", "registry-healthcheck"]
    assert image["Config"]["Volumes"] == {"/var/lib/registry": {}}
    labels = image["Config"]["Labels"]
    assert labels["org.opencontainers.image.title"] == "apod-registry"
    assert "Distribution" in labels["org.opencontainers.image.description"]
    assert labels["apod.pipeline.content-tag"].startswith(f"{VERSION}-k8s.")

    assert container["State"]["Health"]["Status"] == "healthy"
    assert container["HostConfig"]["PortBindings"] == {
        "5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(registry.port)}]
    }
    (mount,) = container["Mounts"]
    assert (mount["Type"], mount["Name"], mount["Destination"]) == (
        "volume", f"{registry.name}-data", "/var/lib/registry",
    )  # fmt: skip
    users = docker("top", registry.name, "-o", "uid,pid").stdout.splitlines()[1:]
    assert users
    assert all(line.split()[0] == "10001" for line in users), users

    again = registry_script(registry, "up")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == registry.host
    assert inspect(registry.name)["Id"] == container["Id"]  # reused, not replaced
