#!/usr/bin/env python3
"""An overlay of k8s/overlays with the images named: a generated kustomization whose
only resource is the overlay, whose `images:` transformer names what the manifests run,
and which tells the DAG how to name what it launches (standard library only).

    k8s_overlay.py OVERLAY DIR [--tags NAME=TAG,...] [--registry R] [--pull-secret S]
                                    write DIR/kustomization.yaml for k8s/overlays/OVERLAY

The committed manifests name their images without a registry or tag (`image: apod-airflow`),
so both are written in one place each:
  - tags: --tags, each image its own (scripts/k8s_images.py prints them, from the content
    of each image's build inputs); an image not named keeps /VERSION, apod-postgres the
    PostgreSQL major of images/postgres/PG_MAJOR (`make k8s-render`, the tests);
  - registry: --registry, default APOD_IMAGE_REGISTRY (e.g. registry.example.com/apod):
    every image becomes <registry>/apod-<name>; empty keeps the local names apod-<name>;
  - pull secret: --pull-secret, default APOD_IMAGE_PULL_SECRET: every pod template and
    every ServiceAccount of the overlay gets it as imagePullSecrets.
The step images (apod-extract, -transform, -load, -version) are named by the DAG, not by
the manifests: it reads APOD_IMAGE_TAGS, APOD_IMAGE_REGISTRY and APOD_IMAGE_PULL_SECRET
(dags/apod_pipeline/settings.py), merged here into the ConfigMap apod-airflow-config.

A rebuild changes the tags of the images whose inputs changed, and with them those pod
templates and the ConfigMap's name (kustomize hashes its content into it), so exactly the
workloads that run a changed image roll (and the Airflow ones when a step image changed:
they read its tag from the ConfigMap).

On the `multinode` overlay, APOD_DATA_STORAGE_CLASS (a ReadWriteMany StorageClass) makes
the steps' claim apod-data ReadWriteMany on it (scripts/k8s_storage.py).

Build or apply DIR like any kustomization: `kubectl kustomize DIR`, `kubectl apply -k DIR`.
Exit codes: 0 written, 2 usage or an unknown overlay.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import k8s_images
from k8s_storage import data_volume

REPO = Path(__file__).resolve().parents[1]
OVERLAYS_DIR = REPO / "k8s" / "overlays"


def version() -> str:
    return (REPO / "VERSION").read_text(encoding="utf-8").strip()


def postgres_major() -> str:
    return (REPO / "images" / "postgres" / "PG_MAJOR").read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class ImageNaming:
    """How the cluster names its images: each one's tag, the registry, the pull secret."""

    tags: dict[str, str] = field(default_factory=dict)  # image folder -> tag
    registry: str = ""
    pull_secret: str = ""

    def tag(self, name: str) -> str:
        default = postgres_major() if name == "postgres" else version()
        return self.tags.get(name, default)

    def new_name(self, name: str) -> str:
        return f"{self.registry}/apod-{name}" if self.registry else f"apod-{name}"

    def dag_settings(self) -> list[str]:
        """The ConfigMap's settings for the DAG's pods (dags/apod_pipeline/settings.py)."""
        tags = ",".join(f"{name}={self.tag(name)}" for name in k8s_images.step_images())
        out = [f"APOD_IMAGE_TAGS={tags}"]
        if self.registry:
            out.append(f"APOD_IMAGE_REGISTRY={self.registry}")
        if self.pull_secret:
            out.append(f"APOD_IMAGE_PULL_SECRET={self.pull_secret}")
        return out


# Where each kind keeps its pod spec: the pull secret goes beside the containers. A
# target that the overlay does not have is skipped by kustomize.
POD_SPECS = {
    "Deployment": "/spec/template/spec",
    "StatefulSet": "/spec/template/spec",
    "DaemonSet": "/spec/template/spec",
    "ReplicaSet": "/spec/template/spec",
    "Job": "/spec/template/spec",
    "CronJob": "/spec/jobTemplate/spec/template/spec",
    "Pod": "/spec",
    "ServiceAccount": "",
}


def pull_secret_patches(secret: str) -> list[str]:
    """JSON patches putting `secret` on every pod template and every ServiceAccount."""
    value = json.dumps([{"name": secret}])
    return [
        "\n".join(
            [
                "  - target:",
                f"      kind: {kind}",
                "    patch: |-",
                "      - op: add",
                f"        path: {path}/imagePullSecrets",
                f"        value: {value}",
            ]
        )
        for kind, path in POD_SPECS.items()
    ]


def kustomization(overlay: str, target: Path, naming: ImageNaming) -> str:
    """The kustomization text for target/, which refers to the overlay by relative path
    (kustomize accepts no absolute one)."""
    source = OVERLAYS_DIR / overlay
    if not (source / "kustomization.yaml").is_file():
        raise ValueError(f"no overlay {overlay!r} in {OVERLAYS_DIR}")
    resource = os.path.relpath(source, target.resolve())
    # JSON strings are YAML strings: a tag such as 15 or 1.0 stays a string.
    images = []
    for name in k8s_images.cluster_images():
        entry = f"  - name: apod-{name}\n"
        if naming.registry:
            entry += f"    newName: {json.dumps(naming.new_name(name))}\n"
        images.append(entry + f"    newTag: {json.dumps(naming.tag(name))}")
    lines = [
        "# Generated by scripts/k8s_overlay.py; do not edit, do not commit.",
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        "resources:",
        f"  - {json.dumps(resource)}",
        "images:",
        *images,
        "configMapGenerator:",
        "  - name: apod-airflow-config",
        "    behavior: merge",
        "    literals:",
        *(f"      - {json.dumps(setting)}" for setting in naming.dag_settings()),
    ]
    # How apod-data is provided: on multinode, ReadWriteMany when APOD_DATA_STORAGE_CLASS
    # names a class (scripts/k8s_storage.py).
    data = data_volume(overlay)
    lines += [f"      - {json.dumps(f'{name}={value}')}" for name, value in data.config.items()]
    patches = [f"  - patch: {json.dumps(patch)}" for patch in data.patches]
    if naming.pull_secret:
        patches += pull_secret_patches(naming.pull_secret)
    if patches:
        lines += ["patches:", *patches]
    return "\n".join(lines) + "\n"


def naming_from(
    tags: dict[str, str] | None = None,
    registry: str | None = None,
    pull_secret: str | None = None,
) -> ImageNaming:
    """The naming, each part given or else from APOD_IMAGE_REGISTRY / _PULL_SECRET."""
    if registry is None:
        registry = os.environ.get("APOD_IMAGE_REGISTRY", "")
    if pull_secret is None:
        pull_secret = os.environ.get("APOD_IMAGE_PULL_SECRET", "")
    unknown = set(tags or {}) - set(k8s_images.cluster_images())
    if unknown:
        raise ValueError(f"no such image the cluster runs: {', '.join(sorted(unknown))}")
    return ImageNaming(dict(tags or {}), registry.strip().rstrip("/"), pull_secret.strip())


def write(overlay: str, target: Path, naming: ImageNaming | None = None) -> Path:
    """Write target/kustomization.yaml; returns its path."""
    target.mkdir(parents=True, exist_ok=True)
    path = target / "kustomization.yaml"
    path.write_text(kustomization(overlay, target, naming or naming_from()), encoding="utf-8")
    return path


def parse_tags(text: str) -> dict[str, str]:
    tags = {}
    for item in filter(None, text.split(",")):
        name, sep, tag = item.partition("=")
        if not sep or not name or not tag:
            raise ValueError(f"--tags takes NAME=TAG,...: not {item!r}")
        tags[name] = tag
    return tags


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overlay", help="a directory of k8s/overlays (kind, minikube)")
    parser.add_argument("dir", type=Path, help="where kustomization.yaml is written")
    parser.add_argument("--tags", default="", help="NAME=TAG,... (default: VERSION, PG major)")
    parser.add_argument("--registry", help="default: APOD_IMAGE_REGISTRY")
    parser.add_argument("--pull-secret", help="default: APOD_IMAGE_PULL_SECRET")
    args = parser.parse_args(argv)
    try:
        naming = naming_from(parse_tags(args.tags), args.registry, args.pull_secret)
        write(args.overlay, args.dir, naming)
    except (OSError, ValueError) as exc:
        print(f"k8s_overlay: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
