#!/usr/bin/env python3
"""The images a cluster runs, under their content tags, loaded or pushed (standard
library only).

    k8s_images.py list     the local images the cluster runs (apod-<name>:<build tag>)
    k8s_images.py tags     `<name> <content tag>` for each, from the sources (nothing built)
    k8s_images.py tag      tag each local image apod-<name>:<content tag>: what to load into
                           a cluster that has no registry (minikube image load)
    k8s_images.py push     tag each <APOD_IMAGE_REGISTRY>/apod-<name>:<content tag> and push
                           it there (make k8s-push); builds first what is missing

The images: the step images the DAG launches (dags/apod_pipeline/steps.py, their one
definition), Airflow's, the object store's, and Postgres'. Each has its own content tag
(apod_build.content_tags: from its build inputs), so a rebuild changes the name of exactly
the images whose inputs changed, and with `IfNotPresent` a node never keeps running an old
image under a reused name.

A local image counts only when it was built from the sources as they are: its label
(content_tags.LABEL_KEY, set by the builder, tools/apod_build) must be its content tag.
`push` builds the ones that are missing or stale, unless
APOD_K8S_SKIP_BUILD=1; `tag` never builds. Both print

    tags <name>=<tag>,...            every image's tag, for scripts/k8s_overlay.py --tags
    image <reference>                one line per image, as the cluster names it

`tag` removes the content tags of earlier builds from the local engine (a cluster keeps
what was loaded into it); `push` removes the registry-named local tags it made once they
are pushed (the registry keeps the images).

Settings: APOD_IMAGE_REGISTRY (push: where to, e.g. registry.example.com/apod; required),
APOD_K8S_BUILD_TAG (the local images' build tag, default VERSION, as the builder tags
them: images/build.toml), APOD_LOCAL_POSTGRES (the local Postgres image, as there),
APOD_K8S_SKIP_BUILD=1. Exit codes: 0 done, 1 an image is missing or stale, or
docker failed, 2 usage.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Until the tooling is an installed package (issue 23): the DAGs' settings, the builder.
sys.path[:0] = [str(REPO / "dags"), str(REPO / "tools")]

from apod_build import cli as build_cli  # noqa: E402
from apod_build import content_tags  # noqa: E402
from apod_build.content_tags import MARK, is_content_tag  # noqa: E402
from apod_build.graph import Graph  # noqa: E402
from apod_pipeline.settings import Settings, image_reference  # noqa: E402
from apod_pipeline.steps import steps  # noqa: E402


class DockerError(Exception):
    pass


def version() -> str:
    return Graph.load(REPO).files["VERSION"]


def step_images() -> tuple[str, ...]:
    """The images the DAG launches, by folder name (steps.py, their one definition)."""
    return tuple(dict.fromkeys(step.image for step in steps(Settings(image_tag="-"))))


def project_images() -> tuple[str, ...]:
    """The step images, Airflow's and the object store's (the DVC remote of the version
    pods): the cluster's images tagged with the project version."""
    return (*step_images(), "airflow", "objectstore")


def cluster_images() -> tuple[str, ...]:
    """Every image the cluster runs, by folder name."""
    return (*project_images(), "postgres")


def sources(build: str, names: tuple[str, ...] | None = None) -> dict[str, str]:
    """Local image the cluster runs (or of `names`) -> its folder name: as the builder tags
    it (images/build.toml), with `build` for VERSION."""
    chosen = cluster_images() if names is None else names
    graph = Graph.load(REPO)
    return {graph.tag(name, VERSION=build): name for name in chosen}


def docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DockerError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def built_tag(image: str) -> str | None:
    """The content tag a local image was built for (its label); None when it is missing."""
    result = subprocess.run(
        ["docker", "image", "inspect", "--format",
         f'{{{{ index .Config.Labels "{content_tags.LABEL_KEY}" }}}}', image],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.stdout.strip() if result.returncode == 0 else None


def stale(build: str, tags: Mapping[str, str]) -> dict[str, str]:
    """Folder name -> why its local image cannot be deployed under its content tag."""
    out = {}
    for image, name in sources(build, tuple(n for n in cluster_images() if n in tags)).items():
        found = built_tag(image)
        if found is None:
            out[name] = f"{image} is missing"
        elif found != tags[name]:
            out[name] = f"{image} was built from other sources ({found or 'no content tag'})"
    return out


def ensure_built(build: str, tags: Mapping[str, str], may_build: bool) -> None:
    """Every local image built from the sources as they are, building the others."""
    missing = stale(build, tags)
    if missing and may_build:
        print(f"k8s_images: building {' '.join(missing)}", file=sys.stderr)
        build_images(build, tuple(missing))
        missing = stale(build, tags)
    if missing:
        reasons = "; ".join(missing.values())
        raise DockerError(f"{reasons}: rebuild (make images) before deploying")


def build_images(build: str, names: tuple[str, ...]) -> None:
    """Build these images (and what they build FROM) as the builder tags them."""
    # The builder tags with VERSION; another build tag is the caller's to make.
    if build != version():
        raise DockerError(f"cannot build under APOD_K8S_BUILD_TAG={build}: build it first")
    if build_cli.main(list(names)) != 0:
        raise DockerError(f"building {' '.join(names)} failed (python3 -m apod_build)")


def targets(registry: str, tags: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """Folder name -> the reference the cluster runs it as."""
    return {name: image_reference(registry, name, tags[name]) for name in names}


def remove_older(current: Mapping[str, str]) -> list[str]:
    """Untag the local content tags of earlier builds; returns what was untagged."""
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


def publish(
    build: str,
    registry: str,
    *,
    push: bool,
    may_build: bool,
    names: tuple[str, ...] | None = None,
) -> dict[str, str]:
    """Tag (and push) every image the cluster runs, or those of `names`; returns folder
    name -> reference."""
    names = cluster_images() if names is None else names
    tags = {n: t for n, t in content_tags.content_tags(REPO, names).items() if n in names}
    ensure_built(build, tags, may_build)
    made = targets(registry, tags, names)
    for image, name in sources(build, names).items():
        docker("tag", image, made[name])
    if not push:
        remove_older(made)
        return made
    for reference in made.values():
        print(f"k8s_images: pushing {reference}", file=sys.stderr)
        try:
            docker("push", reference)
        finally:
            # The registry keeps it; the local engine keeps the image under its build tag.
            subprocess.run(["docker", "image", "rm", reference], capture_output=True, check=False)
    return made


def tags_line(made: Mapping[str, str]) -> str:
    return "tags " + ",".join(f"{name}={ref.rpartition(':')[2]}" for name, ref in made.items())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="k8s_images.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("list", "tags", "tag", "push"))
    args = parser.parse_args(argv)
    build = os.environ.get("APOD_K8S_BUILD_TAG") or version()
    registry = os.environ.get("APOD_IMAGE_REGISTRY", "").strip().rstrip("/")
    if args.command == "list":
        print("\n".join(sources(build)))
        return 0
    try:
        if args.command == "tags":
            tags = content_tags.content_tags(REPO, cluster_images())
            for name in cluster_images():
                print(f"{name} {tags[name]}")
            return 0
        if args.command == "push" and not registry:
            print("k8s_images: push needs APOD_IMAGE_REGISTRY (e.g. localhost:5001/apod)",
                  file=sys.stderr)  # fmt: skip
            return 2
        made = publish(
            build,
            registry if args.command == "push" else "",
            push=args.command == "push",
            may_build=args.command == "push" and os.environ.get("APOD_K8S_SKIP_BUILD") != "1",
        )
    except (DockerError, content_tags.InputError) as exc:
        print(f"k8s_images: {exc}", file=sys.stderr)
        return 1
    print(tags_line(made))
    for reference in made.values():
        print(f"image {reference}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
