"""The extract step's pure parts: chunking, public URLs, Retry-After, backoff, chunk files."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from apod_common import files
from apod_common.errors import StepError
from apod_extract import dates, store
from apod_extract.client import RetryPolicy, entry_count, retry_after_seconds
from apod_extract.main import public_url

pytestmark = pytest.mark.unit

D = dt.date


@pytest.mark.parametrize(
    ("start", "end", "size", "expected"),
    [
        (D(2024, 1, 1), D(2024, 1, 1), 31, [(D(2024, 1, 1), D(2024, 1, 1))]),
        (D(2024, 1, 1), D(2024, 1, 31), 31, [(D(2024, 1, 1), D(2024, 1, 31))]),
        (
            D(2024, 1, 1),
            D(2024, 2, 1),
            31,
            [(D(2024, 1, 1), D(2024, 1, 31)), (D(2024, 2, 1), D(2024, 2, 1))],
        ),
        (
            D(2023, 12, 30),
            D(2024, 1, 3),
            2,
            [
                (D(2023, 12, 30), D(2023, 12, 31)),
                (D(2024, 1, 1), D(2024, 1, 2)),
                (D(2024, 1, 3), D(2024, 1, 3)),
            ],
        ),
    ],
)
def test_spans_cover_the_range_in_order(start, end, size, expected):
    assert dates.spans(start, end, size) == expected


@pytest.mark.parametrize("days", [1, 30, 31, 32, 62, 366, 11387])
def test_span_count_is_the_ceiling_of_days_over_31(days):
    start = D(1995, 6, 16)
    plan = dates.spans(start, start + dt.timedelta(days=days - 1), 31)
    assert len(plan) == -(-days // 31)
    assert all((b - a).days < 31 for a, b in plan)
    assert all(plan[i][1] + dt.timedelta(days=1) == plan[i + 1][0] for i in range(len(plan) - 1))


def test_range_checks_do_not_look_at_the_clock():
    dates.check_range(D(1995, 6, 16), D(2999, 1, 1))
    with pytest.raises(StepError) as excinfo:
        dates.check_range(D(1995, 6, 15), D(1995, 6, 20))
    assert excinfo.value.code == 2


def test_public_url_drops_credentials():
    assert (
        public_url("https://user:pw@api.example.org:8443/planetary/apod?api_key=K&x=1")
        == "https://api.example.org:8443/planetary/apod?x=1"
    )
    assert public_url("http://[::1]:8000/apod") == "http://[::1]:8000/apod"


def test_retry_after_accepts_seconds_and_http_dates():
    now = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("2900") == 2900
    assert retry_after_seconds("Mon, 01 Jan 2024 12:00:30 GMT", now) == 30
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None


def test_backoff_doubles_with_jitter_and_is_capped():
    policy = RetryPolicy(backoff=1.0, max_wait=10.0, rng=random.Random(7))
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)]:
        delay = policy.delay(attempt)
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.parametrize(
    ("body", "count"),
    [
        (b"[]", 0),
        (b'[{"date": "2024-01-01"}]', 1),
        (b'{"code": 500}', None),
        (b'[{"date": "2024-01-0', None),
        (b"<html></html>", None),
        (b"\xff\xfe", None),
    ],
)
def test_entry_count_accepts_json_arrays_only(body, count):
    assert entry_count(body) == count


def test_chunk_files_carry_their_fetch_time(tmp_path):
    target = tmp_path / "2024-01-01_2024-01-31.json"
    moment = dt.datetime(2024, 2, 1, 8, 30, 5, tzinfo=dt.UTC)
    files.atomic_write(target, b"[]", mtime=moment)
    assert store.modified_at(target) == moment
    assert store.utc_text(moment) == "2024-02-01T08:30:05Z"


def test_strays_are_other_chunks_and_dead_temp_files(tmp_path):
    for name in (
        "2024-01-01_2024-01-31.json",
        "2023-01-01_2023-01-31.json",
        "manifest.json",
        ".2024-01-01_2024-01-31.json.x1.tmp",
        "notes.txt",
    ):
        (tmp_path / name).write_text("[]")
    assert [p.name for p in store.strays(tmp_path, {"2024-01-01_2024-01-31.json"})] == [
        ".2024-01-01_2024-01-31.json.x1.tmp",
        "2023-01-01_2023-01-31.json",
    ]
