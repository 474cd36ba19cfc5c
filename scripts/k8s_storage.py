"""How the steps' shared volume apod-data is provided on an overlay: what
scripts/k8s_overlay.py adds to the kustomization it generates (standard library only).

Only the `multinode` overlay reads APOD_DATA_STORAGE_CLASS. As committed it is for
ReadWriteOnce storage: a holder pod keeps apod-data on its node and the pods that mount
it are held there (k8s/overlays/multinode). With APOD_DATA_STORAGE_CLASS set, the claim
becomes ReadWriteMany on that StorageClass, and the holder and its rule are left out:
every pod mounts the volume wherever it runs. kind and minikube run one node, on which a
ReadWriteOnce claim is mounted by every pod: the setting does not apply to them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

STORAGE_CLASS_ENV = "APOD_DATA_STORAGE_CLASS"
MULTINODE = "multinode"
DATA_CLAIM = "apod-data"
HOLDER = "apod-data-holder"  # k8s/overlays/multinode/data-holder.yaml
HOLDER_SETTING = "APOD_K8S_DATA_HOLDER"  # read by the DAG (apod_pipeline.settings)
# A StorageClass name is a DNS subdomain (RFC 1123).
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass(frozen=True)
class DataVolume:
    """What the generated kustomization adds: strategic-merge patches (JSON, one per
    line) and literals merged into the ConfigMap apod-airflow-config."""

    patches: tuple[str, ...] = ()
    config: dict[str, str] = field(default_factory=dict)


def storage_class(environ: Mapping[str, str] = os.environ) -> str | None:
    name = environ.get(STORAGE_CLASS_ENV, "").strip()
    if not name:
        return None
    if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        raise ValueError(f"{STORAGE_CLASS_ENV}={name!r} is not a StorageClass name")
    return name


def data_volume(overlay: str, environ: Mapping[str, str] = os.environ) -> DataVolume:
    """The additions for `overlay`: none but on `multinode` with a ReadWriteMany class."""
    name = storage_class(environ) if overlay == MULTINODE else None
    if name is None:
        return DataVolume()
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": DATA_CLAIM},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": name},
    }
    holder = {
        "$patch": "delete",
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": HOLDER},
    }
    # Empty: the DAG's pods carry no rule (apod_pipeline.settings reads it as unset).
    return DataVolume(patches=(json.dumps(claim), json.dumps(holder)), config={HOLDER_SETTING: ""})
