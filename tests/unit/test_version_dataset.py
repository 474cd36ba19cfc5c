"""Rows, md5 and size the version step reports."""

from pathlib import Path

import pytest

from apod_common.errors import StepError
from apod_version.dvcfile import parse_dvc_file
from apod_version.message import count_rows

pytestmark = pytest.mark.unit

DVC_FILE = """\
outs:
- md5: 2d479d5294cfd9db9d66312bffa7dc29
  size: 28
  hash: md5
  path: apod_data.csv
"""


def test_rows_count_records_not_lines(tmp_path: Path):
    csv = tmp_path / "apod_data.csv"
    csv.write_text(
        'date,title,explanation\n2024-01-01,"A, B","line one\nline two"\n2024-01-02,C,D\n',
        encoding="utf-8",
    )
    assert count_rows(csv) == 2


@pytest.mark.parametrize(("text", "rows"), [("", 0), ("date,title\n", 0), ("date\nx", 1)])
def test_rows_of_small_files(tmp_path: Path, text, rows):
    csv = tmp_path / "apod_data.csv"
    csv.write_text(text, encoding="utf-8")
    assert count_rows(csv) == rows


def test_long_fields_are_counted(tmp_path: Path):
    csv = tmp_path / "apod_data.csv"
    csv.write_text("date,explanation\n2024-01-01," + "x" * 300_000 + "\n", encoding="utf-8")
    assert count_rows(csv) == 1


@pytest.mark.parametrize(
    "text", ['date,title\n2024-01-01,"cut short\n', 'date,title\n2024-01-01,"a"b\n']
)
def test_malformed_csv_is_bad_input(tmp_path: Path, text):
    csv = tmp_path / "apod_data.csv"
    csv.write_text(text, encoding="utf-8")
    with pytest.raises(StepError) as err:
        count_rows(csv)
    assert err.value.code == 3


def test_parse_dvc_file():
    out = parse_dvc_file(DVC_FILE)
    assert out.md5 == "2d479d5294cfd9db9d66312bffa7dc29"
    assert out.size == 28


@pytest.mark.parametrize("text", ["", "outs: []\n", "outs:\n- size: 3\n  path: x\n", "[1, 2]\n"])
def test_parse_dvc_file_rejects_what_dvc_add_never_writes(text):
    with pytest.raises(ValueError, match=r"outs|md5"):
        parse_dvc_file(text)
