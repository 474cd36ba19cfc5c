"""The pipeline's steps, defined once: what each container runs, with what, on what.

Standard library only. Three renderers turn these records into something that runs:
apod_pipeline.docker (DockerOperator), apod_pipeline.kubernetes (KubernetesPodOperator)
and apod_pipeline.by_hand (`docker run`, for `make steps`, the bench and the tests).
Nothing here knows about any of them: what differs per run is a RunValue that each
renderer fills in its own way (Jinja templates in the DAGs, plain values by hand), and
the data a step writes is an Output that the DAGs declare as an Airflow Asset.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from apod_pipeline.settings import Settings


class RunValue(enum.Enum):
    """A value of one run, in a step's arguments."""

    START = "start"  # first day, YYYY-MM-DD
    END = "end"  # last day, inclusive
    RUN_ID = "run_id"  # names the run's batch, so the steps find each other's files


START, END, RUN_ID = RunValue.START, RunValue.END, RunValue.RUN_ID


@dataclass(frozen=True)
class Volume:
    """A volume the steps share, by name; each renderer says what backs it (a Docker
    volume, a PersistentVolumeClaim, a host directory)."""

    name: str
    path: str  # where the container sees it


# The data volume's path and the dataset's file name are the steps' defaults, repeated
# from images/common/apod_common (settings.DEFAULT_DATA_DIR, layout.CSV_NAME): the Airflow
# image has no step library. A DAG test keeps them equal.
DATA = Volume("data", "/data")
DVC_REMOTE = Volume("dvc-remote", "/dvc-remote")
DATA_CSV = "apod_data.csv"  # the merged dataset, in the data directory


@dataclass(frozen=True)
class Figures:
    """Figures of one step's JSON summary that an output's asset event carries."""

    task_id: str  # the step that prints them: the emitting task or one upstream of it
    keys: tuple[tuple[str, str], ...]  # (key in the summary, key in the event's extra)


@dataclass(frozen=True)
class Output:
    """Data a step leaves behind for others (an Airflow Asset in the DAGs); its asset
    event carries `figures` (apod_pipeline.lineage)."""

    name: str
    uri: str
    figures: tuple[Figures, ...] = ()


# The batch behind both stores: how many rows transform accepted and set aside, and why.
BATCH_FIGURES = Figures(
    "transform",
    (
        ("rows", "accepted"),
        ("rejected", "rejected"),
        ("reject_reasons", "reject_reasons"),
        ("rejected_file", "rejected_file"),
        ("first_date", "first_date"),
        ("last_date", "last_date"),
    ),
)
# Emitted by version: an event is a committed version of the data (none when unchanged).
CSV = Output(
    name=DATA_CSV,
    uri=f"file://{DATA.path}/{DATA_CSV}",
    figures=(
        Figures("load_csv", (("rows", "rows"), ("sha256", "sha256"))),
        Figures(
            "version",
            (
                ("md5", "md5"),
                ("commit", "commit"),
                ("dvc_pushed", "dvc_pushed"),
                ("git_pushed", "git_pushed"),
            ),
        ),
        BATCH_FIGURES,
    ),
)
TABLE = Output(
    name="apod.apod_entries",
    uri="postgres://postgres:5432/apod/apod/apod_entries",
    figures=(
        Figures(
            "load_postgres",
            tuple((key, key) for key in ("rows", "inserted", "updated", "unchanged", "table_rows")),
        ),
        BATCH_FIGURES,
    ),
)


@dataclass(frozen=True)
class SecretEnv:
    """A secret a step reads from its environment, named by reference only.

    DockerOperator: looked up in an Airflow connection when the task runs.
    KubernetesPodOperator: a key of the Secret `apod-secrets` (secretKeyRef).
    By hand: passed on by name from the caller's environment, as are `<env>_FILE` and
    the `alternatives` (a variable whose name ends in FILE names a file, mounted).
    """

    env: str
    connection: str
    kind: str  # "password"/"login": the connection's; "postgres_uri": a URI built from it
    secret_key: str
    fallback: str | None = None  # used when the connection does not exist
    alternatives: tuple[str, ...] = ()  # what the step reads when `env` is not set


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
    # libpq's own variables: load connects with them when there is no URL.
    alternatives=(
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGPASSFILE",
        "PGSSLMODE",
    ),
)

# Where an s3:// remote answers (botocore reads it: no endpoint in any DVC config).
S3_ENDPOINT_ENV = "AWS_ENDPOINT_URL_S3"

# The object store's key, for version when its remote is s3:// (dvc-s3 reads these names).
S3_ACCESS_KEY_ID = SecretEnv(
    env="AWS_ACCESS_KEY_ID",
    connection="apod_objectstore",
    kind="login",
    secret_key="s3-access-key-id",  # noqa: S106 - a key name in the Secret
    # By hand: dvc-s3's other standard inputs, passed on by name when set.
    alternatives=(
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        S3_ENDPOINT_ENV,
        "AWS_ENDPOINT_URL",
        "AWS_DEFAULT_REGION",
    ),
)
S3_SECRET_ACCESS_KEY = SecretEnv(
    env="AWS_SECRET_ACCESS_KEY",
    connection="apod_objectstore",
    kind="password",
    secret_key="s3-secret-access-key",  # noqa: S106 - a key name in the Secret
)
OBJECT_STORE_SECRETS = (S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY)


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
MEDIUM = Resources(cpu_request="200m", cpu_limit="1", memory_request="256Mi", memory_limit="1Gi")


@dataclass(frozen=True)
class Step:
    task_id: str
    image: str  # apod-<image>:<tag>
    arguments: tuple[str | RunValue, ...]  # after the image's ENTRYPOINT
    upstream: tuple[str, ...]
    execution_timeout: timedelta
    resources: Resources
    environment: dict[str, str] = field(default_factory=dict)  # not secret
    secrets: tuple[SecretEnv, ...] = ()
    volumes: tuple[Volume, ...] = (DATA,)
    outputs: tuple[Output, ...] = ()
    doc: str = ""

    def arguments_with(self, fill: Callable[[RunValue], str]) -> list[str]:
        """The arguments with each RunValue replaced by `fill(value)`."""
        return [fill(a) if isinstance(a, RunValue) else a for a in self.arguments]


@dataclass(frozen=True)
class Checkout:
    """By hand only (`make steps`): a clone of this repository is the data repository.

    The steps' /data is its data/ directory, and version commits the .dvc file into it
    instead of making the data volume a repository of its own (`--init-repo`). The
    checkout and a local DVC remote are mounted at their own paths, so that the paths
    git and DVC record are the host's.
    """

    path: str
    dvc_remote: str | None = None  # APOD_DVC_REMOTE as given; None: the checkout's config
    local_remote: str | None = None  # the remote's directory when it is one, mounted
    git_remote: str = "none"  # no git push by hand unless asked (APOD_GIT_REMOTE=origin)

    @property
    def data_dir(self) -> str:
        """What the steps mount at /data."""
        return f"{self.path}/data"

    @property
    def volumes(self) -> tuple[Volume, ...]:
        """What version mounts, each at its own path."""
        remote = (Volume(DVC_REMOTE.name, self.local_remote),) if self.local_remote else ()
        return (Volume("checkout", self.path), *remote)


def steps(settings: Settings, checkout: Checkout | None = None) -> tuple[Step, ...]:
    """The five tasks in dependency order."""
    concurrency = settings.extract_concurrency
    # Passed only when set, so an extract image without the option keeps working.
    concurrency_args = ("--concurrency", str(concurrency)) if concurrency else ()
    return (
        Step(
            task_id="extract",
            image="extract",
            arguments=("--start", START, "--end", END, "--run-id", RUN_ID, *concurrency_args),
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
        load_step(
            "postgres",
            secrets=(DATABASE_URL,),
            outputs=(TABLE,),
            doc="Upsert the staged batch into apod.apod_entries.",
        ),
        load_step("csv", doc="Merge the staged batch into /data/apod_data.csv."),
        version_step(checkout, settings),
    )


def load_step(target: str, **differences) -> Step:
    """One target of the load image (`apod-load <target>`): both run side by side once
    transform has staged the batch, as task load_<target>."""
    return Step(
        task_id=f"load_{target}",
        image="load",
        arguments=(target, "--run-id", RUN_ID),
        upstream=("transform",),
        execution_timeout=timedelta(minutes=15),
        resources=MEDIUM,
        **differences,
    )


def version_step(checkout: Checkout | None, settings: Settings | None = None) -> Step:
    common = {
        "task_id": "version",
        "image": "version",
        "upstream": ("load_postgres", "load_csv"),
        # dvc push of a large CSV to a slow remote.
        "execution_timeout": timedelta(minutes=30),
        "resources": MEDIUM,
        "outputs": (CSV,),
        "doc": "DVC-track the CSV, push it to the remote, commit the .dvc file.",
    }
    if checkout is None:
        # The data volume is the data repository (git + DVC), made one by the first run.
        remote = settings.dvc_remote if settings else DVC_REMOTE.path
        environment = {"APOD_DVC_REMOTE": remote}
        secrets: tuple[SecretEnv, ...] = ()
        volumes = (DATA, DVC_REMOTE)
        if "://" in remote and not remote.startswith("file://"):
            volumes = (DATA,)  # the remote is elsewhere: no DVC remote volume
        if remote.startswith("s3://"):
            secrets = OBJECT_STORE_SECRETS
            if settings and settings.s3_endpoint:
                environment[S3_ENDPOINT_ENV] = settings.s3_endpoint
        return Step(
            **common,
            arguments=("--run-id", RUN_ID, "--init-repo"),
            environment=environment,
            secrets=secrets,
            volumes=volumes,
        )
    environment = {"APOD_GIT_REMOTE": checkout.git_remote}
    if checkout.dvc_remote:
        environment["APOD_DVC_REMOTE"] = checkout.dvc_remote
    return Step(
        **common,
        arguments=("--run-id", RUN_ID, "--csv", f"{checkout.data_dir}/{DATA_CSV}"),
        environment=environment,
        # By hand they pass only when set in the caller's environment (an s3:// remote).
        secrets=OBJECT_STORE_SECRETS,
        volumes=checkout.volumes,
    )
