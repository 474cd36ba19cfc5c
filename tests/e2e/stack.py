"""Helpers for tests on the compose stack: compose commands, REST runs, queries."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
from support.services import REPO, image

DEMO_DATE = "2024-01-15"
DAG_ID = "apod_etl"
UI_URL = "http://127.0.0.1:8080"
UP_TIMEOUT = 1800


def compose(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    """`docker compose` on this checkout's file, every profile visible."""
    command = '. scripts/compose-lib.sh && COMPOSE_PROFILES=offline compose "$@"'
    return subprocess.run(
        ["bash", "-c", command, "compose", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


def env_file() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env").read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip()
    return values


@dataclass
class Stack:
    up_seconds: float
    demo: dict
    env: dict[str, str] = field(repr=False)  # secrets: never printed

    def run_dag(self, start: str, end: str | None = None, timeout: int = 1200) -> dict:
        """Trigger apod_etl through the REST API and follow it; the run's JSON summary."""
        args = ["run", DAG_ID, "--start", start] + (["--end", end] if end else [])
        result = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "airflow_api.py"), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        lines = result.stdout.strip().splitlines()
        if not lines:
            pytest.fail(
                f"airflow_api.py run gave no summary (exit {result.returncode}):\n"
                f"{result.stderr[-3000:]}"
            )
        summary = json.loads(lines[-1])
        summary["exit_code"] = result.returncode
        summary["log"] = result.stderr
        return summary

    def psql(self, sql: str, database: str = "apod") -> list[list[str]]:
        """Rows of a query as the superuser, over the container's local socket."""
        result = compose(
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
                "apod-data:/data:ro",
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
