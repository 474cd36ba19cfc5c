"""A full disk is one thing to every step: exit 5 (retried; the retry goes on once there
is room) and a reason that says so, whether the step's own write or a child's (git, DVC)
ran out of space."""

from __future__ import annotations

import errno
import json
import os

import pytest

from apod_common import exit_codes, runner
from apod_common.errors import StepError, out_of_space

pytestmark = pytest.mark.unit


def failing(exc: BaseException):
    def main(argv):
        raise exc

    return main


@pytest.mark.parametrize(
    ("exc", "detail"),
    [
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "No space left on device"),
        (
            OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/data/.apod_data.csv.x"),
            "Disk quota exceeded writing /data/.apod_data.csv.x",
        ),
        (
            StepError("dvc add apod_data.csv failed: ERROR: [Errno 28] No space left on device"),
            "dvc add apod_data.csv failed",
        ),
    ],
)
def test_a_full_disk_exits_5_with_one_line_that_says_so(exc, detail, capfd, monkeypatch, tmp_path):
    monkeypatch.setenv("APOD_DATA_DIR", str(tmp_path))  # a file system with room
    assert runner.run("demo", failing(exc), []) == exit_codes.UPSTREAM_UNAVAILABLE
    out, err = capfd.readouterr()
    summary = json.loads(out.splitlines()[-1])
    assert summary["exit_code"] == exit_codes.UPSTREAM_UNAVAILABLE
    assert summary["reason"].startswith("no space left on device")
    assert ", free some and retry: " in summary["reason"]
    assert detail in summary["reason"]
    assert err.strip().splitlines()[-1] == f"demo: {summary['reason']}"


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.EACCES, os.strerror(errno.EACCES)),
        StepError("bad input: No space left on device", exit_codes.BAD_INPUT),
    ],
)
def test_other_failures_keep_their_code(exc, capfd, monkeypatch, tmp_path):
    monkeypatch.setenv("APOD_DATA_DIR", str(tmp_path))
    expected = exc.code if isinstance(exc, StepError) else exit_codes.FAILURE
    assert runner.run("demo", failing(exc), []) == expected
    assert out_of_space(exc) is isinstance(exc, StepError)
