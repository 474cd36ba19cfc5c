"""images/airflow/log_groomer.py (apod-log-groomer, the logs volumes' sidecar on
Kubernetes): what it deletes and what it leaves, on files aged by hand."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SCRIPT = Path(__file__).resolve().parents[2] / "images" / "airflow" / "log_groomer.py"
DAY = 86400


def groomer():
    spec = importlib.util.spec_from_file_location("log_groomer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def aged(path: Path, days: float, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    when = time.time() - days * DAY
    os.utime(path, (when, when))
    return path


def test_old_files_and_the_folders_they_leave_go_fresh_ones_stay(tmp_path):
    run = tmp_path / "dag_id=apod_etl_k8s" / "run_id=old" / "task_id=extract"
    old = aged(run / "attempt=1.log", 20)
    fresh = aged(
        tmp_path / "dag_id=apod_etl_k8s" / "run_id=new" / "task_id=extract" / "attempt=1.log", 1
    )
    parse = aged(tmp_path / "dag_processor" / "2024-01-01" / "apod_etl_k8s.py.log", 16)
    # A folder Airflow has just made for a log it is about to open stays, empty or not.
    just_made = tmp_path / "dag_id=apod_etl_k8s" / "run_id=starting"
    just_made.mkdir(parents=True)
    # The scheduler's `latest` link is no file of its own.
    latest = tmp_path / "scheduler" / "latest"
    latest.parent.mkdir()
    latest.symlink_to(tmp_path / "scheduler" / "gone")
    os.utime(latest, (0, 0), follow_symlinks=False)

    files, folders = groomer().sweep(tmp_path, 15)

    assert not old.exists()
    assert not run.exists()
    assert not run.parent.exists()
    assert not parse.exists()
    assert not parse.parent.exists()
    assert fresh.exists()
    assert just_made.is_dir()
    assert latest.is_symlink()
    assert tmp_path.is_dir()
    assert (files, folders) == (2, 4)


@pytest.mark.parametrize("value", ["", "0", "-3", "two weeks"])
def test_a_missing_or_bad_retention_is_refused(tmp_path, value):
    env = {**os.environ, "APOD_LOG_RETENTION_DAYS": value}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--once"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "APOD_LOG_RETENTION_DAYS" in result.stderr


def test_one_sweep_says_what_it_removed(tmp_path):
    aged(tmp_path / "a" / "b.log", 3)
    env = {**os.environ, "APOD_LOG_RETENTION_DAYS": "2"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--once"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"apod-log-groomer: {tmp_path}: removed 1 file(s) and 1 empty folder(s) older than 2 day(s)"
    )
