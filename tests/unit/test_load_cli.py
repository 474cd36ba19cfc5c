"""Arguments, the staged batch's checks and the database target, without a database."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apod_common import exit_codes, layout, redaction, staging
from apod_common.errors import StepError
from apod_common.schema import STAGED_COLUMNS
from apod_load import database
from apod_load.main import build_parser, main
from apod_load.names import parse_role, parse_table

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
HEADER = ",".join(STAGED_COLUMNS)
ROW = "2024-01-01,T,E,image,u,h,,,v1,r1,2024-01-02T00:00:00+00:00"


def stage(tmp_path, text: str, run_id: str = "r1"):
    path = layout.staged_batch(tmp_path, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text", ["apod.apod_entries", "s.t", "_x._y1"])
def test_table_names_accepted(text):
    assert str(parse_table(text)) == text


@pytest.mark.parametrize(
    "text", ["apod_entries", "apod.", ".t", "Apod.t", 'a."b"', "a.b;drop", "a.b.c", "a b.c"]
)
def test_table_names_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_table(text)


@pytest.mark.parametrize("text", ["Loader", "pg_loader", "a;b", "", "x" * 64])
def test_role_names_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_role(text)


def test_bad_table_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["postgres", "--table", "nope"])
    assert exit_info.value.code == exit_codes.USAGE


def test_missing_staged_batch_is_bad_input(tmp_path):
    for command in ("postgres", "csv"):
        with pytest.raises(StepError) as error:
            main([command, "--run-id", "absent", "--data-dir", str(tmp_path)])
        assert error.value.code == exit_codes.BAD_INPUT
        assert "does not exist" in error.value.reason
        assert "\n" not in error.value.reason


def test_header_only_batch_is_nothing_to_do(tmp_path):
    stage(tmp_path, HEADER + "\n")
    for command in ("postgres", "csv"):
        with pytest.raises(StepError) as error:
            main([command, "--run-id", "r1", "--data-dir", str(tmp_path)])
        assert error.value.code == exit_codes.NOTHING_TO_DO


def test_header_columns_may_come_in_any_order(tmp_path):
    columns = tuple(reversed(STAGED_COLUMNS))
    stage(tmp_path, ",".join(columns) + "\n" + ROW + "\n")
    assert staging.locate(tmp_path, "r1").columns == columns


@pytest.mark.parametrize(
    "header",
    [HEADER.replace("title", "name"), HEADER + ",extra", "\ufeff" + HEADER, HEADER + ",title"],
)
def test_unexpected_header_is_bad_input(tmp_path, header):
    stage(tmp_path, header + "\n" + ROW + "\n")
    with pytest.raises(StepError) as error:
        staging.locate(tmp_path, "r1")
    assert error.value.code == exit_codes.BAD_INPUT


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("2024-02-30,T,E,image,u,h,,,v1,r1,x", "1 row(s) with invalid date, e.g. '2024-02-30'"),
        ("2024-1-05,T,E,image,u,h,,,v1,r1,x", "invalid date"),
        ("2024-01-01,T,E,gif,u,h,,,v1,r1,x", "1 row(s) with unknown media_type, e.g. 'gif'"),
        ("2024-01-01,,E,image,u,h,,,v1,r1,x", "1 row(s) with missing title"),
        (",T,E,image,u,h,,,v1,r1,x", "1 row(s) with missing date"),
        (",T,E,,u,h,,,v1,r1,x", "missing date; 1 row(s) with missing media_type"),
    ],
)
def test_csv_refuses_what_the_table_would_refuse(tmp_path, row, problem):
    stage(tmp_path, HEADER + "\n" + row + "\n")
    with pytest.raises(StepError) as error:
        main(["csv", "--run-id", "r1", "--data-dir", str(tmp_path)])
    assert error.value.code == exit_codes.BAD_INPUT
    assert problem in error.value.reason
    assert not (tmp_path / "apod_data.csv").exists()


def test_csv_refuses_a_foreign_existing_dataset(tmp_path):
    stage(tmp_path, HEADER + "\n" + ROW + "\n")
    (tmp_path / "apod_data.csv").write_text("a,b\n1,2\n")
    with pytest.raises(StepError) as error:
        main(["csv", "--run-id", "r1", "--data-dir", str(tmp_path)])
    assert error.value.code == exit_codes.BAD_INPUT
    assert (tmp_path / "apod_data.csv").read_text() == "a,b\n1,2\n"


def test_csv_takes_what_the_table_takes(tmp_path):
    # Rules the table does not enforce (a date before the first APOD, an image without
    # url) are transform's to apply: the two stores must accept the same batches.
    stage(tmp_path, HEADER + "\n" + "1990-01-01,T,E,image,,,,,v1,r1,x\n")
    summary = main(["csv", "--run-id", "r1", "--data-dir", str(tmp_path)])
    assert summary["rows"] == 1


def test_target_from_url_knows_where_and_the_redactor_knows_the_password(monkeypatch):
    monkeypatch.setenv("APOD_DATABASE_URL", "postgresql://loader:Hunter2%40x@db.example:6543/apod")
    target = database.target_from_env()
    assert str(target) == "db.example:6543/apod"
    assert target.user == "loader"
    assert "Hunter2" not in str(target)
    assert redaction.redact("libpq said Hunter2@x") == "libpq said ***"


def test_target_from_url_file(monkeypatch, tmp_path):
    secret = tmp_path / "url"
    secret.write_text("postgresql://loader:pw123456@h:1/d\n")
    monkeypatch.delenv("APOD_DATABASE_URL", raising=False)
    monkeypatch.setenv("APOD_DATABASE_URL_FILE", str(secret))
    target = database.target_from_env()
    assert (str(target), target.conninfo) == ("h:1/d", "postgresql://loader:pw123456@h:1/d")


def test_target_from_libpq_variables(monkeypatch):
    monkeypatch.delenv("APOD_DATABASE_URL", raising=False)
    monkeypatch.delenv("APOD_DATABASE_URL_FILE", raising=False)
    monkeypatch.setenv("PGHOST", "pg.internal")
    monkeypatch.setenv("PGPORT", "5439")
    monkeypatch.setenv("PGUSER", "someone")
    monkeypatch.delenv("PGDATABASE", raising=False)
    monkeypatch.setenv("PGPASSWORD", "pw-from-env")
    target = database.target_from_env()
    assert (str(target), target.conninfo) == ("pg.internal:5439/someone", "")


def test_unparsable_url_is_a_usage_error_that_does_not_echo_it(monkeypatch):
    monkeypatch.setenv("APOD_DATABASE_URL", "postgresql://u:topsecret@h:notaport/db?x")
    with pytest.raises(StepError) as error:
        database.target_from_env()
    assert error.value.code in (exit_codes.USAGE, exit_codes.UPSTREAM_UNAVAILABLE)
    assert "topsecret" not in error.value.reason


def test_usage_needs_no_driver_and_the_postgres_load_no_pandas():
    """The CLI boundary: argument checks import neither psycopg nor pandas; the Postgres
    load (which hands the file to COPY as it is) imports no pandas."""
    code = (
        "import sys, apod_load.main; print(sorted({'psycopg', 'pandas'} & set(sys.modules)));"
        "import apod_load.upsert, apod_load.database; print('pandas' in sys.modules)"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": f"{REPO}/images/common:{REPO}/images/load"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.split("\n")[:2] == ["[]", "False"]
