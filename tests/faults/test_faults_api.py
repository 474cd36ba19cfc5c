"""API faults: the extract image against the test server's fault switches.

Every scenario runs `apod-extract` with `docker run` on a data volume; the test server
answers with the injected fault, then normally. What is checked is what lands on the
volume (chunk files, manifest, temp files), the exit code and the one-line reason.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import string

import pytest
import requests
from support.services import apod_test_server, fresh_database, require_images

from apod_common import exit_codes, layout
from faults.world import World, wait_for, world

pytestmark = [
    pytest.mark.faults,
    pytest.mark.docker,
    pytest.mark.integration,
    pytest.mark.timeout(300),
]


@pytest.fixture(scope="module")
def api():
    require_images("extract", "transform", "load", "version")
    with (
        apod_test_server() as server,
        fresh_database("apod_faults_api") as db,
        world(server, db, "api") as w,
    ):
        yield w


@pytest.fixture
def fresh(api: World) -> World:
    api.server.control("reset")
    return api


def served(w: World, start: str, end: str) -> bytes:
    """The untouched answer the API gives extract for start..end (statistics reset after)."""
    body = requests.get(
        w.server.url,
        params={"api_key": "DEMO_KEY", "start_date": start, "end_date": end, "thumbs": "true"},
        headers={"Accept": "application/json"},
        timeout=10,
    ).content
    w.server.control("reset")
    return body


def inject(w: World, *faults: dict) -> None:
    w.server.control("faults", {"faults": list(faults)})


def requests_seen(w: World) -> list[dict]:
    """The server's record of each APOD request since the last reset, as they were answered."""
    return [r for r in w.server.stats()["recent"] if r["path"].startswith("/planetary")]


def statuses(w: World) -> list[int | None]:
    return [r["status"] for r in requests_seen(w)]


def raw_files(w: World, run_id: str) -> list[str]:
    """Every file in the run's raw folder, hidden temp files included."""
    folder = layout.raw_dir(w.mountpoint, run_id)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def run_id(label: str) -> str:
    return f"manual__faults_{label}_{secrets.token_hex(3)}"


TRANSIENT = {
    "500": {"status": 500},
    "502": {"status": 502},
    "503": {"status": 503},
    "disconnect": {"disconnect": True},
}


@pytest.mark.parametrize("fault", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_two_transient_failures_then_success(fresh: World, fault: dict):
    body = served(fresh, "2024-01-01", "2024-01-31")
    inject(fresh, fault, fault)
    rid = run_id("transient")
    result = fresh.extract(rid, "2024-01-01", "2024-01-31").expect(0)
    assert result.summary["requests"] == 3
    assert result.summary["entries"] == 31
    assert "retry 2/2" in result.stderr
    expected = [fault.get("status"), fault.get("status"), 200]
    assert statuses(fresh) == expected
    raw = layout.raw_dir(fresh.mountpoint, rid)
    assert (raw / "2024-01-01_2024-01-31.json").read_bytes() == body
    assert raw_files(fresh, rid) == ["2024-01-01_2024-01-31.json", "manifest.json"]


def test_a_slow_answer_times_out_and_is_retried(fresh: World):
    inject(fresh, {"delay": 3})
    # One day: a longer range that times out is asked in halves instead (issue 12).
    result = fresh.extract(run_id("slow"), "2024-01-05", "2024-01-05", "--timeout", "1").expect(0)
    assert "timed out after 1 s" in result.stderr
    assert result.summary["requests"] == 2
    assert result.summary["entries"] == 1
    # The server finishes the slow answer to nobody; let it, so later tests count cleanly.
    wait_for(lambda: len(statuses(fresh)) == 2, 10, "the abandoned slow answer")


def test_a_short_retry_after_is_waited_for(fresh: World):
    inject(fresh, {"status": 429, "retry_after": 2})
    result = fresh.extract(run_id("429short"), "2024-01-01", "2024-01-10").expect(0)
    assert statuses(fresh) == [429, 200]
    # Read on the server, between the two requests' arrivals: the retry came no sooner than
    # the Retry-After (a sleep never ends early, so a busy machine cannot fail this; how
    # much later is load, not behaviour, and is not bounded).
    refused, retried = (r["at"] for r in requests_seen(fresh))
    waited = retried - refused
    assert waited >= 2, f"asked again {waited:.3f} s after the 429 (Retry-After: 2)"
    assert "rate limited (HTTP 429" in result.stderr
    assert "retry 1/2 in 2.0 s" in result.stderr


def test_a_long_retry_after_stops_cleanly_and_the_rerun_resumes(fresh: World):
    first_half = served(fresh, "2024-01-01", "2024-01-16")
    inject(fresh, {}, {"status": 429, "retry_after": 3000})
    rid = run_id("429long")
    halves = ("--chunk-days", "16")
    stopped = fresh.extract(rid, "2024-01-01", "2024-01-31", *halves)
    assert stopped.returncode == exit_codes.UPSTREAM_UNAVAILABLE, stopped.stderr
    reason = stopped.summary["reason"]
    assert "wait 3000 s, longer than --max-wait 5 s" in reason
    assert "try again in about 50 min" in reason
    assert "1 of 2 chunk(s) are kept" in reason
    assert len(stopped.stderr.strip().splitlines()[-1]) < 400  # one readable line
    # The finished chunk is kept whole; nothing of the refused one, no manifest, no temp file.
    assert raw_files(fresh, rid) == ["2024-01-01_2024-01-16.json"]
    raw = layout.raw_dir(fresh.mountpoint, rid)
    assert (raw / "2024-01-01_2024-01-16.json").read_bytes() == first_half
    # The next step refuses a batch without a manifest instead of loading half of it.
    fresh.transform(rid).expect(exit_codes.BAD_INPUT)

    resumed = fresh.extract(rid, "2024-01-01", "2024-01-31", *halves).expect(0)
    assert (resumed.summary["chunks_reused"], resumed.summary["chunks_fetched"]) == (1, 1)
    assert resumed.summary["requests"] == 1
    manifest = json.loads((raw / "manifest.json").read_bytes())
    assert [c["entries"] for c in manifest["chunks"]] == [16, 15]
    assert fresh.transform(rid).expect(0).summary["rows"] == 31


BAD_BODIES = {
    "html-200": ({"html_200": True}, "HTTP 200 but not a JSON array (text/html"),
    "truncated": ({"truncate": True}, "HTTP 200 but not a JSON array (application/json"),
    "html-502": ({"status": 502, "html": True}, "HTTP 502"),
}


@pytest.mark.parametrize(("fault", "problem"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_body_that_stays_bad_writes_nothing(fresh: World, fault: dict, problem: str):
    inject(fresh, fault, fault, fault)
    rid = run_id("badbody")
    result = fresh.extract(rid, "2024-01-01", "2024-01-31")
    assert result.returncode == exit_codes.UPSTREAM_UNAVAILABLE, result.stderr
    reason = result.summary["reason"]
    assert "API unavailable for 2024-01-01..2024-01-31 after 3 attempt(s)" in reason
    assert problem in reason
    assert raw_files(fresh, rid) == []
    assert "no manifest" in fresh.transform(rid).expect(exit_codes.BAD_INPUT).summary["reason"]


def test_a_refused_key_exits_4_at_once_and_never_prints_the_key(fresh: World):
    key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
    inject(fresh, {"status": 403})
    rid = run_id("403")
    result = fresh.extract(rid, "2024-01-01", "2024-01-31", env={"NASA_API_KEY": key})
    assert result.returncode == exit_codes.UPSTREAM_REFUSED, result.stderr
    assert result.summary["reason"] == (
        "API refused the key (API_KEY_INVALID); check NASA_API_KEY / NASA_API_KEY_FILE"
    )
    assert key not in result.output
    assert statuses(fresh) == [403]  # no retry: asking again will not help
    assert raw_files(fresh, rid) == []


def test_a_range_with_missing_days_loads_the_others_through_all_four_steps(fresh: World):
    rid = run_id("missing")
    steps = fresh.pipeline(rid, "1995-06-16", "1995-06-22")
    assert steps["extract"].summary["entries"] == 4
    assert steps["version"].returncode == 0
    present = ["1995-06-16", "1995-06-20", "1995-06-21", "1995-06-22"]
    assert [row[0] for row in fresh.rows()] == present
    dataset = csv.DictReader(io.StringIO(fresh.csv_bytes().decode()))
    assert [row["date"] for row in dataset] == present
    assert "rows: 4" in fresh.git("log", "-1", "--format=%B")
