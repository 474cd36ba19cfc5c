"""The extract step's main against the real APOD test server (in a thread on port 0)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from apod_common import files, runner, versioned
from apod_extract.main import main
from apod_testserver.server import Config, serving

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "fixtures" / "apod"
KEY = "sekrit-Key_4242-do-not-print"
RUN = "scheduled__2024-01-01T00:00:00+00:00"
BATCH = "scheduled__2024-01-01T00_00_00_00_00"  # layout.batch_name(RUN)
# One request at a time keeps the order of requests (and of injected faults) fixed;
# tests/unit/test_extract_concurrency.py covers the step with several in flight.
FAST = ("--backoff", "0.01", "--max-wait", "5", "--max-retries", "2", "--timeout", "5")
FAST += ("--concurrency", "1")


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def summary(self) -> dict:
        return json.loads(self.out.strip().splitlines()[-1])

    @property
    def text(self) -> str:
        return self.out + self.err


@pytest.fixture
def server_log() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def server(server_log):
    config = Config(SAMPLE, port=0, today=dt.date(2024, 3, 31), log=server_log)
    with serving(config) as srv:
        yield srv


@pytest.fixture
def env(monkeypatch, server):
    for name in ("NASA_API_KEY_FILE", "APOD_RUN_ID", "APOD_DATA_DIR", "APOD_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APOD_API_URL", server.apod_url)
    monkeypatch.setenv("NASA_API_KEY", KEY)
    return monkeypatch


@pytest.fixture
def extract(env, capsys, tmp_path):
    """Run the step as its entrypoint does; returns exit code and captured output."""

    def run(*args: str, fast: bool = True) -> Outcome:
        argv = ["--run-id", RUN, "--data-dir", str(tmp_path), *(FAST if fast else ()), *args]
        try:
            code = runner.run("extract", main, argv)
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


def faults(server, *specs: dict) -> None:
    requests.post(f"{server.base_url}/_control/faults", json={"faults": list(specs)}, timeout=10)


def stats(server) -> dict:
    return requests.get(f"{server.base_url}/_control/stats", timeout=10).json()


def queried_ranges(server) -> list[tuple[str, str]]:
    return [
        (r["params"]["start_date"][0], r["params"]["end_date"][0])
        for r in stats(server)["recent"]
        if "params" in r
    ]


def raw(tmp_path: Path) -> Path:
    return tmp_path / "raw" / BATCH


# --- the normal path ----------------------------------------------------------------


def test_a_quarter_costs_one_request_per_31_days(extract, server, tmp_path):
    result = extract("--start", "2024-01-01", "--end", "2024-03-31")
    assert result.code == 0, result.err
    days = 91
    assert stats(server)["apod_requests"] == math.ceil(days / 31) == 3
    assert queried_ranges(server) == [
        ("2024-01-01", "2024-01-31"),
        ("2024-02-01", "2024-03-02"),
        ("2024-03-03", "2024-03-31"),
    ]
    request = stats(server)["recent"][0]
    assert request["params"]["thumbs"] == ["true"]
    assert request["accept"] == "application/json"
    summary = result.summary
    assert summary == {
        "step": "extract",
        "status": "ok",
        "run_id": RUN,
        "start": "2024-01-01",
        "end": "2024-03-31",
        "raw_dir": str(raw(tmp_path)),
        "manifest": str(raw(tmp_path) / "manifest.json"),
        "chunks": 3,
        "chunks_fetched": 3,
        "chunks_reused": 0,
        "requests": 3,
        "entries": 31,
    }
    assert "chunk 1/3 2024-01-01..2024-01-31: 31 entries (rate limit remaining 999)" in result.err
    assert "chunk 3/3 2024-03-03..2024-03-31: 0 entries (rate limit remaining 997)" in result.err


def test_chunks_hold_the_untouched_response_bytes_and_the_manifest_describes_them(
    extract, server, tmp_path
):
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    assert extract("--start", "2024-01-01", "--end", "2024-02-10").code == 0
    served = requests.get(
        server.apod_url,
        params={
            "api_key": "x",
            "start_date": "2024-01-01",
            "end_date": "2024-01-31",
            "thumbs": "true",
        },
        timeout=10,
    ).content
    first = raw(tmp_path) / "2024-01-01_2024-01-31.json"
    assert first.read_bytes() == served
    manifest = json.loads((raw(tmp_path) / "manifest.json").read_text())
    assert manifest["range"] == {"start": "2024-01-01", "end": "2024-02-10", "days": 41}
    assert manifest["api_url"] == server.apod_url
    assert manifest["totals"] == {"chunks": 2, "entries": 31, "bytes": len(served) + 3}
    chunk = manifest["chunks"][0]
    assert chunk["file"] == first.name
    assert (chunk["start"], chunk["end"], chunk["entries"]) == ("2024-01-01", "2024-01-31", 31)
    assert chunk["sha256"] == hashlib.sha256(served).hexdigest()
    fetched = dt.datetime.fromisoformat(chunk["fetched_at"])
    assert fetched.tzinfo is not None
    assert before <= fetched <= dt.datetime.now(dt.UTC)
    assert manifest["chunks"][1]["file"] == "2024-02-01_2024-02-10.json"
    assert json.loads(first.read_bytes())[6]["thumbnail_url"].startswith("https://img.youtube")
    assert not [p for p in raw(tmp_path).iterdir() if p.name.endswith(".tmp")]


def test_missing_days_inside_a_range_are_simply_absent(extract):
    result = extract("--start", "2020-06-08", "--end", "2020-06-12")
    assert result.code == 0
    assert result.summary["entries"] == 4


def test_a_single_day_is_asked_as_a_range_so_a_missing_day_is_nothing_to_do(
    extract, server, tmp_path
):
    result = extract("--start", "2020-06-10")
    assert result.code == 99, result.err
    assert result.summary["status"] == "skipped"
    assert queried_ranges(server) == [("2020-06-10", "2020-06-10")]
    manifest = json.loads((raw(tmp_path) / "manifest.json").read_text())
    assert manifest["totals"]["entries"] == 0
    assert (raw(tmp_path) / "2020-06-10_2020-06-10.json").read_bytes() == b"[]\n"


def test_an_empty_range_writes_the_manifest_then_exits_99(extract, tmp_path):
    result = extract("--start", "1995-06-17", "--end", "1995-06-19")
    assert result.code == 99
    assert "no entries for 1995-06-17..1995-06-19" in result.summary["reason"]
    assert (raw(tmp_path) / "manifest.json").exists()


def test_second_run_reuses_everything_and_leaves_the_same_state(extract, server, tmp_path):
    assert extract("--start", "2024-01-01", "--end", "2024-03-31").code == 0
    snapshot = {p.name: (p.read_bytes(), p.stat().st_mtime) for p in raw(tmp_path).iterdir()}
    again = extract("--start", "2024-01-01", "--end", "2024-03-31")
    assert again.code == 0
    assert again.summary["chunks_reused"] == 3
    assert again.summary["requests"] == 0
    assert stats(server)["apod_requests"] == 3
    after = {p.name: p.read_bytes() for p in raw(tmp_path).iterdir()}
    assert after == {name: data for name, (data, _) in snapshot.items()}


@pytest.mark.faults
def test_resume_fetches_only_the_chunks_a_failed_attempt_did_not_finish(extract, server, tmp_path):
    faults(server, {}, {"status": 500}, {"status": 500}, {"status": 500})
    failed = extract("--start", "2024-01-01", "--end", "2024-03-31")
    assert failed.code == 5
    assert "1 of 3 chunk(s) are kept" in failed.summary["reason"]
    assert "rerun with the same run id" in failed.summary["reason"]
    assert sorted(p.name for p in raw(tmp_path).iterdir()) == ["2024-01-01_2024-01-31.json"]
    first_chunk = (raw(tmp_path) / "2024-01-01_2024-01-31.json").stat().st_mtime

    resumed = extract("--start", "2024-01-01", "--end", "2024-03-31")
    assert resumed.code == 0
    assert (resumed.summary["chunks_fetched"], resumed.summary["chunks_reused"]) == (2, 1)
    assert resumed.summary["requests"] == 2
    assert queried_ranges(server)[-2:] == [
        ("2024-02-01", "2024-03-02"),
        ("2024-03-03", "2024-03-31"),
    ]
    manifest = json.loads((raw(tmp_path) / "manifest.json").read_text())
    reused_at = dt.datetime.fromisoformat(manifest["chunks"][0]["fetched_at"]).timestamp()
    assert reused_at == int(first_chunk)


@pytest.mark.faults
def test_a_corrupt_leftover_chunk_is_fetched_again(extract, tmp_path):
    raw(tmp_path).mkdir(parents=True)
    (raw(tmp_path) / "2024-01-01_2024-01-31.json").write_text('[{"date": "2024-01-0')
    result = extract("--start", "2024-01-01", "--end", "2024-01-31")
    assert result.code == 0
    assert result.summary["chunks_fetched"] == 1
    assert len(json.loads((raw(tmp_path) / "2024-01-01_2024-01-31.json").read_bytes())) == 31


def test_refetch_picks_up_an_upstream_edit_that_reuse_would_miss(extract, server, tmp_path):
    assert extract("--start", "2024-01-05", "--end", "2024-01-06").code == 0
    edit = {
        "title": "Corrected",
        "explanation": "",
        "media_type": "image",
        "url": "https://x/y.jpg",
    }
    requests.put(f"{server.base_url}/_control/entries/2024-01-05", json=edit, timeout=10)
    chunk = raw(tmp_path) / "2024-01-05_2024-01-06.json"
    assert extract("--start", "2024-01-05", "--end", "2024-01-06").code == 0
    assert b"Corrected" not in chunk.read_bytes()
    assert extract("--start", "2024-01-05", "--end", "2024-01-06", "--refetch").code == 0
    assert b"Corrected" in chunk.read_bytes()


def test_a_different_range_under_the_same_run_id_replaces_the_old_chunks(extract, tmp_path):
    assert extract("--start", "2024-01-01", "--end", "2024-01-31").code == 0
    assert extract("--start", "2024-01-10", "--end", "2024-01-12").code == 0
    names = sorted(p.name for p in raw(tmp_path).iterdir())
    assert names == ["2024-01-10_2024-01-12.json", "manifest.json"]


def test_chunk_days_and_environment_defaults(env, server, tmp_path):
    env.setenv("APOD_RUN_ID", "from-env")
    env.setenv("APOD_DATA_DIR", str(tmp_path / "envdata"))
    result = Outcome(
        runner.run(
            "extract", main, ["--start", "2024-01-01", "--end", "2024-01-10", "--chunk-days", "4"]
        ),
        "",
        "",
    )
    assert result.code == 0
    assert sorted(queried_ranges(server)) == [  # in flight together: any order of arrival
        ("2024-01-01", "2024-01-04"),
        ("2024-01-05", "2024-01-08"),
        ("2024-01-09", "2024-01-10"),
    ]
    assert (tmp_path / "envdata" / "raw" / "from-env" / "manifest.json").exists()


def test_key_file_is_read_and_the_demo_key_is_the_default(extract, env, server, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    env.delenv("NASA_API_KEY")
    env.setenv("NASA_API_KEY_FILE", str(key_file))
    assert extract("--start", "2024-01-01").code == 0
    env.delenv("NASA_API_KEY_FILE")
    assert extract("--start", "2024-01-02").code == 0
    env.setenv("NASA_API_KEY_FILE", str(tmp_path / "absent"))
    missing = extract("--start", "2024-01-03")
    assert missing.code == 2
    assert "NASA_API_KEY_FILE" in missing.summary["reason"]


# --- retries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"status": 502, "html": True},
        {"status": 503},
        {"html_200": True},
        {"truncate": True},
        {"disconnect": True},
    ],
    ids=["500", "502-html", "503", "html-200", "truncated", "disconnect"],
)
@pytest.mark.faults
def test_transient_failures_are_retried_then_succeed(extract, server, tmp_path, fault):
    faults(server, fault, fault)
    result = extract("--start", "2024-01-01", "--end", "2024-01-31")
    assert result.code == 0, result.err
    assert result.summary["requests"] == 3
    assert result.err.count("retry ") == 2
    assert len(json.loads((raw(tmp_path) / "2024-01-01_2024-01-31.json").read_bytes())) == 31


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        ({"status": 503}, "HTTP 503"),
        ({"html_200": True}, "HTTP 200 but not a JSON array (text/html"),
        ({"truncate": True}, "HTTP 200 but not a JSON array (application/json"),
    ],
)
@pytest.mark.faults
def test_failures_that_persist_exit_5_and_write_nothing(extract, server, tmp_path, fault, problem):
    faults(server, *[fault] * 3)
    result = extract("--start", "2024-01-01", "--end", "2024-01-31")
    assert result.code == 5
    assert result.summary["reason"].startswith(
        "API unavailable for 2024-01-01..2024-01-31 after 3 attempt(s)"
    )
    assert problem in result.summary["reason"]
    assert list(raw(tmp_path).iterdir()) == []


@pytest.mark.faults
def test_a_slow_answer_times_out_and_is_retried(extract, server):
    faults(server, {"delay": 1.5})
    result = extract("--start", "2024-01-01", "--timeout", "0.5")
    assert result.code == 0, result.err
    assert "timed out after 0.5 s" in result.err
    assert result.summary["requests"] == 2


@pytest.mark.faults
def test_connection_refused_is_retried_then_exit_5_without_the_key(extract, env):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env.setenv("APOD_API_URL", f"http://127.0.0.1:{port}/planetary/apod")
    result = extract("--start", "2024-01-01")
    assert result.code == 5
    assert "connection failed" in result.summary["reason"]
    assert "api_key=***" in result.text
    assert KEY not in result.text


@pytest.mark.faults
def test_short_429_waits_for_retry_after_then_continues(extract, server):
    # That nothing goes out before the Retry-After has passed is shown on the fetcher's
    # own clock: test_extract_concurrency.py, test_after_a_429_nothing_new_is_sent_...
    faults(server, {"status": 429, "retry_after": 1})
    result = extract("--start", "2024-01-01", "--end", "2024-01-31")
    assert result.code == 0, result.err
    assert "rate limited (HTTP 429, rate limit remaining 0); retry 1/2 in 1.0 s" in result.err
    assert result.summary["requests"] == 2


@pytest.mark.faults
def test_429_without_retry_after_backs_off(extract, server):
    faults(server, {"status": 429})
    result = extract("--start", "2024-01-01")
    assert result.code == 0
    assert result.summary["requests"] == 2


@pytest.mark.faults
def test_long_429_stops_at_once_with_how_long_to_wait(extract, server, tmp_path):
    faults(server, {}, {"status": 429, "retry_after": 2900})
    result = extract("--start", "2024-01-01", "--end", "2024-02-15")
    assert result.code == 5
    reason = result.summary["reason"]
    assert "wait 2900 s, longer than --max-wait 5 s" in reason
    assert "1 of 2 chunk(s) are kept" in reason
    assert stats(server)["apod_requests"] == 2  # no hammering
    assert (raw(tmp_path) / "2024-01-01_2024-01-31.json").exists()


@pytest.mark.faults
def test_an_exhausted_quota_stops_cleanly_and_the_rerun_resumes(extract, server_log, env, tmp_path):
    config = Config(SAMPLE, port=0, today=dt.date(2024, 3, 31), rate_limit=2, log=server_log)
    with serving(config) as limited:
        env.setenv("APOD_API_URL", limited.apod_url)
        result = extract("--start", "2024-01-01", "--end", "2024-03-31")
        assert result.code == 5
        assert "X-RateLimit-Remaining: 0" in result.summary["reason"]
        assert "1 chunk(s) still to fetch" in result.summary["reason"]
        assert "2 of 3 chunk(s) are kept" in result.summary["reason"]
        assert stats(limited)["apod_requests"] == 2
        assert not (raw(tmp_path) / "manifest.json").exists()

        requests.post(f"{limited.base_url}/_control/reset", timeout=10)  # the hour has passed
        resumed = extract("--start", "2024-01-01", "--end", "2024-03-31")
        assert resumed.code == 0
        assert (resumed.summary["requests"], resumed.summary["chunks_reused"]) == (1, 2)


def test_remaining_zero_on_the_last_chunk_is_success(extract, server_log, env):
    config = Config(SAMPLE, port=0, today=dt.date(2024, 3, 31), rate_limit=1, log=server_log)
    with serving(config) as limited:
        env.setenv("APOD_API_URL", limited.apod_url)
        result = extract("--start", "2024-01-01", "--end", "2024-01-31")
        assert result.code == 0
        assert "(rate limit remaining 0)" in result.err


# --- refusals -------------------------------------------------------------------------


@pytest.mark.faults
def test_an_invalid_key_exits_4_naming_the_code_but_never_the_key(
    extract, env, server_log, tmp_path
):
    config = Config(
        SAMPLE, port=0, today=dt.date(2024, 3, 31), invalid_keys=frozenset({KEY}), log=server_log
    )
    with serving(config) as strict:
        env.setenv("APOD_API_URL", strict.apod_url)
        result = extract("--start", "2024-01-01", "--end", "2024-03-31")
        assert result.code == 4
        assert result.summary["reason"].startswith("API refused the key (API_KEY_INVALID)")
        assert stats(strict)["apod_requests"] == 1  # refused at once, no retries
    assert KEY not in result.text
    assert KEY not in server_log.getvalue()
    assert all(KEY.encode() not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"status": 403}, "API refused the key (API_KEY_INVALID)"),
        (
            {"status": 400, "body": '{"error": {"code": "HTTPS_REQUIRED", "message": "x"}}'},
            "API gateway refused the request (HTTP 400, HTTPS_REQUIRED)",
        ),
        (
            {"status": 401, "body": "<html>no</html>", "content_type": "text/html"},
            "API refused the request (HTTP 401, text/html body)",
        ),
    ],
)
@pytest.mark.faults
def test_other_4xx_exit_4_at_once(extract, server, fault, reason):
    faults(server, fault)
    result = extract("--start", "2024-01-01")
    assert result.code == 4
    assert result.summary["reason"].startswith(reason)
    assert stats(server)["apod_requests"] == 1


def test_a_400_from_the_service_carries_its_message(extract, server):
    result = extract("--start", "2024-03-20", "--end", "2024-04-10")
    assert result.code == 4
    assert result.summary["reason"] == (
        "API refused the request (HTTP 400): Date must be between Jun 16, 1995 and Mar 31, 2024."
    )


def test_a_404_from_a_wrong_endpoint_is_exit_4(extract, env, server):
    env.setenv("APOD_API_URL", server.base_url + "/planetary/apodx")
    result = extract("--start", "2024-01-01")
    assert result.code == 4
    assert "HTTP 404" in result.summary["reason"]


# --- usage ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--start", "2024/01/01"), "--start '2024/01/01' is not a YYYY-MM-DD date"),
        (("--start", "2024-01-01", "--end", "2024-02-30"), "--end '2024-02-30' is not a YYYY"),
        (("--start", "1995-06-15"), "--start 1995-06-15 is before the first APOD (1995-06-16)"),
        (("--start", "2024-02-01", "--end", "2024-01-31"), "--start 2024-02-01 is after --end"),
        (("--start", "2024-01-01", "--chunk-days", "32"), "--chunk-days must be 1..31"),
        (("--start", "2024-01-01", "--timeout", "0"), "--timeout must be > 0"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(extract, server, args, reason):
    result = extract(*args)
    assert result.code == 2
    assert result.summary["reason"].startswith(reason)
    assert len(result.err.strip().splitlines()) == 1
    assert stats(server)["apod_requests"] == 0


def test_a_missing_start_is_an_argparse_usage_error(extract):
    assert extract().code == 2


def test_a_non_http_api_url_is_a_usage_error(extract, env):
    env.setenv("APOD_API_URL", "ftp://example.org/apod")
    result = extract("--start", "2024-01-01")
    assert result.code == 2
    assert "APOD_API_URL must be an http(s) URL" in result.summary["reason"]


# --- as a process ---------------------------------------------------------------------


@pytest.mark.faults
def test_python_dash_m_prints_the_summary_last_and_keeps_the_key_out(server, tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(REPO / "images" / p) for p in ("common", "extract")),
        "APOD_API_URL": server.apod_url,
        "NASA_API_KEY": KEY,
        "APOD_LOG_LEVEL": "DEBUG",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "apod_extract",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-31",
            "--data-dir",
            str(tmp_path),
            "--run-id",
            "proc",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["entries"] == 31
    assert KEY not in result.stdout + result.stderr

    helped = subprocess.run(
        [sys.executable, "-m", "apod_extract", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert helped.returncode == 0
    assert "usage: apod-extract" in helped.stdout


# --- nothing new since the last versioned batch -----------------------------------------


def versioned_batch(tmp_path: Path, run_id: str) -> None:
    """What the version step leaves once `run_id`'s batch is loaded and versioned."""
    csv = tmp_path / "apod_data.csv"
    csv.write_bytes(b"date,title\n2024-01-01,loaded\n")
    versioned.write(tmp_path, versioned.Versioned(run_id, files.md5_of(csv), "c0ffee"))


def test_the_same_answers_as_the_last_versioned_batch_are_nothing_to_do(extract, tmp_path):
    assert extract("--start", "2024-01-01", "--end", "2024-02-15").code == 0
    versioned_batch(tmp_path, RUN)
    again = extract("--start", "2024-01-01", "--end", "2024-02-15", "--run-id", "manual__again")
    assert again.code == 99
    assert again.summary["status"] == "skipped"
    assert again.summary["reason"].startswith("unchanged: the API answered 2024-01-01..2024-02-15")
    assert RUN in again.summary["reason"]
    # The run's own raw files are still written: transform could be run on them by hand.
    assert (tmp_path / "raw" / "manual__again" / "manifest.json").is_file()


@pytest.mark.parametrize(
    ("change", "args"),
    [
        ("another range", ("--start", "2024-01-01", "--end", "2024-02-16")),
        ("the CSV changed since", ("--start", "2024-01-01", "--end", "2024-02-15")),
        ("asked to", ("--start", "2024-01-01", "--end", "2024-02-15", "--always-load")),
    ],
)
def test_a_run_goes_through_when_anything_differs(extract, server, tmp_path, change, args):
    assert extract("--start", "2024-01-01", "--end", "2024-02-15").code == 0
    versioned_batch(tmp_path, RUN)
    if change == "the CSV changed since":
        (tmp_path / "apod_data.csv").write_bytes(b"date,title\n2024-01-01,edited\n")
    assert extract(*args, "--run-id", "manual__again").code == 0


def test_an_upstream_edit_since_the_versioned_batch_goes_through(extract, server, tmp_path):
    assert extract("--start", "2024-01-01", "--end", "2024-01-31").code == 0
    versioned_batch(tmp_path, RUN)
    entry = requests.get(
        server.apod_url, params={"api_key": "k", "date": "2024-01-15"}, timeout=10
    ).json()
    requests.put(
        f"{server.base_url}/_control/entries/2024-01-15",
        json={**entry, "title": entry["title"] + " (corrected)"},
        timeout=10,
    )
    assert extract("--start", "2024-01-01", "--end", "2024-01-31", "--run-id", "m2").code == 0
