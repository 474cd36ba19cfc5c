"""The per-tier report that .ci/run prints agrees with pytest's own closing line, and keeps
each tier's and each test's seconds for the next run to compare with."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SUITE_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def test_report_counts_match_pytest_closing_line(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "unit").mkdir(parents=True)
    (tests / "dags").mkdir()
    (tests / "conftest.py").write_text(SUITE_CONFTEST.read_text(encoding="utf-8"), "utf-8")
    (tests / "unit" / "test_a.py").write_text(
        "import pytest\n"
        "def test_one(): pass\n"
        "def test_two(): pass\n"
        "@pytest.mark.skip(reason='on purpose')\n"
        "def test_three(): pass\n",
        "utf-8",
    )
    (tests / "dags" / "test_b.py").write_text(
        "def test_fails(): assert False\ndef test_passes(): pass\n", "utf-8"
    )
    report = tmp_path / "report"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        env={"APOD_TEST_REPORT_DIR": str(report), "PATH": "/usr/bin:/bin", "CI": "false"},
        capture_output=True,
        text=True,
        check=False,
    )
    closing = run.stdout.strip().splitlines()[-1]
    assert re.search(r"1 failed, 3 passed, 1 skipped", closing), run.stdout
    data = json.loads((report / "summary.json").read_text("utf-8"))
    assert data["tiers"] == {
        "dags": {"failed": 1, "passed": 1},
        "unit": {"passed": 2, "skipped": 1},
    }
    assert data["exit_status"] == 1
    lines = (report / "summary.txt").read_text("utf-8").splitlines()
    assert lines[-1] == "total: 3 passed, 1 failed, 1 skipped"
    assert lines[0].split()[:2] == ["tier", "dags"]
    assert set(data["seconds"]) == {"dags", "unit"}
    assert all(line.endswith(" s") for line in lines[:-1])  # each tier's seconds
    # Every test's seconds are kept, the slowest first, for the next run to compare with.
    durations = json.loads((report / "durations.json").read_text("utf-8"))
    assert set(durations["tests"]) == {
        "tests/unit/test_a.py::test_one",
        "tests/unit/test_a.py::test_two",
        "tests/unit/test_a.py::test_three",
        "tests/dags/test_b.py::test_fails",
        "tests/dags/test_b.py::test_passes",
    }
    assert list(durations["tests"].values()) == sorted(durations["tests"].values(), reverse=True)
    assert durations["tiers"] == data["seconds"]
    slowest = (report / "slowest.txt").read_text("utf-8").splitlines()
    assert [line.split()[-1] for line in slowest] == list(durations["tests"])
    assert "was" not in (report / "summary.txt").read_text("utf-8")


def test_the_next_report_shows_the_previous_times(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "unit").mkdir(parents=True)
    (tests / "conftest.py").write_text(SUITE_CONFTEST.read_text(encoding="utf-8"), "utf-8")
    (tests / "unit" / "test_a.py").write_text("def test_one(): pass\n", "utf-8")
    report = tmp_path / "report"
    previous = tmp_path / "report.previous"
    previous.mkdir()
    (previous / "durations.json").write_text(
        json.dumps({"tiers": {"unit": 12.5}, "tests": {"tests/unit/test_a.py::test_one": 7.25}}),
        "utf-8",
    )
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        env={"APOD_TEST_REPORT_DIR": str(report), "PATH": "/usr/bin:/bin", "CI": "false"},
        capture_output=True,
        check=True,
    )
    assert "(was 12.5 s)" in (report / "summary.txt").read_text("utf-8")
    assert (
        (report / "slowest.txt")
        .read_text("utf-8")
        .rstrip()
        .endswith("tests/unit/test_a.py::test_one (was 7.2 s)")
    )


def test_ci_turns_a_skip_into_a_failure(tmp_path: Path) -> None:
    tests = tmp_path / "tests" / "unit"
    tests.mkdir(parents=True)
    (tmp_path / "tests" / "conftest.py").write_text(SUITE_CONFTEST.read_text("utf-8"), "utf-8")
    (tests / "test_s.py").write_text(
        "import pytest\n@pytest.mark.skip(reason='x')\ndef test_s(): pass\ndef test_p(): pass\n",
        "utf-8",
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        env={"APOD_TEST_REPORT_DIR": str(tmp_path / "r"), "PATH": "/usr/bin:/bin", "CI": "true"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1, run.stdout
    assert "every tier must run in CI" in run.stdout
