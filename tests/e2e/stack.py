"""A compose stack of the tests' own, beside any other: its project name, ports, volumes
and network come from an env file of its own (scripts/compose-lib.sh's APOD_ENV_FILE),
so a stack the user started is never reused, changed or stopped."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from support.objectstore import ObjectStore
from support.services import REPO, image

sys.path.insert(0, str(REPO / "scripts"))
import airflow_api  # scripts/ is no package
import deploy_env

DEMO_DATE = "2024-01-15"
DAG_ID = "apod_etl"
UP_TIMEOUT = 1800
CSV, DVC_FILE = "apod_data.csv", "apod_data.csv.dvc"


# The stack's alerts go to its own alert catcher (compose service alertcatcher, profile
# alerts), as `.env` settings: what an operator writes to send them to a mail server and a
# webhook of their own.
ALERTS = {
    "COMPOSE_PROFILES": "offline,alerts",
    "APOD_ALERT_WEBHOOK_URL": "http://alertcatcher:8025/hooks/e2e",
    "APOD_ALERT_EMAIL_TO": "night-ops@example.org",
    "APOD_SMTP_HOST": "alertcatcher",
    "APOD_SMTP_PORT": "1025",
    "APOD_SMTP_SECURITY": "none",
}


def new_env_file(path: Path) -> Path:
    """The settings of a fresh stack; scripts/compose-env.sh adds the secrets."""
    deploy_env.new_stack(path, "apod-e2e", **ALERTS)
    return path


@dataclass
class Stack:
    env_file: Path
    up_seconds: float = 0.0
    demo: dict = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:  # secrets: never printed
        return deploy_env.read_env(self.env_file)

    @property
    def project(self) -> str:
        return self.env["APOD_COMPOSE_PROJECT"]

    @property
    def network(self) -> str:
        return self.env["APOD_DOCKER_NETWORK"]

    @property
    def volumes(self) -> list[str]:
        env = self.env
        names = ("APOD_PGDATA_VOLUME", "APOD_DATA_VOLUME", "APOD_OBJECTSTORE_VOLUME")
        return [env[n] for n in names]

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.env['APOD_UI_PORT']}"

    def alerts(self, event: str | None = None) -> list[dict]:
        """What the stack's alert catcher caught, oldest first (`event`: subjects holding it)."""
        url = f"http://127.0.0.1:{self.env['APOD_ALERTS_PORT']}/messages"
        caught = requests.get(url, timeout=10).json()
        return [c for c in caught if event is None or event in c["subject"]]

    def object_store(self) -> ObjectStore:
        """The stack's S3 store as the host reaches it: its published port, the stack's key."""
        env = self.env
        return ObjectStore(
            container=self.compose("ps", "-q", "objectstore").stdout.strip(),
            volume=env["APOD_OBJECTSTORE_VOLUME"],
            endpoint=f"http://127.0.0.1:{env['APOD_S3_PORT']}",
            access_key=env["APOD_S3_ACCESS_KEY_ID"],
            secret_key=env["APOD_S3_SECRET_ACCESS_KEY"],
        )

    def script_env(self) -> dict[str, str]:
        """The tests' environment, pointed at this stack's env file and nothing else."""
        return deploy_env.stack_environ(self.env_file)

    def _run(self, argv: list[str], timeout: int, check: bool) -> subprocess.CompletedProcess:
        return subprocess.run(
            argv,
            cwd=REPO,
            env=self.script_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def script(self, name: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        return self._run([str(REPO / "scripts" / name), *args], timeout, check=False)

    def compose(self, *args: str, check: bool = True, timeout: int = 300):
        """`docker compose` on this stack, every profile visible."""
        command = '. scripts/compose-lib.sh && COMPOSE_PROFILES=offline,alerts compose "$@"'
        return self._run(["bash", "-c", command, "compose", *args], timeout, check)

    def api(self) -> airflow_api.Airflow:
        return airflow_api.Airflow(self.ui_url, "admin", self.env["AIRFLOW_ADMIN_PASSWORD"])

    def run_dag(self, start: str, end: str | None = None, timeout: int = 1200) -> dict:
        """Trigger apod_etl as `make run` does and follow it; the run's JSON summary."""
        result = self.script("compose-run.sh", start, *([end] if end else []), timeout=timeout)
        lines = result.stdout.strip().splitlines()
        if not lines:
            pytest.fail(
                f"compose-run.sh gave no summary (exit {result.returncode}):\n"
                f"{result.stderr[-3000:]}"
            )
        summary = json.loads(lines[-1])
        summary["exit_code"] = result.returncode
        summary["log"] = result.stderr
        return summary

    def psql(self, sql: str, database: str = "apod") -> list[list[str]]:
        """Rows of a query as the superuser, over the container's local socket."""
        result = self.compose(
            "exec",
            "-T",
            "postgres",
            "psql",
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-AtF",
            "\t",
            "-c",
            sql,
        )
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def in_data_volume(self, *command: str) -> str:
        """Run a command (git, cat, ...) in the version image with the data volume at /data."""
        entrypoint, *args = command
        result = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                f"{self.env['APOD_DATA_VOLUME']}:/data:ro",
                "--entrypoint",
                entrypoint,
                image("version"),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return result.stdout

    def commits_of_dvc_file(self) -> list[str]:
        out = self.in_data_volume(
            "git", "-C", "/data", "log", "--format=%H %s", "--", "apod_data.csv.dvc"
        )
        return out.splitlines()


# --- a data volume the steps ran on (the stack's, or one of a test's own) ------------------


def volume_file(volume: str, name: str) -> bytes:
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"{volume}:/v:ro",
         "--entrypoint", "cat", image("version"), f"/v/{name}"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip


def seed_volume(volume: str, content: bytes) -> None:
    """The CSV the compose stack held before its run, as a by-hand run's starting point."""
    subprocess.run(
        ["docker", "run", "-i", "--rm", "--network", "none", "-v", f"{volume}:/data",
         "--entrypoint", "sh", image("version"), "-c", f"cat > /data/{CSV}"],
        input=content, capture_output=True, check=True,
    )  # fmt: skip


def dvc_md5(dvc_file: bytes) -> str:
    match = re.search(rb"md5: ([0-9a-f]{32})", dvc_file)
    assert match, dvc_file
    return match.group(1).decode()
