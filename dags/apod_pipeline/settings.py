"""Deployment settings, read from the environment when a DAG is parsed or a run starts.

Only names and locations live here (image tag, volumes, network, API URL); secrets are
never read at parse time (see apod_pipeline.secrets). Standard library only: the
by-hand runner (`make steps`) reads the same settings with a plain python3.

The image tag's default is the project version. The repository's VERSION file is its
only copy: a checkout (tests, `airflow dags test`, `make steps`) reads it from there,
and the Airflow image, which carries dags/ but not VERSION, sets APOD_IMAGE_TAG.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

VERSION_FILE = Path(__file__).resolve().parents[2] / "VERSION"


def checkout_version(path: Path = VERSION_FILE) -> str:
    """The project version of the checkout this package lies in."""
    try:
        version = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise LookupError(
            f"APOD_IMAGE_TAG is not set and {path} does not exist: set APOD_IMAGE_TAG "
            "(the Airflow image does) or use dags/ from a checkout of the repository"
        ) from None
    if not version:
        raise LookupError(f"{path} is empty")
    return version


@dataclass(frozen=True)
class Settings:
    """Field name -> environment variable in ENV_NAMES; the defaults are the interface's."""

    image_tag: str = field(default_factory=checkout_version)
    api_url: str = "https://api.nasa.gov/planetary/apod"
    docker_url: str = "unix://var/run/docker.sock"
    docker_network: str = "apod-net"
    data_volume: str = "apod-data"
    dvc_volume: str = "apod-dvc-remote"
    k8s_namespace: str = "apod"
    # Chunks extract fetches at once (`--concurrency`); None: extract's own default.
    extract_concurrency: int | None = None
    # Where version pushes the data: the DVC remote volume's path (DVC_REMOTE in steps),
    # or a URL: s3://apod-dvc/apod, the stack's object store (compose and Kubernetes).
    dvc_remote: str = "/dvc-remote"
    # The S3 endpoint of an s3:// dvc_remote, as the step containers reach it.
    s3_endpoint: str | None = None
    # A scheduled run still unfinished this long after its data interval ended alerts
    # (apod_pipeline.alerts); a duration such as 6h, 90m, 45s or 1d.
    alert_late_after: timedelta = timedelta(hours=6)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Each setting from its variable; unset or empty keeps the default."""
        values = {}
        for name, var in ENV_NAMES.items():
            if environ.get(var):
                values[name] = PARSERS.get(name, _text)(var, environ[var])
        return cls(**values)

    def image(self, name: str) -> str:
        return f"apod-{name}:{self.image_tag}"


def _text(var: str, text: str) -> str:
    return text


def _positive_int(var: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{var} must be a whole number of at least 1, not {text!r}")
    return value


_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _duration(var: str, text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"{var} must be a whole number with a unit s, m, h or d (6h, 90m), not {text!r}"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


ENV_NAMES = {
    "image_tag": "APOD_IMAGE_TAG",
    "api_url": "APOD_API_URL",
    "docker_url": "APOD_DOCKER_URL",
    "docker_network": "APOD_DOCKER_NETWORK",
    "data_volume": "APOD_DATA_VOLUME",
    "dvc_volume": "APOD_DVC_VOLUME",
    "k8s_namespace": "APOD_K8S_NAMESPACE",
    "extract_concurrency": "APOD_EXTRACT_CONCURRENCY",
    "dvc_remote": "APOD_DVC_REMOTE",
    "s3_endpoint": "APOD_S3_ENDPOINT",
    "alert_late_after": "APOD_ALERT_LATE_AFTER",
}
# Settings that are not strings: (variable, text) -> value, or ValueError naming the variable.
PARSERS: dict[str, Callable[[str, str], object]] = {
    "extract_concurrency": _positive_int,
    "alert_late_after": _duration,
}
