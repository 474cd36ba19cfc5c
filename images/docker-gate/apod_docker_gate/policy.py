"""What the gate lets a container be made of, derived from the one step definition
(dags/apod_pipeline/steps.py) and the deployment's settings, never typed in twice.

For each step image at the deployed tag: the (named volume, path) pairs its steps mount
and the environment variables its steps are given; for every container: the networks
and the label of apod_pipeline.docker_contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from apod_pipeline import docker_contract
from apod_pipeline.settings import Settings
from apod_pipeline.steps import Step, steps


@dataclass(frozen=True)
class ImageRule:
    """What a container of one step image may have."""

    mounts: frozenset[tuple[str, str]]  # (named volume, path in the container)
    env: frozenset[str]  # variable names


@dataclass(frozen=True)
class Policy:
    images: Mapping[str, ImageRule]  # "apod-<image>:<tag>" -> its rule
    networks: tuple[str, ...]
    label: tuple[str, str]  # (key, value) every container of the pipeline carries
    secrets_dir: str
    longest_step: timedelta  # a wait or an attach lasts as long as a step runs

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        mounts: dict[str, set[tuple[str, str]]] = {}
        env: dict[str, set[str]] = {}
        the_steps = steps(settings)
        for step in the_steps:
            image = settings.image(step.image)
            mounts.setdefault(image, set()).update(
                (docker_contract.volume_source(v, settings), v.path) for v in step.volumes
            )
            env.setdefault(image, set()).update(environment_names(step))
        return cls(
            images={
                image: ImageRule(frozenset(mounts[image]), frozenset(env[image]))
                for image in mounts
            },
            networks=docker_contract.networks(settings),
            label=(docker_contract.PIPELINE_LABEL, docker_contract.PIPELINE),
            secrets_dir=docker_contract.SECRETS_DIR,
            longest_step=max(step.execution_timeout for step in the_steps),
        )

    def describe(self) -> str:
        """One line per image, for the log at start."""
        lines = [f"networks: {', '.join(self.networks)}; label {'='.join(self.label)}"]
        for image, rule in sorted(self.images.items()):
            volumes = ", ".join(f"{source}:{path}" for source, path in sorted(rule.mounts))
            lines.append(
                f"{image}: volumes {volumes}; env {', '.join(sorted(rule.env)) or '(none)'}"
            )
        return "\n".join(lines)


def environment_names(step: Step) -> set[str]:
    """The variables the DockerOperator renderer gives a step's container: its
    environment, and each secret as a value or as a file (<NAME>_FILE)."""
    names = set(step.environment)
    for secret in step.secrets:
        names |= {secret.env, f"{secret.env}_FILE"}
    return names
