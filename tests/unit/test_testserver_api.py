"""The APOD test server over real HTTP: the API contract of APOD_API.md, and its controls."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from pathlib import Path

import pytest
import requests

from apod_testserver.server import Config, serving

pytestmark = pytest.mark.unit

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "apod"
TODAY = dt.date(2024, 3, 31)
KEY = "test-key-0123456789"
USAGE = (
    "Allowed request fields for apod method are 'concept_tags', 'date', 'hd', 'count', "
    "'start_date', 'end_date', 'thumbs'"
)


@pytest.fixture
def log() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def server(log):
    with serving(Config(SAMPLE, port=0, today=TODAY, rate_limit=50, seed=1, log=log)) as srv:
        yield srv


def get(server, params: dict | None = None, key: str | None = KEY, timeout=10, **kwargs):
    query = dict(params or {})
    if key is not None:
        query = {"api_key": key, **query}
    return requests.get(server.apod_url, params=query, timeout=timeout, **kwargs)


def control(server, method: str, path: str, payload=None):
    return requests.request(method, f"{server.base_url}/_control/{path}", json=payload, timeout=10)


def service_error(code: int, msg: str) -> dict:
    return {"code": code, "msg": msg, "service_version": "v1"}


# --- entries ------------------------------------------------------------------------


def test_single_date_is_one_object_without_the_archive_credit(server):
    response = get(server, {"date": "2024-01-19"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    entry = response.json()
    assert entry["date"] == "2024-01-19"
    assert entry["service_version"] == "v1"
    assert "credit" not in entry
    assert list(entry) == sorted(entry)


def test_range_is_ascending_and_leaves_missing_days_out(server):
    response = get(server, {"start_date": "1995-06-16", "end_date": "1995-06-22"})
    assert response.status_code == 200
    assert [e["date"] for e in response.json()] == [
        "1995-06-16",
        "1995-06-20",
        "1995-06-21",
        "1995-06-22",
    ]
    june = get(server, {"start_date": "2020-06-08", "end_date": "2020-06-12"}).json()
    assert [e["date"] for e in june] == ["2020-06-08", "2020-06-09", "2020-06-11", "2020-06-12"]


def test_sample_covers_january_2024_completely(server):
    entries = get(server, {"start_date": "2024-01-01", "end_date": "2024-01-31"}).json()
    assert [e["date"] for e in entries] == [f"2024-01-{d:02d}" for d in range(1, 32)]


def test_a_range_of_missing_days_is_an_empty_array(server):
    response = get(server, {"start_date": "1995-06-17", "end_date": "1995-06-19"})
    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.parametrize("day", ["1995-06-17", "1995-06-18", "1995-06-19", "2020-06-10"])
def test_a_missing_single_day_is_404(server, day):
    response = get(server, {"date": day})
    assert response.status_code == 404
    assert response.json() == service_error(404, f"No data available for date: {day}")


def test_end_date_defaults_to_today(server):
    entries = get(server, {"start_date": "2024-01-30"}).json()
    assert [e["date"] for e in entries] == ["2024-01-30", "2024-01-31"]


def test_without_a_date_the_latest_entry_answers(log):
    config = Config(SAMPLE, port=0, today=dt.date(2024, 2, 1), log=log)
    with serving(config) as srv:
        assert get(srv).json()["date"] == "2024-01-31"  # today's is not published yet
    with serving(Config(SAMPLE, port=0, today=dt.date(2024, 1, 15), log=log)) as srv:
        assert get(srv).json()["date"] == "2024-01-15"
    with serving(Config(SAMPLE, port=0, today=dt.date(2024, 6, 1), log=log)) as srv:
        response = get(srv)
        assert response.status_code == 404
        assert response.json()["msg"] == "No data available for date: 2024-06-01"


def test_oddities_are_served_as_they_are(server):
    def entry(day):
        return get(server, {"date": day}).json()

    assert entry("2003-03-14")["title"] == "Saturn\r\nand Titan"
    assert "\ufffd" in entry("2003-03-15")["copyright"]
    other = entry("2008-06-21")
    assert other["media_type"] == "other"
    assert "url" not in other
    assert "hdurl" not in other
    assert "< | Archive |" in entry("2008-06-22")["explanation"]
    assert " " in entry("2012-03-26")["url"]
    assert "hdurl" not in entry("2012-03-27")
    assert entry("2016-07-04")["url"].startswith("//www.youtube.com/")
    assert entry("2020-06-09")["copyright"] == "\nAlex Ray\n & Sam Lee\n"
    assert entry("2023-02-14")["url"].endswith(".mp4")
    assert entry("1995-06-16")["explanation"] == ""
    assert "copyright" not in entry("1995-06-22")


def test_thumbs_true_adds_thumbnail_url_to_videos_only(server):
    def thumbs(day, value="true"):
        return get(server, {"date": day, "thumbs": value}).json().get("thumbnail_url")

    assert thumbs("2016-07-04") == "https://img.youtube.com/vi/aBc-12_xYz9/0.jpg"
    assert thumbs("2016-07-05").startswith("https://i.vimeocdn.com/video/123456789")
    assert thumbs("2023-02-14") == ""  # neither YouTube nor Vimeo
    assert thumbs("2024-01-07") == "https://img.youtube.com/vi/Xy9_abcDEF0/0.jpg"
    assert thumbs("2024-01-08") is None  # an image
    assert thumbs("2016-07-04", "false") is None
    assert thumbs("2016-07-04", "True") is not None


def test_count_returns_that_many_distinct_entries(server):
    entries = get(server, {"count": "5"}).json()
    assert len({e["date"] for e in entries}) == 5
    assert all(e["date"] <= TODAY.isoformat() for e in entries)


def test_hd_and_concept_tags_are_accepted_like_the_service(server):
    entry = get(server, {"date": "2024-01-02", "hd": "true", "concept_tags": "true"}).json()
    assert entry["concepts"] == "concept_tags functionality turned off in current service"


# --- service errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "msg"),
    [
        ({"date": "1995-06-15"}, "Date must be between Jun 16, 1995 and Mar 31, 2024."),
        ({"date": "2024-04-01"}, "Date must be between Jun 16, 1995 and Mar 31, 2024."),
        (
            {"start_date": "2024-01-01", "end_date": "2024-04-01"},
            "Date must be between Jun 16, 1995 and Mar 31, 2024.",
        ),
        ({"date": "2020/01/01"}, "time data '2020/01/01' does not match format '%Y-%m-%d'"),
        ({"date": "2020-01-011"}, "unconverted data remains: 1"),
        ({"date": "2021-02-29"}, "day is out of range for month"),
        (
            {"start_date": "2024-01-05", "end_date": "2024-01-01"},
            "start_date cannot be after end_date",
        ),
        ({"count": "0"}, "Count must be positive and cannot exceed 100"),
        ({"count": "101"}, "Count must be positive and cannot exceed 100"),
        ({"count": "ten"}, "invalid literal for int() with base 10: 'ten'"),
        ({"end_date": "2024-01-01"}, f"Bad Request: invalid field combination passed. {USAGE}"),
        (
            {"date": "2024-01-01", "count": "2"},
            f"Bad Request: invalid field combination passed. {USAGE}",
        ),
        (
            {"date": "2024-01-01", "start_date": "2024-01-01"},
            f"Bad Request: invalid field combination passed. {USAGE}",
        ),
        ({"date": "2024-01-01", "foo": "1"}, f"Bad Request: incorrect field passed. {USAGE}"),
    ],
)
def test_bad_requests_get_the_services_400_bodies(server, params, msg):
    response = get(server, params)
    assert response.status_code == 400
    assert response.json() == service_error(400, msg)


def test_unknown_paths_and_methods(server):
    response = requests.get(f"{server.base_url}/planetary/nope", timeout=10)
    assert response.status_code == 404
    assert response.json()["code"] == 404
    assert requests.post(server.apod_url, timeout=10).status_code == 405


# --- gateway ------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, ""])
def test_missing_or_empty_key_is_403_api_key_missing(server, key):
    response = get(server, {"date": "2024-01-01"}, key=key)
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "API_KEY_MISSING",
            "message": "No api_key was supplied. Get one at https://api.nasa.gov:443",
        }
    }


def test_listed_invalid_keys_and_unlisted_keys_are_403_api_key_invalid(log):
    config = Config(
        SAMPLE,
        port=0,
        today=TODAY,
        log=log,
        invalid_keys=frozenset({"revoked"}),
        valid_keys=frozenset({KEY}),
    )
    with serving(config) as srv:
        for key in ("revoked", "someone-else"):
            response = get(srv, {"date": "2024-01-01"}, key=key)
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "API_KEY_INVALID"
        assert get(srv, {"date": "2024-01-01"}).status_code == 200
        assert get(srv, {"date": "2024-01-01"}, key="DEMO_KEY").status_code == 200


def test_browsers_get_html_gateway_errors_unless_json_is_asked_for(server):
    html = get(server, key=None, headers={"Accept": "text/html,*/*;q=0.8"})
    assert html.status_code == 403
    assert html.headers["Content-Type"].startswith("text/html")
    as_json = get(server, key=None, headers={"Accept": "application/json"})
    assert as_json.json()["error"]["code"] == "API_KEY_MISSING"


def test_rate_limit_headers_count_down_per_key(server):
    first = get(server, {"date": "2024-01-01"})
    second = get(server, {"date": "2024-01-02"})
    assert first.headers["X-RateLimit-Limit"] == "50"
    assert int(first.headers["X-RateLimit-Remaining"]) == 49
    assert int(second.headers["X-RateLimit-Remaining"]) == 48
    other = get(server, {"date": "2024-01-02"}, key="DEMO_KEY")
    assert int(other.headers["X-RateLimit-Remaining"]) == 49
    errored = get(server, {"date": "nope"})  # errors count too, as on the real gateway
    assert errored.status_code == 400
    assert int(errored.headers["X-RateLimit-Remaining"]) == 47


def test_exhausted_quota_is_429_over_rate_limit_with_retry_after(log):
    now = [100.0]  # the server's clock, moved by the test
    config = Config(
        SAMPLE, port=0, today=TODAY, rate_limit=2, rate_window=1.0, log=log, clock=lambda: now[0]
    )
    with serving(config) as srv:
        assert get(srv, {"date": "2024-01-01"}).headers["X-RateLimit-Remaining"] == "1"
        assert get(srv, {"date": "2024-01-01"}).headers["X-RateLimit-Remaining"] == "0"
        refused = get(srv, {"date": "2024-01-01"})
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "OVER_RATE_LIMIT"
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert int(refused.headers["Retry-After"]) == 1
        now[0] += 0.5
        assert get(srv, {"date": "2024-01-01"}).status_code == 429  # still in the window
        now[0] += 0.6  # the window rolls on
        assert get(srv, {"date": "2024-01-01"}).status_code == 200


# --- controls -------------------------------------------------------------------------


@pytest.mark.faults
def test_fault_queue_applies_one_fault_per_request_in_order(server):
    faults = [
        {"status": 503},
        {"status": 502, "html": True},
        {"status": 500},
        {"status": 429, "retry_after": 2},
        {"truncate": True},
        {"html_200": True},
        {"delay": 0.3},
    ]
    assert control(server, "POST", "faults", {"faults": faults}).json() == {"pending": 7}
    params = {"start_date": "2024-01-01", "end_date": "2024-01-03"}

    first = get(server, params)
    assert first.status_code == 503
    assert "X-RateLimit-Remaining" in first.headers
    second = get(server, params)
    assert second.status_code == 502
    assert second.text.lstrip().startswith("<!DOCTYPE html>")
    third = get(server, params)
    assert third.json() == service_error(500, "Internal Service Error")
    fourth = get(server, params)
    assert fourth.status_code == 429
    assert fourth.headers["Retry-After"] == "2"
    assert fourth.json()["error"]["code"] == "OVER_RATE_LIMIT"
    fifth = get(server, params)
    assert fifth.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(fifth.content)
    sixth = get(server, params)
    assert sixth.status_code == 200
    assert sixth.headers["Content-Type"].startswith("text/html")
    seventh = get(server, params)
    assert len(seventh.json()) == 3
    held = [r["held"] for r in control(server, "GET", "stats").json()["recent"]]
    assert held == [0.0] * 6 + [0.3]  # only the seventh was held, for its delay
    assert len(get(server, params).json()) == 3  # queue empty: back to normal


@pytest.mark.faults
def test_disconnect_fault_closes_without_an_answer(server):
    control(server, "POST", "faults", {"faults": [{"disconnect": True}]})
    with pytest.raises(requests.ConnectionError):
        get(server, {"date": "2024-01-01"})
    assert get(server, {"date": "2024-01-01"}).status_code == 200


@pytest.mark.faults
def test_bad_fault_specs_are_refused_whole(server):
    response = control(server, "POST", "faults", {"faults": [{"status": 503}, {"colour": "red"}]})
    assert response.status_code == 400
    assert "colour" in response.json()["error"]
    assert control(server, "GET", "faults").json() == {"pending": 0}
    assert control(server, "POST", "faults", {"nope": []}).status_code == 400


@pytest.mark.faults
def test_an_after_fault_answers_once_others_have_been_answered(server):
    control(server, "POST", "faults", {"faults": [{"after": 2}]})
    statuses: list[int] = []
    first = threading.Thread(
        target=lambda: statuses.append(get(server, {"date": "2024-01-01"}).status_code)
    )
    first.start()
    # Two others, one after the other: the first is held until both were answered.
    for answered in (1, 2):
        assert wait_for(lambda: control(server, "GET", "stats").json()["in_flight"] == 1)
        assert get(server, {"date": "2024-01-02"}).status_code == 200
        if answered == 1:
            assert first.is_alive(), "answered before two others were"
    first.join(timeout=30)
    assert statuses == [200]
    # Alone in flight for good, it is answered after all: no deadlock at the end of a run.
    control(server, "POST", "faults", {"faults": [{"after": 5}]})
    assert get(server, {"date": "2024-01-01"}, timeout=60).status_code == 200
    bad = control(server, "POST", "faults", {"faults": [{"after": -1}]})
    assert bad.status_code == 400


def wait_for(check, tries: int = 500) -> bool:
    """Poll a state the server reaches on its own (a bounded number of tries)."""
    for _ in range(tries):
        if check():
            return True
        threading.Event().wait(0.01)
    return False


@pytest.mark.faults
def test_fail_rate_one_fails_every_request(log):
    with serving(Config(SAMPLE, port=0, today=TODAY, fail_rate=1.0, log=log)) as srv:
        response = get(srv, {"date": "2024-01-01"})
        assert response.json() == service_error(500, "Internal Service Error")


def test_stats_count_requests_by_status_and_reset_clears_everything(server):
    get(server, {"date": "2024-01-01"})
    get(server, {"date": "2020-06-10"})
    get(server, key=None)
    requests.get(f"{server.base_url}/elsewhere", timeout=10)
    control(server, "POST", "faults", {"faults": [{"status": 503}]})
    control(server, "PUT", "entries/2024-01-01", {"title": "Edited", "media_type": "image"})
    stats = control(server, "GET", "stats").json()
    assert stats["requests"] == 4
    assert stats["apod_requests"] == 3
    assert stats["by_status"] == {"200": 1, "403": 1, "404": 2}
    assert stats["faults_pending"] == 1
    assert stats["recent"][0]["params"] == {"api_key": ["***"], "date": ["2024-01-01"]}

    assert control(server, "POST", "reset").json() == {"reset": True}
    stats = control(server, "GET", "stats").json()
    assert (stats["requests"], stats["faults_pending"], stats["recent"]) == (0, 0, [])
    assert get(server, {"date": "2024-01-01"}).json()["title"] != "Edited"
    assert get(server, {"date": "2024-01-01"}).headers["X-RateLimit-Remaining"] == "48"


def test_put_and_delete_entries_simulate_upstream_edits(server):
    edited = {"title": "Corrected Title", "explanation": "", "media_type": "image", "url": "x"}
    response = control(server, "PUT", "entries/2024-01-05", edited)
    assert response.json() == {"date": "2024-01-05", "created": False}
    entry = get(server, {"date": "2024-01-05"}).json()
    assert entry["title"] == "Corrected Title"
    assert entry["date"] == "2024-01-05"

    assert control(server, "PUT", "entries/2020-06-10", edited).status_code == 201
    june = get(server, {"start_date": "2020-06-09", "end_date": "2020-06-11"}).json()
    assert [e["date"] for e in june] == ["2020-06-09", "2020-06-10", "2020-06-11"]

    assert control(server, "DELETE", "entries/2024-01-06").json()["removed"] is True
    assert get(server, {"date": "2024-01-06"}).status_code == 404
    assert control(server, "PUT", "entries/not-a-date", edited).status_code == 400
    assert control(server, "PUT", "entries/2024-01-05", [1, 2]).status_code == 400


def test_health_reports_the_servers_today(server):
    assert control(server, "GET", "health").json() == {"status": "ok", "today": "2024-03-31"}


@pytest.mark.faults
def test_request_log_never_shows_the_key(server, log):
    get(server, {"date": "2024-01-01"})
    get(server, {"date": "2024-01-01"}, key="another-secret-key")
    requests.get(f"{server.apod_url}?API_KEY={KEY}&date=x", timeout=10)
    text = log.getvalue()
    assert "/planetary/apod?api_key=***" in text
    assert KEY not in text
    assert "another-secret-key" not in text
