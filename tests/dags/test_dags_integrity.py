"""Every DAG file parses cleanly, quickly, and carries what operations relies on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.dags

REPO = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO / "dags"
DAG_FILES = sorted(DAGS_DIR.glob("*.py"))

EXPECTED_DAG_IDS = {"apod_etl.py": "apod_etl", "apod_etl_k8s.py": "apod_etl_k8s"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=DAGS_DIR, bundle_path=DAGS_DIR)


def test_the_dag_files_are_the_expected_ones():
    assert [p.name for p in DAG_FILES] == sorted(EXPECTED_DAG_IDS)


def test_dagbag_has_no_import_errors_and_only_the_dag_files(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == set(EXPECTED_DAG_IDS.values())
    # .airflowignore keeps the helper package out of DAG discovery.
    assert sorted(Path(s.file).name for s in dagbag.dagbag_stats) == sorted(EXPECTED_DAG_IDS)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_defines_its_dag_with_tags_owner_and_retries(dagbag, path):
    dag = dagbag.dags.get(EXPECTED_DAG_IDS[path.name])
    assert dag is not None
    assert Path(dag.fileloc).name == path.name
    assert "apod" in dag.tags
    assert "start_date" in (dag.doc_md or "")
    for task in dag.tasks:
        assert task.owner == "apod", task.task_id
        assert task.retries >= 1, task.task_id
        assert task.execution_timeout is not None, task.task_id


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_is_thin(path):
    """No I/O, no connections, no Variables at parse time: only a renderer is picked."""
    source = path.read_text()
    for forbidden in ("open(", "Variable", "Connection", "get_connection", "requests", "psycopg"):
        assert forbidden not in source, forbidden
    assert len(source.splitlines()) < 20
    # The DAG processor's safe mode parses only files that mention both words.
    assert "airflow" in source.lower()
    assert "dag" in source.lower()


# What a DAG file may import on top of the pre-imported modules: its own package, and
# what Airflow itself loads lazily for its schedule (croniter) and its assets.
ALLOWED_AT_PARSE = {"airflow", "apod_pipeline", "croniter"}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_nothing_heavy_in_a_fresh_interpreter(path, tmp_path):
    """The file's own cost, on top of what the DAG processor has imported already, counted
    in packages (no clock): the standard library, Airflow and apod_pipeline only.

    The DAG processor pre-imports the airflow modules a DAG file uses before it forks a
    parser ([dag_processor] parsing_pre_import_modules), so those are imported first.
    """
    code = f"""
import json, sys, runpy
import airflow.sdk
import airflow.providers.docker.operators.docker
import airflow.providers.cncf.kubernetes.operators.pod
sys.path.insert(0, {str(DAGS_DIR)!r})
before = set(sys.modules)
namespace = runpy.run_path({str(path)!r})
packages = sorted({{m.split(".")[0] for m in set(sys.modules) - before}})
print(json.dumps({{"packages": packages, "dag_id": namespace["dag"].dag_id}}))
"""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["dag_id"] == EXPECTED_DAG_IDS[path.name]
    heavy = set(report["packages"]) - ALLOWED_AT_PARSE - sys.stdlib_module_names
    assert not heavy, f"{path.name} imports {sorted(heavy)} when it is parsed"


def test_image_tag_default_is_the_version_file():
    from apod_pipeline.settings import Settings

    assert Settings().image_tag == (REPO / "VERSION").read_text().strip()


def test_without_a_checkout_the_image_tag_comes_from_the_environment(tmp_path):
    """dags/ as the Airflow image holds it: no VERSION file beside it, APOD_IMAGE_TAG set."""
    shutil.copytree(DAGS_DIR / "apod_pipeline", tmp_path / "dags" / "apod_pipeline")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from apod_pipeline.settings import Settings;"
        'print(Settings.from_env().image("load"))'
    )

    def settle(**env):
        return subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "dags")],
            env={"PATH": os.environ["PATH"], **env},
            capture_output=True,
            text=True,
            check=False,
        )

    baked = settle(APOD_IMAGE_TAG="1.2.3")
    assert baked.returncode == 0, baked.stderr
    assert baked.stdout.strip() == "apod-load:1.2.3"
    neither = settle()
    assert neither.returncode != 0
    assert "APOD_IMAGE_TAG is not set" in neither.stderr


def test_exit_codes_match_the_steps():
    from apod_common import exit_codes as steps_codes
    from apod_pipeline import exit_codes

    for name in ("USAGE", "BAD_INPUT", "UPSTREAM_REFUSED", "UPSTREAM_UNAVAILABLE", "NOTHING_TO_DO"):
        assert getattr(exit_codes, name) == getattr(steps_codes, name), name
    assert steps_codes.UPSTREAM_UNAVAILABLE not in exit_codes.NOT_RETRYABLE


def test_paths_and_run_id_match_the_steps():
    from apod_common import layout, settings
    from apod_pipeline import by_hand, steps

    assert steps.DATA_CSV == layout.CSV_NAME
    assert steps.DATA.path == settings.DEFAULT_DATA_DIR
    assert by_hand.DEFAULT_RUN_ID == settings.DEFAULT_RUN_ID


def test_settings_come_from_the_interface_variables():
    from apod_pipeline.settings import ENV_NAMES, PARSERS, Settings

    assert Settings.from_env({}) == Settings()
    defaults = Settings()
    assert (
        defaults.api_url,
        defaults.docker_url,
        defaults.docker_network,
        defaults.data_volume,
        defaults.dvc_volume,
        defaults.k8s_namespace,
        defaults.extract_concurrency,
    ) == (
        "https://api.nasa.gov/planetary/apod",
        "unix://var/run/docker.sock",
        "apod-net",
        "apod-data",
        "apod-dvc-remote",
        "apod",
        None,
    )
    # A text each parsed setting accepts, and what it becomes.
    parsed = {
        "extract_concurrency": ("7", 7),
        "alert_late_after": ("90m", timedelta(minutes=90)),
        "image_registry": ("registry.example.com:5000/apod/", "registry.example.com:5000/apod"),
        "image_tags": ("extract=1.0,load=1.0-k8s.1", (("extract", "1.0"), ("load", "1.0-k8s.1"))),
        "k8s_pod_start_timeout": ("7", 7),
        "k8s_failed_pods_kept": ("0", 0),
    }
    assert set(parsed) == set(PARSERS)
    texts = {var: f"value-of-{var}" for var in ENV_NAMES.values()}
    environ = texts | {ENV_NAMES[name]: text for name, (text, _) in parsed.items()}
    overridden = Settings.from_env(environ)
    for name, var in ENV_NAMES.items():
        expected = parsed[name][1] if name in PARSERS else f"value-of-{var}"
        assert getattr(overridden, name) == expected, name
    # Empty means unset, as in a compose file's `${VAR:-}`.
    assert Settings.from_env(dict.fromkeys(ENV_NAMES.values(), "")) == Settings()


@pytest.mark.parametrize("text", ["0", "-2", "four", "1.5"])
def test_a_bad_extract_concurrency_names_its_variable(text):
    from apod_pipeline.settings import Settings

    with pytest.raises(ValueError, match="APOD_EXTRACT_CONCURRENCY"):
        Settings.from_env({"APOD_EXTRACT_CONCURRENCY": text})


@pytest.mark.parametrize(
    ("deployment", "expected"),
    [
        ("compose", {"apod_etl"}),
        ("kubernetes", {"apod_etl_k8s"}),
        ("", set(EXPECTED_DAG_IDS.values())),
    ],
)
def test_each_deployment_parses_only_its_own_dag(monkeypatch, deployment, expected):
    """APOD_DEPLOYMENT (docker-compose.yml: compose; k8s/base/airflow/kubernetes.env:
    kubernetes) picks the DAG; the other file defines none and is no import error."""
    from airflow.dag_processing.dagbag import BundleDagBag

    monkeypatch.setenv("APOD_DEPLOYMENT", deployment)
    bag = BundleDagBag(dag_folder=DAGS_DIR, bundle_path=DAGS_DIR)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == expected


def test_a_deployment_that_names_none_is_an_import_error(monkeypatch):
    from airflow.dag_processing.dagbag import BundleDagBag

    monkeypatch.setenv("APOD_DEPLOYMENT", "swarm")
    bag = BundleDagBag(dag_folder=DAGS_DIR, bundle_path=DAGS_DIR)
    assert set(bag.dag_ids) == set()
    assert all("APOD_DEPLOYMENT" in error for error in bag.import_errors.values())
    assert len(bag.import_errors) == 2


def test_the_deployments_name_their_dags_where_they_run():
    """compose says `compose`, the Kubernetes ConfigMap `kubernetes`."""
    import yaml

    from apod_pipeline.deployment import COMPOSE, ENV, KUBERNETES

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert compose["x-airflow-common"]["environment"][ENV] == COMPOSE
    k8s_env = (REPO / "k8s" / "base" / "airflow" / "kubernetes.env").read_text()
    assert f"{ENV}={KUBERNETES}" in k8s_env.splitlines()
