"""One pipeline "world" for the fault tier: the step images run by hand with `docker run`
on their own data volume and DVC remote volume, against one fresh Postgres database and
the repository's APOD test server. The steps are the pipeline's one definition, rendered
and run by apod_pipeline.by_hand and scripts/apod_tools, as `make steps` runs them.

Secrets reach `docker run` by variable name (`-e NAME`), never by value, so the fault
tier's process-list checks see exactly what a careful operator's command line shows.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from support.services import Database, TestServer, docker, docker_volume, fresh_database, image

from apod_common import layout
from apod_common.schema import CONTENT_COLUMNS as CONTENT
from apod_pipeline.by_hand import DockerRun, Placement, container
from apod_pipeline.settings import Settings
from apod_pipeline.steps import DATA, DVC_REMOTE, END, RUN_ID, START
from apod_tools.runner import Runner, StepFailed, StepRun, execute

__all__ = ["CONTENT", "StepFailed", "StepRun"]

CONTAINER_PREFIX = "apod-faults"
# Small retry settings so that injected faults cost seconds, not minutes. Every run goes
# all the way, as the tier's repeated runs are there to show what the steps after extract
# do with the same input (tests/docker/test_steps_by_hand.py has the early stop).
FAST_EXTRACT = (
    "--backoff", "0.05", "--max-wait", "5", "--max-retries", "2", "--timeout", "5",
    "--always-load",
)  # fmt: skip
# What a pipeline run must end with, step by step (version: 99 when the data is unchanged).
PIPELINE_OUTCOMES = {
    "extract": (0,),
    "transform": (0,),
    "load_postgres": (0,),
    "load_csv": (0,),
    "version": (0, 99),
}


@dataclass
class Snapshot:
    """Everything a run leaves behind that the tier compares between runs."""

    rows: list[tuple]  # every column of every row, loaded_at and run_id included
    csv: bytes
    head: str
    tree: str
    commits: int
    dvc_file: str

    def content(self) -> list[tuple]:
        return [row[: len(CONTENT)] for row in self.rows]


@dataclass
class World:
    server: TestServer
    db: Database
    data: str  # docker volume at /data
    remote: str  # docker volume at /dvc-remote (the DVC remote)
    database_url: str = ""  # what APOD_DATABASE_URL holds for the loads (default db.url)
    runs: list[StepRun] = field(default_factory=list)

    # --- running the images -------------------------------------------------------------

    def placement(self, remote: str | None) -> Placement:
        """The data volume, and the DVC remote read-write ("rw"), read-only ("ro") or not
        at all (None)."""
        return Placement(
            volumes={DATA.name: self.data, DVC_REMOTE.name: self.remote if remote else None},
            read_only=frozenset({DVC_REMOTE.name} if remote == "ro" else ()),
        )

    def runner(self) -> Runner:
        """The pipeline's steps against this world's test server and database."""
        return Runner(
            Settings(api_url=self.server.url),
            self.placement("rw"),
            {"APOD_DATABASE_URL": self.database_url or self.db.url},
        )

    def command(
        self, name: str, args: tuple[str, ...], env: dict[str, str] | None, remote: str | None
    ) -> DockerRun:
        """Any command of an image (init-db, a step with arguments of a test's own)."""
        env = {"APOD_API_URL": self.server.url, **(env or {})}
        if name == "load":
            env.setdefault("APOD_DATABASE_URL", self.database_url or self.db.url)
        volumes = (DATA, DVC_REMOTE) if remote else (DATA,)
        return container(
            image(name), args, self.placement(remote), volumes=volumes, environment=env
        )

    def step(
        self,
        name: str,
        *args: str,
        env: dict[str, str] | None = None,
        remote: str | None = None,
        extra: tuple[str, ...] = (),
        label: str | None = None,
    ) -> StepRun:
        run = execute(self.command(name, args, env, remote), label or name, options=extra)
        self.runs.append(run)
        return run

    def task(
        self,
        task_id: str,
        values: dict,
        *args: str,
        env: dict[str, str] | None = None,
        remote: str | None = "rw",
        extra: tuple[str, ...] = (),
    ) -> StepRun:
        """One step of the pipeline as defined, with more arguments and variables."""
        command = self.runner().command(task_id, values, env, self.placement(remote))
        run = execute(command, task_id, options=extra, arguments=args)
        self.runs.append(run)
        return run

    @contextlib.contextmanager
    def running(
        self,
        name: str,
        *args: str,
        env: dict[str, str] | None = None,
        remote: str | None = None,
    ) -> Iterator[RunningStep]:
        """A step started in the background, for tests that stop or kill it midway."""
        container_name = f"{CONTAINER_PREFIX}-{secrets.token_hex(4)}"
        command = self.command(name, args, env, remote)
        process = subprocess.Popen(
            command.argv(options=("--name", container_name)),
            env=command.cli_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        step = RunningStep(name, container_name, process)
        try:
            yield step
        finally:
            if process.poll() is None:
                docker("kill", container_name, check=False)
            step.finish()
            self.runs.append(step.result)

    def extract(self, run_id: str, start: str, end: str | None = None, *args: str, **kw):
        values = {START: start, END: end or start, RUN_ID: run_id}
        return self.task("extract", values, *FAST_EXTRACT, *args, **kw)

    def transform(self, run_id: str, *args: str, **kw) -> StepRun:
        return self.task("transform", {RUN_ID: run_id}, *args, **kw)

    def load_postgres(self, run_id: str, *args: str, **kw) -> StepRun:
        return self.task("load_postgres", {RUN_ID: run_id}, *args, **kw)

    def load_csv(self, run_id: str, *args: str, **kw) -> StepRun:
        return self.task("load_csv", {RUN_ID: run_id}, *args, **kw)

    def version(self, run_id: str, *args: str, remote: str | None = "rw", **kw) -> StepRun:
        return self.task("version", {RUN_ID: run_id}, *args, remote=remote, **kw)

    def loads(self, run_id: str, env: dict[str, str] | None = None) -> tuple[StepRun, StepRun]:
        """The two loads side by side, as the DAG runs them."""
        results: dict[str, StepRun] = {}
        threads = [
            threading.Thread(
                target=lambda: results.__setitem__("pg", self.load_postgres(run_id, env=env))
            ),
            threading.Thread(
                target=lambda: results.__setitem__("csv", self.load_csv(run_id, env=env))
            ),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results["pg"], results["csv"]

    def pipeline(
        self,
        run_id: str,
        start: str,
        end: str | None = None,
        *,
        transform_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> dict[str, StepRun]:
        """extract, transform, both loads, version; each must succeed (or have nothing to do)."""
        values = {START: start, END: end or start, RUN_ID: run_id}
        steps = self.runner().pipeline(
            values,
            arguments={"extract": FAST_EXTRACT, "transform": transform_args},
            environment=env,
        )
        self.runs.extend(steps.values())
        for task_id, codes in PIPELINE_OUTCOMES.items():
            if task_id not in steps:
                raise StepFailed(f"{task_id} did not run: {list(steps)} ran")
            steps[task_id].expect(*codes)
        return steps

    # --- looking at what the runs left --------------------------------------------------

    @property
    def mountpoint(self) -> Path:
        return volume_path(self.data)

    def path(self, rel: str) -> Path:
        return self.mountpoint / rel

    def read(self, rel: str) -> bytes:
        return self.path(rel).read_bytes()

    def csv_bytes(self) -> bytes:
        path = self.path(layout.CSV_NAME)
        return path.read_bytes() if path.exists() else b""

    def put(self, rel: str, data: bytes) -> None:
        """Write a file on the data volume through a container, as the steps' own uid
        (the host never writes into the volumes)."""
        script = 'mkdir -p "$(dirname "$1")" && cat > "$1.part" && mv "$1.part" "$1"'
        flags = ["run", "--rm", "-i", "-v", f"{self.data}:/data", "--entrypoint", "sh"]
        subprocess.run(
            ["docker", *flags, image("version"), "-c", script, "sh", f"/data/{rel}"],
            input=data,
            capture_output=True,
            check=True,
            timeout=300,
        )

    def remote_files(self) -> set[str]:
        """The md5 of every object in the DVC remote (DVC 3 layout: files/md5/ab/cdef...)."""
        root = volume_path(self.remote) / "files" / "md5"
        if not root.exists():
            return set()
        return {p.parent.name + p.name for p in root.glob("*/*") if p.is_file()}

    def sh(self, script: str, remote: bool = False) -> str:
        """A shell in the version image (git, dvc) on the volumes, as the step's own uid."""
        flags = ["run", "--rm", "-v", f"{self.data}:/data", "-w", "/data"]
        if remote:
            flags += ["-v", f"{self.remote}:/dvc-remote:ro"]
        return docker(*flags, "--entrypoint", "sh", image("version"), "-c", script).stdout

    def git(self, *args: str) -> str:
        quoted = " ".join(_shell_quote(a) for a in args)
        return self.sh(f"git {quoted}")

    def rows(self) -> list[tuple]:
        if not self.db.query("SELECT to_regclass('apod.apod_entries')")[0][0]:
            return []
        return self.db.query(
            "SELECT date::text, title, explanation, media_type, url, hdurl, thumbnail_url, "
            "copyright, service_version, run_id, extracted_at::text, loaded_at::text "
            "FROM apod.apod_entries ORDER BY date"
        )

    def snapshot(self) -> Snapshot:
        out = self.sh(
            "git rev-parse HEAD HEAD^{tree} && git rev-list --count HEAD && "
            "git cat-file blob HEAD:apod_data.csv.dvc"
        )
        head, tree, commits, *dvc_lines = out.splitlines()
        return Snapshot(
            rows=self.rows(),
            csv=self.csv_bytes(),
            head=head,
            tree=tree,
            commits=int(commits),
            dvc_file="\n".join(dvc_lines),
        )


@dataclass
class RunningStep:
    name: str
    container: str
    process: subprocess.Popen
    result: StepRun | None = None
    started: float = field(default_factory=time.monotonic)

    def host_pid(self, timeout: float = 60) -> int:
        """The step's process (the container's pid 1) as the host sees it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = docker("inspect", "-f", "{{.State.Pid}}", self.container, check=False)
            pid = int(probe.stdout.strip() or 0) if probe.returncode == 0 else 0
            if pid:
                return pid
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name} container {self.container} never started")

    def signal(self, signum: int) -> None:
        try:
            os.kill(self.host_pid(), signum)
        except PermissionError:  # not root on the host: let the daemon deliver it
            docker("kill", "--signal", signal.Signals(signum).name, self.container)

    def logs(self) -> str:
        """What the container printed so far (stdout and stderr), while it runs."""
        probe = docker("logs", self.container, check=False)
        return probe.stdout + probe.stderr

    def finish(self, timeout: float = 300) -> StepRun:
        if self.result is None:
            stdout, stderr = self.process.communicate(timeout=timeout)
            self.result = StepRun(
                self.name,
                self.process.returncode,
                stdout,
                stderr,
                time.monotonic() - self.started,
            )
        return self.result


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def volume_path(volume: str) -> Path:
    """Where the daemon keeps a named volume; the tier reads (never writes) results there."""
    return Path(docker("volume", "inspect", "-f", "{{.Mountpoint}}", volume).stdout.strip())


def volume_readable(volume: str) -> bool:
    return os.access(volume_path(volume), os.R_OK | os.X_OK)


@contextlib.contextmanager
def world(server: TestServer, db: Database, label: str) -> Iterator[World]:
    """Fresh data and DVC-remote volumes for one scenario group; removed afterwards."""
    with (
        docker_volume(f"apod-faults-{label}-data") as data,
        docker_volume(f"apod-faults-{label}-dvc") as remote,
    ):
        # The volumes must be filled by a container first (that copies /data's owner
        # into them), so the host only ever reads them.
        for volume, target in ((data, "/data"), (remote, "/dvc-remote")):
            docker(
                "run", "--rm", "-v", f"{volume}:{target}", "--entrypoint", "true", image("version")
            )
        if not volume_readable(data):
            import pytest

            pytest.skip("the fault tier reads docker volumes on the host: run it as root")
        yield World(server=server, db=db, data=data, remote=remote)


@contextlib.contextmanager
def fresh_world(server: TestServer, label: str) -> Iterator[World]:
    """A world of its own: a new database and new volumes, for one scenario."""
    with fresh_database(f"apod_faults_{label}") as db, world(server, db, label) as w:
        yield w


_CLEAN: dict[tuple[str, str], Snapshot] = {}


def clean_run(server: TestServer, start: str, end: str | None = None) -> Snapshot:
    """What one uninterrupted pipeline run of start..end leaves in a world of its own:
    the reference the fault scenarios must converge to (computed once per session).

    Only what does not depend on the run is comparable across worlds: the content
    columns of the rows, the CSV bytes, the .dvc file, the git tree and the number of
    commits (run ids, load times and commit hashes differ by design)."""
    key = (start, end or start)
    if key not in _CLEAN:
        with fresh_world(server, "clean") as w:
            w.pipeline(f"manual__clean_{key[0]}_{key[1]}", *key)
            _CLEAN[key] = w.snapshot()
    return _CLEAN[key]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
