"""Extract with several requests in flight, against the test server's latency model.

The pure parts (ranges cut in halves, the tiling of kept files, the adaptive pool) alone;
then the step over real HTTP: in-flight bound measured by the server, 504s and time-outs
split into shorter ranges, 429 and low X-RateLimit-Remaining back-off, resume of a cut
chunk, and the same files and batch whatever the order of arrival.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from support.clock import ManualClock

from apod_common import layout, runner
from apod_common.clock import SYSTEM
from apod_extract import dates, pieces
from apod_extract.client import ApodClient, RetryPolicy
from apod_extract.fetcher import Fetcher, Job
from apod_extract.main import main as extract_main
from apod_extract.pool import Pool
from apod_testserver.server import Config, serving
from apod_transform.main import main as transform_main

pytestmark = pytest.mark.unit

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "apod"
TODAY = dt.date(2024, 3, 31)
RUN = "concurrency"
QUICK = ("--backoff", "0.01", "--max-wait", "5", "--max-retries", "2", "--timeout", "5")
JANUARY = ("--start", "2024-01-01", "--end", "2024-01-31")
D = dt.date


def span(first: str, last: str) -> tuple[dt.date, dt.date]:
    return D.fromisoformat(first), D.fromisoformat(last)


# --- ranges in halves and the tiling of kept files --------------------------------------


def test_a_month_halves_into_16_and_15_days_and_a_day_does_not_halve():
    assert pieces.halves(span("2024-01-01", "2024-01-31")) == (
        span("2024-01-01", "2024-01-16"),
        span("2024-01-17", "2024-01-31"),
    )
    assert pieces.halves(span("2024-01-01", "2024-01-02")) == (
        span("2024-01-01", "2024-01-01"),
        span("2024-01-02", "2024-01-02"),
    )
    with pytest.raises(ValueError, match="one-day"):
        pieces.halves(span("2024-01-01", "2024-01-01"))


def test_within_gives_the_ranges_successive_cuts_would():
    month = span("2024-01-01", "2024-01-31")
    assert pieces.within(month, 31) == [month]
    assert pieces.within(month, 16) == [*pieces.halves(month)]
    eights = pieces.within(month, 8)
    assert [pieces.days(part) for part in eights] == [8, 8, 8, 7]
    assert (eights[0][0], eights[-1][1]) == month
    assert all(a[1] + dt.timedelta(days=1) == b[0] for a, b in itertools.pairwise(eights))
    assert len(pieces.within(month, 1)) == 31


def test_tile_reuses_kept_files_and_fetches_the_gaps():
    month = span("2024-01-01", "2024-01-31")
    assert pieces.tile(month, []) == [(month, False)]
    assert pieces.tile(month, [month]) == [(month, True)]
    first, second = pieces.halves(month)
    assert pieces.tile(month, [first, second]) == [(first, True), (second, True)]
    # One half kept: the other is the range to fetch.
    assert pieces.tile(month, [second]) == [(first, False), (second, True)]
    # A kept file crossing the chunk's end, or of another chunk, is not used.
    outside = [span("2024-01-20", "2024-02-05"), span("2024-02-01", "2024-02-03")]
    assert pieces.tile(month, outside) == [(month, False)]
    # The longest file from a day on wins over a shorter one starting the same day.
    short = span("2024-01-01", "2024-01-08")
    assert pieces.tile(month, [short, first]) == [(first, True), (second, False)]


# --- the pool -----------------------------------------------------------------------


def test_the_first_request_goes_alone_then_the_pool_opens():
    pool = Pool(4)
    assert pool.room(0.0) == 1
    pool.answered(remaining=990)
    assert pool.room(0.0) == 4


def test_trouble_halves_the_pool_and_a_run_of_answers_adds_one_back():
    pool = Pool(8)
    pool.answered(990)
    pool.troubled()
    assert pool.width == 4
    pool.troubled()
    assert pool.width == 2
    for _ in range(2):
        pool.answered(990)
    assert pool.width == 3
    for _ in range(3):
        pool.answered(990)
    assert pool.width == 4
    for _ in range(100):
        pool.answered(990)
    assert pool.width == 8  # never above the ceiling


def test_a_429_pauses_every_new_request_until_its_retry_after():
    pool = Pool(4)
    pool.answered(990)
    pool.rate_limited(now=10.0, wait=2.5)
    assert pool.room(11.0) == 0
    assert pool.room(12.5) == 2


def test_a_low_remaining_quota_means_one_request_at_a_time():
    pool = Pool(4)
    pool.answered(remaining=7)  # below twice the ceiling
    assert pool.room(0.0) == 1
    pool.answered(remaining=500)  # the rolling window gave room back
    assert pool.room(0.0) == 4


def test_a_pool_needs_room_for_one():
    with pytest.raises(ValueError, match="at least one"):
        Pool(0)


# --- the step over HTTP -------------------------------------------------------------


@dataclass
class Result:
    code: int
    err: str
    summary: dict


@pytest.fixture
def run_step(monkeypatch, capsys):
    """Run a step's main as its entrypoint does, against `server`, into `data_dir`."""
    for name in ("NASA_API_KEY_FILE", "APOD_RUN_ID", "APOD_DATA_DIR", "APOD_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NASA_API_KEY", "concurrency-test-key")

    def run(step: str, server, data_dir: Path, *args: str) -> Result:
        monkeypatch.setenv("APOD_API_URL", server.apod_url)
        main = extract_main if step == "extract" else transform_main
        argv = ["--run-id", RUN, "--data-dir", str(data_dir), *args]
        code = runner.run(step, main, argv)
        out, err = capsys.readouterr()
        return Result(code, err, json.loads(out.strip().splitlines()[-1]))

    return run


def extract(run_step, server, data_dir: Path, *args: str) -> Result:
    return run_step("extract", server, data_dir, *QUICK, *args)


def latency_server(**config):
    return serving(Config(SAMPLE, port=0, today=TODAY, log=None, **config))


def stats(server) -> dict:
    return requests.get(f"{server.base_url}/_control/stats", timeout=10).json()


def faults(server, *specs: dict) -> None:
    requests.post(
        f"{server.base_url}/_control/faults", json={"faults": list(specs)}, timeout=10
    ).raise_for_status()


def apod_records(server) -> list[dict]:
    return [r for r in stats(server)["recent"] if "params" in r]


def asked(server) -> list[tuple[str, str]]:
    return [
        (r["params"]["start_date"][0], r["params"]["end_date"][0]) for r in apod_records(server)
    ]


def chunk_files(data_dir: Path) -> dict[str, bytes]:
    """The raw folder's files but the manifest, by name."""
    folder = layout.raw_dir(data_dir, RUN)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "manifest.json"}


def manifest(data_dir: Path) -> dict:
    return json.loads(layout.manifest_path(data_dir, RUN).read_bytes())


@pytest.mark.parametrize("concurrency", [1, 3])
def test_no_more_requests_in_flight_than_asked(run_step, tmp_path, concurrency):
    with latency_server(day_cost=0.03) as server:
        result = extract(
            run_step, server, tmp_path, *JANUARY, "--chunk-days", "3",
            "--concurrency", str(concurrency),
        )  # fmt: skip
        measured = stats(server)
    assert result.code == 0, result.err
    assert result.summary["requests"] == measured["apod_requests"] == 11  # 31 days / 3
    assert measured["max_in_flight"] == concurrency
    assert result.summary["entries"] == 31
    assert f"at most {concurrency} in flight" in result.err
    assert "chunk(s) done" in result.err
    assert "ETA" in result.err


def fetch(server, concurrency: int, spans: list, clock=None) -> tuple[Fetcher, list]:
    """The fetcher alone over real HTTP: what it fetched, in the order it arrived."""
    policy = RetryPolicy(max_retries=2, backoff=0.01, max_wait=5, clock=clock or SYSTEM)
    client = ApodClient(server.apod_url, "concurrency-test-key", 5, policy)
    fetcher = Fetcher(client, concurrency)
    arrived: list = []
    fetcher.run([Job(s, n) for n, s in enumerate(spans)], lambda job, _: arrived.append(job))
    return fetcher, arrived


def two_day_spans(first: str, last: str) -> list:
    return dates.spans(D.fromisoformat(first), D.fromisoformat(last), 2)


def test_waiting_for_slow_answers_takes_a_turn_per_answer_not_a_spin():
    with latency_server(day_cost=0.05) as server:
        fetcher, arrived = fetch(server, 2, two_day_spans("2024-01-01", "2024-01-31"))
    assert len(arrived) == fetcher.requests == 16
    assert fetcher.most_in_flight == 2
    # Each turn of the loop launches, or waits for an answer (or a due job): with no
    # retries that is at most one turn per answer and one to start. A loop that polled
    # while the answers took their time would turn thousands of times.
    assert fetcher.turns <= fetcher.requests + 1


def test_the_files_the_manifest_and_the_batch_do_not_depend_on_the_order_of_arrival(
    run_step, tmp_path
):
    args = (*JANUARY, "--chunk-days", "2")
    with latency_server() as server:
        in_order = extract(run_step, server, tmp_path / "one", *args, "--concurrency", "1")
        # Later requests overtake earlier ones: the first of each wave is answered only
        # after three others (an order of events, not of timings).
        faults(server, {}, *[{"after": 3}, {}, {}, {}] * 3)
        scrambled = extract(run_step, server, tmp_path / "six", *args, "--concurrency", "6")
    assert (in_order.code, scrambled.code) == (0, 0), scrambled.err
    done = [int(n) for n in re.findall(r"chunk (\d+)/16 .*entries \(rate", scrambled.err)]
    assert sorted(done) == list(range(1, 17))
    assert done != sorted(done), "the answers did not arrive out of order"
    assert chunk_files(tmp_path / "one") == chunk_files(tmp_path / "six")

    def without_fetch_times(data_dir: Path) -> dict:
        doc = manifest(data_dir)
        for chunk in doc["chunks"]:
            chunk.pop("fetched_at")
        return doc

    assert without_fetch_times(tmp_path / "one") == without_fetch_times(tmp_path / "six")
    assert [c["file"] for c in manifest(tmp_path / "six")["chunks"]] == sorted(
        chunk_files(tmp_path / "six")
    )

    def staged_content(data_dir: Path) -> list[dict]:
        assert run_step("transform", server, data_dir).code == 0
        rows = csv.DictReader(io.StringIO(layout.staged_batch(data_dir, RUN).read_text("utf-8")))
        return [{k: v for k, v in row.items() if k != "extracted_at"} for row in rows]

    with latency_server() as server:
        assert staged_content(tmp_path / "one") == staged_content(tmp_path / "six")


def test_a_month_the_gateway_cuts_is_asked_in_halves(run_step, tmp_path):
    # 31 days x 20 ms is past the 0.45 s cut; 16 days are not.
    with latency_server(day_cost=0.02, gateway_timeout=0.45) as server:
        result = extract(run_step, server, tmp_path, *JANUARY)
        measured = stats(server)
        ranges = asked(server)
    assert result.code == 0, result.err
    assert measured["by_status"] == {"200": 2, "504": 1}
    assert ranges[0] == ("2024-01-01", "2024-01-31")
    assert sorted(ranges[1:]) == [("2024-01-01", "2024-01-16"), ("2024-01-17", "2024-01-31")]
    assert result.summary["entries"] == 31
    assert (result.summary["chunks"], result.summary["requests"]) == (1, 3)
    assert "asking 2024-01-01..2024-01-16 and 2024-01-17..2024-01-31 instead" in result.err
    files = [c["file"] for c in manifest(tmp_path)["chunks"]]
    assert files == ["2024-01-01_2024-01-16.json", "2024-01-17_2024-01-31.json"]
    assert sum(len(json.loads(chunk_files(tmp_path)[f])) for f in files) == 31


def test_after_a_cut_the_later_chunks_are_asked_in_parts_at_once(run_step, tmp_path):
    quarter = ("--start", "2024-01-01", "--end", "2024-03-31", "--concurrency", "1")
    with latency_server(day_cost=0.02, gateway_timeout=0.45) as server:
        result = extract(run_step, server, tmp_path, *quarter)
        measured = stats(server)
    assert result.code == 0, result.err
    # One cut, then every 31-day chunk as two parts: 1 + 2 + 2 + 2, no second 504.
    assert measured["by_status"] == {"200": 6, "504": 1}
    assert result.summary["requests"] == 7
    assert len(manifest(tmp_path)["chunks"]) == 6


def test_after_a_mere_hang_the_later_chunks_are_asked_whole_again(run_step, tmp_path):
    quarter = ("--start", "2024-01-01", "--end", "2024-03-31", "--concurrency", "1")
    with latency_server(day_cost=0.002, gateway_timeout=1.0) as server:
        faults(server, {"hang": True})
        result = extract(run_step, server, tmp_path, *quarter)
        measured = stats(server)
        ranges = asked(server)
    assert result.code == 0, result.err
    # The halves answer in a fraction of the cut's time: February and March go whole.
    assert measured["by_status"] == {"200": 4, "504": 1}
    assert ranges[-2:] == [("2024-02-01", "2024-03-02"), ("2024-03-03", "2024-03-31")]
    assert "up to whole chunks per request again" in result.err


def test_a_hang_the_pace_does_not_explain_leaves_the_later_chunks_whole(run_step, tmp_path):
    quarter = ("--start", "2024-01-01", "--end", "2024-03-31", "--concurrency", "1")
    with latency_server(day_cost=0.002, gateway_timeout=1.0) as server:
        faults(server, {}, {"hang": True})  # January answers quickly; February hangs
        result = extract(run_step, server, tmp_path, *quarter)
        ranges = asked(server)
    assert result.code == 0, result.err
    assert ranges == [
        ("2024-01-01", "2024-01-31"),
        ("2024-02-01", "2024-03-02"),
        ("2024-02-01", "2024-02-16"),
        ("2024-02-17", "2024-03-02"),
        ("2024-03-03", "2024-03-31"),
    ]
    assert "a hang, not the length" in result.err
    assert "up to whole chunks" not in result.err  # it never narrowed


def test_a_client_time_out_splits_the_range_too(run_step, tmp_path):
    with latency_server() as server:
        faults(server, {"hang": True})
        result = extract(
            run_step, server, tmp_path, "--start", "2024-01-01", "--end", "2024-01-10",
            "--timeout", "0.5",
        )  # fmt: skip
        ranges = asked(server)
    assert result.code == 0, result.err
    assert "timed out after 0.5 s" in result.err
    assert sorted(ranges[1:]) == [("2024-01-01", "2024-01-05"), ("2024-01-06", "2024-01-10")]
    assert result.summary["entries"] == 10


def test_a_one_day_range_that_times_out_is_retried_as_it_is(run_step, tmp_path):
    with latency_server(gateway_timeout=0.3) as server:
        faults(server, {"hang": True})
        result = extract(run_step, server, tmp_path, "--start", "2024-01-05")
        ranges = asked(server)
    assert result.code == 0, result.err
    assert ranges == [("2024-01-05", "2024-01-05")] * 2
    assert "retry 1/2" in result.err


def test_a_cut_chunk_half_fetched_resumes_with_the_other_half_only(run_step, tmp_path):
    with latency_server(day_cost=0.02, gateway_timeout=0.45) as server:
        # The cut, the first half, then the second half fails on every attempt.
        faults(server, {}, {}, {"status": 500}, {"status": 500}, {"status": 500})
        failed = extract(run_step, server, tmp_path, *JANUARY, "--concurrency", "1")
        assert failed.code == 5
        assert "0 of 1 chunk(s) are kept" in failed.summary["reason"]
        assert list(chunk_files(tmp_path)) == ["2024-01-01_2024-01-16.json"]

        requests.post(f"{server.base_url}/_control/reset", timeout=10)
        resumed = extract(run_step, server, tmp_path, *JANUARY)
        ranges = asked(server)
    assert resumed.code == 0, resumed.err
    assert ranges == [("2024-01-17", "2024-01-31")]
    assert resumed.summary["requests"] == 1
    assert [c["file"] for c in manifest(tmp_path)["chunks"]] == [
        "2024-01-01_2024-01-16.json",
        "2024-01-17_2024-01-31.json",
    ]
    assert manifest(tmp_path)["totals"]["entries"] == 31


def test_a_429_holds_every_new_request_for_its_retry_after(run_step, tmp_path):
    with latency_server(day_cost=0.05) as server:
        faults(server, {}, {"status": 429, "retry_after": 1})
        result = extract(run_step, server, tmp_path, *JANUARY, "--chunk-days", "4")
    assert result.code == 0, result.err
    assert result.summary["entries"] == 31
    assert "rate limited (HTTP 429, rate limit remaining 0); retry 1/2 in 1.0 s" in result.err


def test_after_a_429_nothing_new_is_sent_until_its_retry_after_has_passed():
    clock = ManualClock()
    sent: list[tuple[float, tuple]] = []  # (the fetcher's clock, the range) of each request
    with latency_server() as server:
        faults(server, {}, {"status": 429, "retry_after": 1})
        spans = dates.spans(D(2024, 1, 1), D(2024, 1, 31), 4)
        policy = RetryPolicy(max_retries=2, backoff=0.01, max_wait=5, clock=clock)
        client = ApodClient(server.apod_url, "concurrency-test-key", 5, policy)
        attempt = client.attempt

        def recorded(*span):
            sent.append((clock.now, span))
            return attempt(*span)

        client.attempt = recorded
        fetcher = Fetcher(client, 4)
        arrived: list = []
        fetcher.run([Job(s, n) for n, s in enumerate(spans)], lambda job, _: arrived.append(job))
    assert len(arrived) == len(spans) == 8
    # The first request went alone, then four at once (the clock had not moved: only
    # sleeps move it), and more as answers came, until one met the 429. Its Retry-After
    # held every request after it, the retry included, until the clock had moved on 1 s.
    opened = sent[0][0]
    assert len(sent) == 9  # 8 ranges and the retry
    assert all(at == opened or at >= opened + 1.0 for at, _ in sent)
    assert any(at >= opened + 1.0 for at, _ in sent)
    assert sum(clock.sleeps) >= 1.0


def test_a_low_quota_narrows_to_one_request_so_no_request_meets_a_429(run_step, tmp_path):
    with latency_server(day_cost=0.02, rate_limit=10) as server:
        result = extract(run_step, server, tmp_path, *JANUARY, "--chunk-days", "2")
        measured = stats(server)
    assert result.code == 5
    assert "X-RateLimit-Remaining: 0" in result.summary["reason"]
    assert measured["apod_requests"] == 10
    assert "429" not in measured["by_status"]
    assert len(chunk_files(tmp_path)) == 10  # every answer kept for the rerun


def test_a_refusal_stops_new_requests_and_keeps_what_was_in_flight(run_step, tmp_path):
    with latency_server(day_cost=0.05) as server:
        faults(server, {}, {"status": 403})
        result = extract(run_step, server, tmp_path, *JANUARY, "--chunk-days", "4")
        measured = stats(server)
    assert result.code == 4
    assert result.summary["reason"].startswith("API refused the key (API_KEY_INVALID)")
    assert measured["apod_requests"] <= 5  # the first alone, then at most one pool of 4
    assert len(chunk_files(tmp_path)) == measured["by_status"]["200"]


@pytest.mark.parametrize("value", ["0", "17"])
def test_concurrency_is_1_to_16(run_step, tmp_path, value):
    with latency_server() as server:
        result = extract(
            run_step, server, tmp_path, "--start", "2024-01-01", "--concurrency", value
        )
        assert stats(server)["apod_requests"] == 0
    assert result.code == 2
    assert result.summary["reason"] == "--concurrency must be 1..16"
