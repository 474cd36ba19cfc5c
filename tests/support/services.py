"""Real services for the tests: the APOD test server, a fresh Postgres database, Docker.

They are scripts/apod_tools' (the bench uses them too); here a service that cannot be
had skips the test with the reason instead (CI turns skips into failures).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from apod_tools import postgres
from apod_tools.docker import (
    docker,
    docker_available,
    docker_volume,
    image_exists,
    volume_cat,
    volume_git,
)
from apod_tools.postgres import Database
from apod_tools.project import REPO, SAMPLE_FIXTURES, STEP_IMAGES, VERSION, image
from apod_tools.testserver import TestServer, apod_test_server

__all__ = [
    "REPO",
    "SAMPLE_FIXTURES",
    "STEP_IMAGES",
    "VERSION",
    "Database",
    "TestServer",
    "apod_test_server",
    "docker",
    "docker_available",
    "docker_volume",
    "fresh_database",
    "image",
    "pg_admin_env",
    "require_images",
    "superuser",
    "volume_cat",
    "volume_git",
]


@contextlib.contextmanager
def _skipped_when_unavailable() -> Iterator[None]:
    try:
        yield
    except postgres.Unavailable as exc:
        pytest.skip(str(exc))


def pg_admin_env() -> dict[str, str]:
    """libpq variables of the throwaway test server (scripts/ensure-test-postgres.sh)."""
    with _skipped_when_unavailable():
        return postgres.admin_env()


def superuser(dbname: str = "postgres"):
    """An autocommit connection as the test server's superuser."""
    with _skipped_when_unavailable():
        return postgres.superuser(dbname)


@contextlib.contextmanager
def fresh_database(prefix: str = "apod_test") -> Iterator[Database]:
    """A new database owned by a new login role with a random password; dropped after."""
    with contextlib.ExitStack() as stack:
        with _skipped_when_unavailable():
            db = stack.enter_context(postgres.fresh_database(prefix))
        yield db


def require_images(*names: str) -> None:
    if not docker_available():
        pytest.skip("no Docker engine answers (make test starts one)")
    for name in names:
        if not image_exists(image(name)):
            pytest.skip(f"{image(name)} not built (make images)")
