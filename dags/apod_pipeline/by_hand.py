"""Render the steps as `docker run` commands: the pipeline by hand, without Airflow.

`make steps` (scripts/run-steps.py), the bench and the tests run the steps through this
renderer, so a run by hand runs what the DAGs run: the same images, arguments and
environment, the same volumes at the same paths. Standard library only.

Every variable travels by name (`-e NAME`); the docker CLI takes the value from its own
environment (`DockerRun.environment`), so no value, secret or not, is on a command line.
A secret's variable whose name ends in FILE (`NASA_API_KEY_FILE`, `PGPASSFILE`) names a
host file: that file is mounted read-only under /run/secrets and the variable points there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from apod_pipeline.settings import Settings
from apod_pipeline.steps import DATA, Checkout, RunValue, Step, Volume

SECRET_FILES = "/run/secrets"  # noqa: S105 - a directory, not a value
# A run by hand without APOD_RUN_ID: the steps' own default, repeated from
# images/common/apod_common/settings.py (which says why it is a fixed name); a DAG test
# keeps the two equal.
DEFAULT_RUN_ID = "manual"


@dataclass(frozen=True)
class Placement:
    """What backs a by-hand run's volumes, and how its containers run."""

    # Volume.name -> a Docker volume's name or a host directory; None: left unmounted.
    volumes: Mapping[str, str | None]
    read_only: frozenset[str] = frozenset()  # names of volumes mounted read-only
    network: str = "host"  # so that a URL means in the container what it means on the host
    user: str | None = None  # uid:gid; None: the image's own user
    environment: Mapping[str, str] = field(default_factory=dict)  # for every step


def checkout_placement(checkout: Checkout, **options) -> Placement:
    """`make steps`: the checkout's data/ at /data; the checkout itself and a local DVC
    remote (version's volumes) at their own paths."""
    same_path = {volume.name: volume.path for volume in checkout.volumes}
    return Placement(volumes={DATA.name: checkout.data_dir, **same_path}, **options)


@dataclass(frozen=True)
class DockerRun:
    options: tuple[str, ...]  # between `docker run` and the image
    image: str
    arguments: tuple[str, ...]
    environment: Mapping[str, str]  # the values behind the `-e NAME` options

    def argv(self, options: Iterable[str] = (), arguments: Iterable[str] = ()) -> list[str]:
        """The command line, with more options (before the image) or arguments (after)."""
        return ["docker", "run", *self.options, *options, self.image, *self.arguments, *arguments]

    def cli_environment(self, base: Mapping[str, str] = os.environ) -> dict[str, str]:
        """The docker CLI's own environment: where the `-e NAME` values come from."""
        return {**base, **self.environment}


def secret_variables(step: Step, environ: Mapping[str, str]) -> dict[str, str]:
    """The step's secrets (and their *_FILE and alternative forms) set in `environ`."""
    names = [n for ref in step.secrets for n in (ref.env, f"{ref.env}_FILE", *ref.alternatives)]
    return {name: environ[name] for name in names if environ.get(name)}


def container(
    image: str,
    arguments: Iterable[str],
    placement: Placement,
    *,
    volumes: Iterable[Volume] = (),
    environment: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> DockerRun:
    """One `docker run` of `image`: `volumes` mounted as `placement` says, `environment`
    passed by name, `secrets` too (a *FILE variable's host file mounted read-only)."""
    options = ["--rm", "--network", placement.network]
    if placement.user:
        options += ["--user", placement.user]
    for volume in volumes:
        source = placement.volumes[volume.name]
        if source is not None:
            mode = ":ro" if volume.name in placement.read_only else ""
            options += ["-v", f"{source}:{volume.path}{mode}"]
    variables = {**placement.environment}
    for name, value in (secrets or {}).items():
        if name.endswith("FILE"):
            variables[name] = f"{SECRET_FILES}/{name}"
            options += ["-v", f"{value}:{variables[name]}:ro"]
        else:
            variables[name] = value
    variables.update(environment or {})
    for name in variables:
        options += ["-e", name]
    return DockerRun(tuple(options), image, tuple(arguments), variables)


def docker_run(
    step: Step,
    settings: Settings,
    values: Mapping[RunValue, str],
    placement: Placement,
    environ: Mapping[str, str],
    environment: Mapping[str, str] | None = None,
) -> DockerRun:
    """The step for one run (`values`), with its secrets from `environ` (the caller's
    environment, or just what a test hands it). `environment` adds variables, or
    overrides the step's own."""
    return container(
        settings.image(step.image),
        step.arguments_with(values.__getitem__),
        placement,
        volumes=step.volumes,
        environment={**step.environment, **(environment or {})},
        secrets=secret_variables(step, environ),
    )
