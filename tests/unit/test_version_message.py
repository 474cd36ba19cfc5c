"""Commit messages, committed remote URLs and failure lines of the version step."""

import pytest

from apod_common.redaction import redact
from apod_version.message import commit_message, one_line
from apod_version.remote import strip_userinfo

pytestmark = pytest.mark.unit


def test_commit_message_names_the_run_and_describes_the_data():
    message = commit_message("manual__2024-01-01T00:00:00", "apod_data.csv", "ab" * 16, 1234, 31)
    subject, blank, *body = message.splitlines()
    assert subject == "data: update apod_data.csv (run manual__2024-01-01T00:00:00)"
    assert blank == ""
    assert body == [f"md5: {'ab' * 16}", "size: 1234", "rows: 31"]
    assert message.endswith("\n")


def test_a_run_id_with_line_breaks_cannot_forge_message_lines():
    message = commit_message("run\n\nmd5: forged", "apod_data.csv", "00" * 16, 1, 0)
    assert message.splitlines()[0] == "data: update apod_data.csv (run run md5: forged)"
    assert [line for line in message.splitlines() if line.startswith("md5:")] == [
        f"md5: {'00' * 16}"
    ]


def test_one_line_collapses_whitespace():
    assert one_line("  a\tb\r\nc  ") == "a b c"


def test_strip_userinfo_leaves_a_committable_url():
    assert strip_userinfo("https://user:secret@dvc.example/store") == "https://dvc.example/store"
    assert strip_userinfo("/dvc-remote") == "/dvc-remote"


def test_failure_reason_is_the_error_line_and_the_runner_redacts_it():
    from apod_version.tools import Result

    dvc_out = (
        "ERROR:  output 'x.csv' is already tracked by SCM (e.g. Git).\n"
        "    You can remove it from Git, then add to DVC.\n"
        "            git rm -r --cached 'x.csv'\n"
    )
    assert Result(1, "", dvc_out).last_line().startswith("ERROR:  output 'x.csv' is already")
    git_out = "To https://u:tok@host/r.git\nfatal: unable to access 'https://u:tok@host/r.git/'\n"
    line = Result(128, "", git_out).last_line()
    assert line == "fatal: unable to access 'https://u:tok@host/r.git/'"
    assert redact(line) == "fatal: unable to access 'https://***@host/r.git/'"
    assert Result(1, "last words\n", "").last_line() == "last words"
    assert Result(3, "", "").last_line() == "exit code 3"
