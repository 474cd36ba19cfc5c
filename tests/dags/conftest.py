"""DAG tier: Airflow is imported, nothing is started. AIRFLOW_HOME is a throwaway folder
so that parsing never writes an airflow.cfg into the user's home."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO / "dags"

# Before the first `import airflow` of the session (test modules import it lazily).
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="apod-dags-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_DIR))


@pytest.fixture
def docker_dag():
    from apod_pipeline import docker
    from apod_pipeline.settings import Settings

    return docker.dag(Settings())


@pytest.fixture
def k8s_dag():
    from apod_pipeline import kubernetes
    from apod_pipeline.settings import Settings

    return kubernetes.dag(Settings())


@pytest.fixture
def no_connections(monkeypatch):
    """Neither APOD connection is defined, whatever the caller's environment holds."""
    monkeypatch.delenv("AIRFLOW_CONN_APOD_NASA_API", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_APOD_DB", raising=False)
