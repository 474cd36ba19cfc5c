"""The version CLI: arguments, defaults, fast --help, early failures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apod_version.main import build_parser

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join(str(REPO / "images" / p) for p in ("common", "version"))
    return subprocess.run(
        [sys.executable, "-m", "apod_version", *args],
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_parser_defaults():
    args = build_parser().parse_args([])
    assert args.lock_timeout == 300
    assert args.init_repo is None
    assert args.no_push is False
    assert args.csv is None
    assert args.repo is None


def test_help_does_not_import_dvc():
    # What --help costs is the bench's (docs/BENCHMARKS.md, images); here: no dvc.
    result = run_cli("--help")
    assert result.returncode == 0
    assert "--init-repo" in result.stdout
    assert "APOD_DVC_REMOTE" in result.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, apod_version.main; print('dvc' in sys.modules)",
        ],
        env={**os.environ, "PYTHONPATH": f"{REPO}/images/common:{REPO}/images/version"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "False"


def test_missing_csv_is_exit_3(tmp_path: Path):
    result = run_cli("--run-id", "r", "--csv", str(tmp_path / "apod_data.csv"))
    assert result.returncode == 3
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "failed"
    assert "not found" in summary["reason"]


def test_bad_lock_timeout_is_a_usage_error():
    assert run_cli("--lock-timeout", "soon").returncode == 2
