"""The pipeline's steps, defined once: what each container runs, with what, on what.

Both renderers (apod_pipeline.docker, apod_pipeline.kubernetes) turn these records into
operators; nothing here knows about either operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from airflow.sdk import Asset

from apod_pipeline.settings import Settings

DATA_DIR = "/data"
DVC_REMOTE_DIR = "/dvc-remote"

# The run's dates: a manual run's params when given, else the data interval's date.
# A manual run triggered without a logical date has no `ds`; it then falls back to
# the day it was triggered for (run_after).
_RUN_DATE = "ds | default(dag_run.run_after | ds)"
START_DATE = "{{ params.start_date or " + _RUN_DATE + " }}"
END_DATE = "{{ params.end_date or params.start_date or " + _RUN_DATE + " }}"
RUN_ID = "{{ run_id }}"

CSV_ASSET = Asset(name="apod_data.csv", uri=f"file://{DATA_DIR}/apod_data.csv")
TABLE_ASSET = Asset(name="apod.apod_entries", uri="postgres://postgres:5432/apod/apod/apod_entries")


@dataclass(frozen=True)
class SecretEnv:
    """A secret a step reads from its environment, named by reference only.

    DockerOperator: looked up in an Airflow connection when the task runs.
    KubernetesPodOperator: a key of the Secret `apod-secrets` (secretKeyRef).
    """

    env: str
    connection: str
    kind: str  # "password": the connection's password; "postgres_uri": a URI built from it
    secret_key: str
    fallback: str | None = None  # used when the connection does not exist


NASA_API_KEY = SecretEnv(
    env="NASA_API_KEY",
    connection="apod_nasa_api",
    kind="password",
    secret_key="nasa-api-key",  # noqa: S106 - a key name in the Secret
    fallback="DEMO_KEY",
)
DATABASE_URL = SecretEnv(
    env="APOD_DATABASE_URL",
    connection="apod_db",
    kind="postgres_uri",
    secret_key="database-url",  # noqa: S106 - a key name in the Secret
)


@dataclass(frozen=True)
class Resources:
    """Kubernetes quantities; the Docker renderer converts the limits."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


SMALL = Resources(
    cpu_request="100m", cpu_limit="500m", memory_request="128Mi", memory_limit="256Mi"
)
MEDIUM = Resources(cpu_request="250m", cpu_limit="1", memory_request="256Mi", memory_limit="1Gi")


@dataclass(frozen=True)
class Step:
    task_id: str
    image: str  # apod-<image>:<tag>
    arguments: tuple[str, ...]  # after the image's ENTRYPOINT; may hold templates
    upstream: tuple[str, ...]
    execution_timeout: timedelta
    resources: Resources
    environment: dict[str, str] = field(default_factory=dict)  # not secret
    secrets: tuple[SecretEnv, ...] = ()
    dvc_remote: bool = False  # mounts the DVC remote at DVC_REMOTE_DIR
    outlets: tuple[Asset, ...] = ()
    doc: str = ""


def steps(settings: Settings) -> tuple[Step, ...]:
    """The five tasks in dependency order."""
    return (
        Step(
            task_id="extract",
            image="extract",
            arguments=("--start", START_DATE, "--end", END_DATE, "--run-id", RUN_ID),
            upstream=(),
            # A backfill of years is many chunked requests, and a 429 may ask for a long wait.
            execution_timeout=timedelta(minutes=45),
            resources=SMALL,
            environment={"APOD_API_URL": settings.api_url},
            secrets=(NASA_API_KEY,),
            doc="Fetch the run's dates from the APOD API into /data/raw/<run>/.",
        ),
        Step(
            task_id="transform",
            image="transform",
            arguments=("--run-id", RUN_ID),
            upstream=("extract",),
            execution_timeout=timedelta(minutes=15),
            resources=MEDIUM,
            doc="Normalise and validate the raw payload into /data/staging/<run>/.",
        ),
        Step(
            task_id="load_postgres",
            image="load",
            arguments=("postgres", "--run-id", RUN_ID),
            upstream=("transform",),
            execution_timeout=timedelta(minutes=15),
            resources=MEDIUM,
            secrets=(DATABASE_URL,),
            outlets=(TABLE_ASSET,),
            doc="Upsert the staged batch into apod.apod_entries.",
        ),
        Step(
            task_id="load_csv",
            image="load",
            arguments=("csv", "--run-id", RUN_ID),
            upstream=("transform",),
            execution_timeout=timedelta(minutes=15),
            resources=MEDIUM,
            outlets=(CSV_ASSET,),
            doc="Merge the staged batch into /data/apod_data.csv.",
        ),
        Step(
            task_id="version",
            image="version",
            arguments=("--run-id", RUN_ID, "--init-repo"),
            upstream=("load_postgres", "load_csv"),
            # dvc push of a large CSV to a slow remote.
            execution_timeout=timedelta(minutes=30),
            resources=MEDIUM,
            environment={"APOD_DVC_REMOTE": DVC_REMOTE_DIR},
            dvc_remote=True,
            doc="DVC-track the CSV, push it to the remote, commit the .dvc file.",
        ),
    )
