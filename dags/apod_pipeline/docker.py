"""Render the steps as DockerOperator tasks (DAG `apod_etl`, docker-compose).

Containers join APOD_DOCKER_NETWORK and mount the named volumes APOD_DATA_VOLUME at
/data and, for version when APOD_DVC_REMOTE is a path (compose sets an s3:// store),
APOD_DVC_VOLUME at /dvc-remote. Secrets are looked up in Airflow
connections inside execute() and handed over in `private_environment` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.docker.operators.docker import DockerOperator
from docker.types import Mount

from apod_pipeline import docker_contract, secrets
from apod_pipeline.dag import attach_figures, build_dag, outlets, templated_arguments
from apod_pipeline.exit_codes import NOTHING_TO_DO
from apod_pipeline.lineage import summary_line
from apod_pipeline.retry import DOCKER_RETRY_POLICY
from apod_pipeline.settings import Settings
from apod_pipeline.steps import Output, SecretEnv, Step

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

DAG_ID = "apod_etl"


class ApodDockerOperator(DockerOperator):
    """DockerOperator that fills `private_environment` from Airflow connections at run time.

    Only references (connection ids) are stored on the task; the values exist in the
    worker process while the task runs and in the container's environment.
    """

    def __init__(
        self,
        *,
        secret_env: Sequence[SecretEnv] = (),
        step_outputs: Sequence[Output] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.secret_env = tuple(secret_env)
        self.step_outputs = tuple(step_outputs)

    def resolve_secrets(self) -> dict[str, str]:
        return {ref.env: secrets.resolve(ref) for ref in self.secret_env}

    def execute(self, context: Context) -> Any:
        self._private_environment = self.resolve_secrets()
        try:
            lines = super().execute(context)
        finally:
            # The operator object can outlive the try (retries in one process, dags test).
            self._private_environment = {}
        summary = summary_line(lines)  # the XCom
        attach_figures(context, self.task_id, self.step_outputs, summary)
        return summary


def docker_memory(quantity: str) -> str:
    """Kubernetes memory quantity (256Mi, 1Gi) -> Docker's (256m, 1g)."""
    for suffix, unit in (("Gi", "g"), ("Mi", "m"), ("Ki", "k")):
        if quantity.endswith(suffix):
            return quantity[: -len(suffix)] + unit
    return quantity


def docker_cpus(quantity: str) -> float:
    """Kubernetes CPU quantity (500m, 1) -> Docker's CPU count (0.5, 1.0)."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def docker_kwargs(step: Step, settings: Settings) -> dict[str, Any]:
    mounts = [
        Mount(target=v.path, source=docker_contract.volume_source(v, settings), type="volume")
        for v in step.volumes
    ]
    return {
        "task_id": step.task_id,
        "doc": step.doc,
        "image": settings.image(step.image),
        "command": templated_arguments(step),  # the image's ENTRYPOINT is the step's CLI
        "environment": dict(step.environment),
        "secret_env": step.secrets,
        "mounts": mounts,
        "docker_url": settings.docker_url,
        "network_mode": settings.docker_network,
        # Removed on success, failure and kill alike (execution_timeout kills): the task
        # log keeps the output, nothing piles up on the host.
        "auto_remove": "force",
        # Airflow runs in a container on compose: a bind mount of its /tmp would be
        # resolved on the host, where that path does not exist.
        "mount_tmp_dir": False,
        "mem_limit": docker_memory(step.resources.memory_limit),
        "cpus": docker_cpus(step.resources.cpu_limit),
        "skip_on_exit_code": NOTHING_TO_DO,
        # All lines reach execute(), which keeps the step's JSON summary as the XCom.
        "xcom_all": True,
        # What the Docker gate lets the container calls through for (images/docker-gate).
        "labels": docker_contract.labels(step),
        "execution_timeout": step.execution_timeout,
        "retry_policy": DOCKER_RETRY_POLICY,
        "outlets": outlets(step),
        "step_outputs": step.outputs,
    }


def docker_task(step: Step, settings: Settings) -> ApodDockerOperator:
    return ApodDockerOperator(**docker_kwargs(step, settings))


SECRETS_DOC = """\
Looked up when a task runs, never at parse time and never in a templated field:
connection `apod_nasa_api` (its password is the NASA API key; absent: `DEMO_KEY`) and
connection `apod_db` (the loader's Postgres login: host, port, schema = database, login,
password). They reach the containers through DockerOperator's `private_environment`
as `NASA_API_KEY` and `APOD_DATABASE_URL`."""


def dag(settings: Settings | None = None):
    return build_dag(
        DAG_ID,
        docker_task,
        runner="Airflow starts them as Docker containers (DockerOperator)",
        secrets_doc=SECRETS_DOC,
        tags=["docker"],
        settings=settings,
    )
