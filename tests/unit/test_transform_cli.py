"""The transform CLI end to end on raw dirs built like extract's: files, summary, exit codes."""

import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_transform_rawinput import FETCHED_AT, entry, write_raw

from apod_common import exit_codes, layout, runner
from apod_common.schema import REJECTED_COLUMNS, STAGED_COLUMNS
from apod_transform.main import build_parser, main

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def transform(capsys, *args: str) -> tuple[int, dict, str]:
    code = runner.run("transform", main, list(args))
    out, err = capsys.readouterr()
    return code, json.loads(out.strip().splitlines()[-1]), err


def ten_days(bad: int = 0) -> list[dict]:
    days = [entry(f"2024-01-{d:02d}") for d in range(1, 11)]
    for i in range(bad):
        days[i]["media_type"] = "hologram"
    return days


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(autouse=True)
def _no_step_env(monkeypatch):
    for name in ("APOD_RUN_ID", "APOD_DATA_DIR", "APOD_MAX_REJECT_RATIO"):
        monkeypatch.delenv(name, raising=False)


def test_writes_staged_and_rejected_and_summarises(tmp_path, capsys):
    days = ten_days(bad=1)
    write_raw(tmp_path, "run-1", [days[:5], days[5:]])
    code, summary, err = transform(capsys, "--run-id", "run-1", "--data-dir", str(tmp_path))
    assert code == exit_codes.OK, err
    staged = layout.staged_batch(tmp_path, "run-1")
    rejected = layout.rejected_rows(tmp_path, "run-1")
    assert summary == {
        "step": "transform",
        "status": "ok",
        "run_id": "run-1",
        "staged": str(staged),
        "rejected_file": str(rejected),
        "rows": 9,
        "rejected": 1,
        "reject_reasons": {"unknown media_type": 1},
        "first_date": "2024-01-02",
        "last_date": "2024-01-10",
        "sha256": hashlib.sha256(staged.read_bytes()).hexdigest(),
    }
    data = staged.read_bytes()
    assert data.startswith(",".join(STAGED_COLUMNS).encode() + b"\n")
    assert b"\r" not in data
    rows = csv_rows(staged)
    assert [r["date"] for r in rows] == [f"2024-01-{d:02d}" for d in range(2, 11)]
    assert {r["run_id"] for r in rows} == {"run-1"}
    assert {r["extracted_at"] for r in rows} == {FETCHED_AT}
    assert rows[0]["thumbnail_url"] == ""
    assert rows[0]["copyright"] == ""
    assert csv_rows(rejected) == [
        {
            "date": "2024-01-01",
            "reason": "unknown media_type 'hologram'",
            "record": json.dumps(days[0], separators=(",", ":")),
        }
    ]
    assert "rejected 1: unknown media_type" in err
    assert oct(staged.stat().st_mode & 0o777) == "0o664"  # apod_common.files.FILE_MODE
    assert not [p for p in staged.parent.iterdir() if p.name.startswith(".")]


def test_rerun_gives_byte_identical_files(tmp_path, capsys):
    days = [*ten_days(bad=1), entry("2024-01-05", title="dup")]
    write_raw(tmp_path, "r", [days[:4], days[4:]])
    args = ("--run-id", "r", "--data-dir", str(tmp_path), "--max-reject-ratio", "0.5")
    staged = layout.staged_batch(tmp_path, "r")
    rejected = layout.rejected_rows(tmp_path, "r")
    first = transform(capsys, *args)
    assert (first[0], first[1]["rejected"]) == (0, 2)
    first_bytes = staged.read_bytes(), rejected.read_bytes()
    time.sleep(1.1)  # a wall-clock time leaking into the files would now differ
    second = transform(capsys, *args)
    assert first[1] == second[1]
    assert (staged.read_bytes(), rejected.read_bytes()) == first_bytes


def test_no_rejects_still_writes_a_header_only_rejected_file(tmp_path, capsys):
    write_raw(tmp_path, "r", [ten_days()])
    code, summary, _ = transform(capsys, "--run-id", "r", "--data-dir", str(tmp_path))
    assert code == 0
    assert summary["rejected"] == 0
    assert layout.rejected_rows(tmp_path, "r").read_bytes() == b"date,reason,record\n"
    assert ",".join(REJECTED_COLUMNS) == "date,reason,record"


def test_reject_ratio_at_the_threshold_passes(tmp_path, capsys):
    write_raw(tmp_path, "r", [ten_days(bad=1)])  # 1 of 10 = 10%, not above 10%
    code, summary, _ = transform(capsys, "--run-id", "r", "--data-dir", str(tmp_path))
    assert code == 0
    assert (summary["rows"], summary["rejected"]) == (9, 1)


def test_reject_ratio_above_the_threshold_fails_and_removes_a_stale_batch(tmp_path, capsys):
    write_raw(tmp_path, "r", [ten_days()])
    assert transform(capsys, "--run-id", "r", "--data-dir", str(tmp_path))[0] == 0
    staged = layout.staged_batch(tmp_path, "r")
    assert staged.exists()

    write_raw(tmp_path, "r", [ten_days(bad=2)])  # extract re-ran and got worse data
    code, summary, err = transform(capsys, "--run-id", "r", "--data-dir", str(tmp_path))
    rejected = layout.rejected_rows(tmp_path, "r")
    assert code == exit_codes.BAD_INPUT
    expected = f"2 of 10 rows rejected (> 10%); see {rejected}"
    assert summary["reason"] == expected
    assert summary["status"] == "failed"
    assert f"transform: {expected}" in err.splitlines()
    assert not staged.exists()
    assert len(csv_rows(rejected)) == 2


def test_threshold_from_argument_and_environment(tmp_path, capsys, monkeypatch):
    write_raw(tmp_path, "r", [ten_days(bad=3)])
    args = ("--run-id", "r", "--data-dir", str(tmp_path))
    assert transform(capsys, *args)[0] == exit_codes.BAD_INPUT
    assert transform(capsys, *args, "--max-reject-ratio", "0.3")[0] == 0
    monkeypatch.setenv("APOD_MAX_REJECT_RATIO", "0.25")
    code, summary, _ = transform(capsys, *args)
    assert code == exit_codes.BAD_INPUT
    assert "(> 25%)" in summary["reason"]
    assert transform(capsys, *args, "--max-reject-ratio", "1")[0] == 0


def test_zero_threshold_tolerates_no_reject(tmp_path, capsys):
    write_raw(tmp_path, "r", [ten_days(bad=1)])
    code, summary, _ = transform(
        capsys, "--run-id", "r", "--data-dir", str(tmp_path), "--max-reject-ratio", "0"
    )
    assert code == exit_codes.BAD_INPUT
    assert "1 of 10 rows rejected (> 0%)" in summary["reason"]


def test_everything_rejected_under_ratio_one_stages_a_header(tmp_path, capsys):
    write_raw(tmp_path, "r", [["junk", 5]])
    code, summary, _ = transform(
        capsys, "--run-id", "r", "--data-dir", str(tmp_path), "--max-reject-ratio", "1"
    )
    assert code == 0
    assert (summary["rows"], summary["first_date"], summary["last_date"]) == (0, None, None)
    staged = layout.staged_batch(tmp_path, "r")
    assert staged.read_text() == ",".join(STAGED_COLUMNS) + "\n"


@pytest.mark.parametrize("value", ["-0.1", "1.5", "nan", "ten"])
def test_bad_ratio_argument_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["--max-reject-ratio", value])
    assert caught.value.code == exit_codes.USAGE
    assert "must be a number from 0 to 1" in capsys.readouterr().err


def test_bad_ratio_environment_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("APOD_MAX_REJECT_RATIO", "lots")
    code, summary, _ = transform(capsys, "--run-id", "r", "--data-dir", str(tmp_path))
    assert code == exit_codes.USAGE
    assert summary["reason"].startswith("APOD_MAX_REJECT_RATIO must be a number")


def test_run_id_and_data_dir_from_environment(tmp_path, capsys, monkeypatch):
    write_raw(tmp_path, "from-env", [ten_days()])
    monkeypatch.setenv("APOD_RUN_ID", "from-env")
    monkeypatch.setenv("APOD_DATA_DIR", str(tmp_path))
    code, summary, _ = transform(capsys)
    assert code == 0
    assert summary["run_id"] == "from-env"
    assert summary["staged"] == str(layout.staged_batch(tmp_path, "from-env"))


def test_empty_manifest_is_nothing_to_do(tmp_path, capsys):
    write_raw(tmp_path, "r", [])
    code, summary, err = transform(capsys, "--run-id", "r", "--data-dir", str(tmp_path))
    assert code == exit_codes.NOTHING_TO_DO == 99
    assert summary["status"] == "skipped"
    assert "lists no entries" in err
    assert not layout.staging_dir(tmp_path, "r").exists()


def test_missing_manifest_is_bad_input(tmp_path, capsys):
    code, summary, err = transform(
        capsys, "--run-id", "never-extracted", "--data-dir", str(tmp_path)
    )
    assert code == exit_codes.BAD_INPUT
    assert "no manifest at" in summary["reason"]
    assert len([line for line in err.splitlines() if line.startswith("transform: ")]) == 1


def test_corrupt_chunk_is_bad_input_and_writes_nothing(tmp_path, capsys):
    write_raw(tmp_path, "r", [ten_days(), b'[{"date": "2024-01-11",'])
    code, summary, _ = transform(capsys, "--run-id", "r", "--data-dir", str(tmp_path))
    assert code == exit_codes.BAD_INPUT
    assert "is not valid JSON" in summary["reason"]
    assert not layout.staging_dir(tmp_path, "r").exists()


def run_module(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join(str(REPO / "images" / p) for p in ("common", "transform"))
    return subprocess.run(
        [sys.executable, "-m", "apod_transform", *args],
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_help_documents_the_contract_without_importing_pandas():
    # What --help costs is the bench's (docs/BENCHMARKS.md, images); here: no pandas.
    result = run_module("--help")
    assert result.returncode == 0
    for text in ("--run-id", "--data-dir", "--max-reject-ratio", "APOD_MAX_REJECT_RATIO", "99"):
        assert text in result.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, apod_transform.main; print('pandas' in sys.modules)"],
        env={**os.environ, "PYTHONPATH": f"{REPO}/images/common:{REPO}/images/transform"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "False"


def test_module_run_prints_the_summary_last_and_logs_to_stderr(tmp_path):
    write_raw(tmp_path, "r", [ten_days(bad=1)])
    result = run_module("--run-id", "r", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["rows"] == 9
    assert "rejected 1: unknown media_type" in result.stderr
