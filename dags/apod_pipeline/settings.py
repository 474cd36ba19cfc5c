"""Deployment settings the DAGs read from the environment when they are parsed.

Only names and locations live here (image tag, volumes, network, API URL); secrets are
never read at parse time (see apod_pipeline.secrets).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# Equal to `version` in pyproject.toml (a DAG test checks it): `make images` tags the
# step images apod-<step>:<version>.
DEFAULT_IMAGE_TAG = "0.1.0"


@dataclass(frozen=True)
class Settings:
    """Field name -> environment variable in ENV_NAMES; the defaults are the interface's."""

    image_tag: str = DEFAULT_IMAGE_TAG
    api_url: str = "https://api.nasa.gov/planetary/apod"
    docker_url: str = "unix://var/run/docker.sock"
    docker_network: str = "apod-net"
    data_volume: str = "apod-data"
    dvc_volume: str = "apod-dvc-remote"
    k8s_namespace: str = "apod"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Each setting from its variable; unset or empty keeps the default."""
        return cls(**{name: environ[var] for name, var in ENV_NAMES.items() if environ.get(var)})

    def image(self, name: str) -> str:
        return f"apod-{name}:{self.image_tag}"


ENV_NAMES = {
    "image_tag": "APOD_IMAGE_TAG",
    "api_url": "APOD_API_URL",
    "docker_url": "APOD_DOCKER_URL",
    "docker_network": "APOD_DOCKER_NETWORK",
    "data_volume": "APOD_DATA_VOLUME",
    "dvc_volume": "APOD_DVC_VOLUME",
    "k8s_namespace": "APOD_K8S_NAMESPACE",
}
