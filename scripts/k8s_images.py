#!/usr/bin/env python3
"""The images a cluster runs, tagged by their content (standard library only).

    k8s_images.py list                the local images the cluster runs, one per line
    k8s_images.py tag                 give each a content tag, print what to load

A kubelet starts a container from the image its tag names, and `IfNotPresent` never looks
again: an image rebuilt under the same tag would leave the Airflow pods where they are
and the DAG's step pods on whatever the node had. So each build gets tags of its own,
derived from the image IDs: `apod-<name>:<VERSION>-k8s.<12 hex>` for the project's
images (one tag for all of them: the DAG names its step images by one APOD_IMAGE_TAG),
`apod-postgres:<PG_MAJOR>-k8s.<12 hex>` for Postgres. The same build always gets the same
tags, so re-running the up script without a rebuild changes nothing in the cluster;
any rebuild changes the tag, the image names in the pod templates and APOD_IMAGE_TAG in
the ConfigMap, so the Deployments roll and the next DAG run starts the new step images.

`tag` runs `docker tag` for each, removes the content tags of earlier builds from the
local engine (a cluster keeps what was loaded into it), and prints:

    tag <VERSION>-k8s.<hex>              for scripts/k8s_overlay.py --tag
    postgres-tag <PG_MAJOR>-k8s.<hex>    for scripts/k8s_overlay.py --postgres-tag
    image apod-<name>:<tag>              one line per image to load into the cluster

APOD_K8S_BUILD_TAG names the local images to deploy (default: VERSION, what
scripts/build-images.sh tags them with). Exit codes: 0 done, 1 an image is missing or
docker failed, 2 usage.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "dags"))

from apod_pipeline.settings import Settings  # noqa: E402
from apod_pipeline.steps import steps  # noqa: E402

MARK = "k8s"  # in every tag made here, so that only those are ever removed
HEX_LENGTH = 12


class DockerError(Exception):
    pass


def version() -> str:
    return (REPO / "VERSION").read_text(encoding="utf-8").strip()


def postgres_major() -> str:
    return (REPO / "images" / "postgres" / "PG_MAJOR").read_text(encoding="utf-8").strip()


def project_images() -> tuple[str, ...]:
    """The step images the DAG launches (its one definition), Airflow's and the object
    store's (the DVC remote of the version pods)."""
    names = dict.fromkeys(step.image for step in steps(Settings(image_tag="-")))
    return (*names, "airflow", "objectstore")


def sources(build_tag: str) -> dict[str, str]:
    """Local image -> its group: the project's (tagged VERSION), or Postgres'."""
    images = {f"apod-{name}:{build_tag}": "project" for name in project_images()}
    images[f"apod-postgres:{postgres_major()}"] = "postgres"
    return images


def docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DockerError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def image_id(image: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", image).strip()


def content_tag(base: str, ids: Mapping[str, str]) -> str:
    """`<base>-k8s.<hex>`: the hex of the images' names and IDs, in a fixed order."""
    text = "".join(f"{name.rpartition(':')[0]}={ids[name]}\n" for name in sorted(ids))
    return f"{base}-{MARK}.{hashlib.sha256(text.encode()).hexdigest()[:HEX_LENGTH]}"


def is_content_tag(tag: str, base: str) -> bool:
    return re.fullmatch(rf"{re.escape(base)}-{MARK}\.[0-9a-f]{{{HEX_LENGTH}}}", tag) is not None


def plan(build_tag: str) -> dict[str, str]:
    """Local image -> the content-tagged name it is loaded under."""
    images = sources(build_tag)
    ids = {image: image_id(image) for image in images}
    bases = {"project": version(), "postgres": postgres_major()}
    tags = {
        group: content_tag(base, {i: ids[i] for i, g in images.items() if g == group})
        for group, base in bases.items()
    }
    return {image: f"{image.rpartition(':')[0]}:{tags[images[image]]}" for image in images}


def remove_older(current: Mapping[str, str]) -> list[str]:
    """Untag the content tags of earlier builds; returns what was untagged."""
    removed = []
    for target in current.values():
        repository, _, tag = target.rpartition(":")
        base = tag.rpartition(f"-{MARK}.")[0]
        listing = docker("image", "ls", "--format", "{{.Tag}}", repository).split()
        for old in listing:
            if old != tag and is_content_tag(old, base):
                # An image still used by a container keeps its tag; nothing is forced.
                subprocess.run(
                    ["docker", "image", "rm", f"{repository}:{old}"],
                    capture_output=True,
                    check=False,
                )
                removed.append(f"{repository}:{old}")
    return removed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="k8s_images.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("list", "tag"))
    args = parser.parse_args(argv)
    build_tag = os.environ.get("APOD_K8S_BUILD_TAG") or version()
    if args.command == "list":
        print("\n".join(sources(build_tag)))
        return 0
    try:
        targets = plan(build_tag)
        for source, target in targets.items():
            docker("tag", source, target)
        remove_older(targets)
    except DockerError as exc:
        print(f"k8s_images: {exc}", file=sys.stderr)
        return 1
    project = next(t for s, t in targets.items() if not s.startswith("apod-postgres:"))
    print(f"tag {project.rpartition(':')[2]}")
    print(f"postgres-tag {targets[f'apod-postgres:{postgres_major()}'].rpartition(':')[2]}")
    for target in targets.values():
        print(f"image {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
