"""What a step's Docker container is made of, in the deployment's names: the one place
both the DockerOperator renderer (docker.py), which builds it, and the Docker gate
(images/docker-gate), which lets only such containers be made, read it from.

Standard library only: the gate imports it without Airflow.
"""

from __future__ import annotations

from apod_pipeline.settings import Settings
from apod_pipeline.steps import DATA, DVC_REMOTE, Step, Volume

# Every container the pipeline makes carries this label; the gate lets the container
# calls (start, attach, wait, logs, inspect, stop, remove) through only for those.
PIPELINE_LABEL = "org.apod.pipeline"
PIPELINE = "apod"
STEP_LABEL = "org.apod.step"

# The one directory a step container's secret files are put into (a tar, PUT
# /containers/{id}/archive?path=..., before the container starts).
SECRETS_DIR = "/run/apod-secrets"

# A step container joins the stack's network, or none at all.
NO_NETWORK = "none"


def labels(step: Step) -> dict[str, str]:
    return {PIPELINE_LABEL: PIPELINE, STEP_LABEL: step.task_id}


def volume_source(volume: Volume, settings: Settings) -> str:
    """The named Docker volume behind one of the steps' volumes."""
    return {DATA.name: settings.data_volume, DVC_REMOTE.name: settings.dvc_volume}[volume.name]


def networks(settings: Settings) -> tuple[str, ...]:
    """What a step container may be attached to."""
    return (settings.docker_network, NO_NETWORK)
