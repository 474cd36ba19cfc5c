"""Deployment settings, read from the environment when a DAG is parsed or a run starts.

Only names and locations live here (image tag, volumes, network, API URL); secrets are
never read at parse time (see apod_pipeline.secrets). Standard library only: the
by-hand runner (`make steps`) reads the same settings with a plain python3.

The image tag's default is the project version. The repository's VERSION file is its
only copy: a checkout (tests, `airflow dags test`, `make steps`) reads it from there,
and the Airflow image, which carries dags/ but not VERSION, sets APOD_IMAGE_TAG.

A cluster names its images otherwise (k8s/README.md, "Image tags"): APOD_IMAGE_TAGS gives
each step image its own content tag (`extract=<tag>,load=<tag>,...`; an image it does not
name keeps APOD_IMAGE_TAG), APOD_IMAGE_REGISTRY the registry they are pulled from
(`registry.example.com/apod`; empty: the local names `apod-<name>:<tag>`), and
APOD_IMAGE_PULL_SECRET the Secret the pods pull with. scripts/k8s_overlay.py writes all
three into the cluster's ConfigMap.
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
    # Where the images come from, and each image's own tag (see the module's docstring).
    image_registry: str = ""
    image_tags: tuple[tuple[str, str], ...] = ()
    image_pull_secret: str | None = None
    # --- the step pods' life on Kubernetes (k8s/README.md, "Step pods") ---------------
    # Seconds a step pod may take to be scheduled, and again to start once scheduled
    # (an image pull on a real cluster included), before its task gives up; a pod that
    # never started is then deleted, so it cannot start late beside the retry's.
    k8s_pod_start_timeout: int = 600
    # Failed step pods kept for `kubectl describe`/`logs`; older ones are deleted.
    k8s_failed_pods_kept: int = 10
    # The `app.kubernetes.io/name` of the pod that holds apod-data on its node (the
    # multinode overlay on ReadWriteOnce storage): the pods that mount the data volume
    # are scheduled beside it (apod_pipeline.placement). None: one node, or RWX storage.
    k8s_data_holder: str | None = None
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
        tag = dict(self.image_tags).get(name, self.image_tag)
        return image_reference(self.image_registry, name, tag)


def image_reference(registry: str, name: str, tag: str) -> str:
    """`apod-<name>:<tag>`, under `registry` when there is one: the one naming rule of
    the images, for the DAGs and scripts/k8s_images.py alike."""
    return f"{registry.rstrip('/')}/apod-{name}:{tag}" if registry else f"apod-{name}:{tag}"


def _text(var: str, text: str) -> str:
    return text


def _whole_number(var: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{var} must be a whole number (0 or more), not {text!r}")
    return value


def _positive_int(var: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{var} must be a whole number of at least 1, not {text!r}")
    return value


# Docker's grammar: a tag, an image folder's name, a registry host[:port] with a path.
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_NAME = re.compile(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*")
_REGISTRY = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9]+(?:[-_./][a-z0-9]+)*)*")


def _image_tags(var: str, text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in text.split(","):
        name, sep, tag = item.strip().partition("=")
        if not (sep and _NAME.fullmatch(name) and _TAG.fullmatch(tag)):
            raise ValueError(
                f"{var} must be a list of image=tag (e.g. extract=1.0,load=1.0), not {text!r}"
            )
        pairs.append((name, tag))
    return tuple(pairs)


def _registry(var: str, text: str) -> str:
    value = text.strip().rstrip("/")
    if not _REGISTRY.fullmatch(value):
        raise ValueError(f"{var} must be a registry host[:port][/path], not {text!r}")
    return value


_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _duration(var: str, text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"{var} must be a whole number with a unit s, m, h or d (the default: 6h), not {text!r}"
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
    "image_registry": "APOD_IMAGE_REGISTRY",
    "image_tags": "APOD_IMAGE_TAGS",
    "image_pull_secret": "APOD_IMAGE_PULL_SECRET",
    "k8s_pod_start_timeout": "APOD_K8S_POD_START_TIMEOUT",
    "k8s_failed_pods_kept": "APOD_K8S_FAILED_PODS_KEPT",
    "k8s_data_holder": "APOD_K8S_DATA_HOLDER",
    "alert_late_after": "APOD_ALERT_LATE_AFTER",
}
# Settings that are not strings: (variable, text) -> value, or ValueError naming the variable.
PARSERS: dict[str, Callable[[str, str], object]] = {
    "extract_concurrency": _positive_int,
    "image_registry": _registry,
    "image_tags": _image_tags,
    "k8s_pod_start_timeout": _positive_int,
    "k8s_failed_pods_kept": _whole_number,
    "alert_late_after": _duration,
}
