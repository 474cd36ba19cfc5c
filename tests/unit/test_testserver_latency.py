"""The test server's latency model: a cost per day answered, the gateway's 504 cut, hangs,
and the requests-in-flight counter that tells how hard a client pushed."""

from __future__ import annotations

import datetime as dt
import io
import math
import random
import threading
from pathlib import Path

import pytest
import requests

from apod_testserver.latency import LatencyModel, Timing
from apod_testserver.server import Config, serving

pytestmark = pytest.mark.unit

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "apod"
TODAY = dt.date(2024, 3, 31)
JANUARY = {"start_date": "2024-01-01", "end_date": "2024-01-31"}


def get(server, params: dict, timeout: float = 10, **kwargs) -> requests.Response:
    return requests.get(
        server.apod_url, params={"api_key": "k", **params}, timeout=timeout, **kwargs
    )


def stats(server) -> dict:
    return requests.get(f"{server.base_url}/_control/stats", timeout=10).json()


def faults(server, *specs: dict) -> None:
    response = requests.post(
        f"{server.base_url}/_control/faults", json={"faults": list(specs)}, timeout=10
    )
    response.raise_for_status()


def held(server) -> list[tuple[int, float | None, bool]]:
    """Each APOD request's status, the seconds the server held its answer (the model's
    decision, recorded by the server: no clock is read here) and whether it was cut."""
    return [(r["status"], r["held"], r["cut"]) for r in stats(server)["recent"] if "held" in r]


def wait_until(check, tries: int = 250) -> bool:
    """Poll a condition the server reaches on its own (a bounded number of tries)."""
    for _ in range(tries):
        if check():
            return True
        threading.Event().wait(0.02)
    return check()


@pytest.fixture
def log() -> io.StringIO:
    return io.StringIO()


def latency_server(log, **latency):
    return serving(Config(SAMPLE, port=0, today=TODAY, seed=3, log=log, **latency))


# --- the model alone ----------------------------------------------------------------


def test_the_cost_is_days_times_the_page_time_plus_any_delay():
    model = LatencyModel(day_cost=0.02)
    assert model.timing(31) == Timing(pytest.approx(0.62), cut=False)
    assert model.timing(1, extra=1.5) == Timing(pytest.approx(1.52), cut=False)
    assert model.timing(0) == Timing(0.0, cut=False)


def test_the_gateway_cuts_what_would_take_longer_at_its_timeout():
    model = LatencyModel(day_cost=0.5, gateway_timeout=10.0)
    assert model.timing(20) == Timing(10.0, cut=False)  # exactly the limit still answers
    assert model.timing(21) == Timing(10.0, cut=True)
    assert model.timing(1, hang=True) == Timing(10.0, cut=True)


def test_without_a_gateway_a_hang_never_ends():
    assert LatencyModel().timing(1, hang=True) == Timing(math.inf, cut=False)


def test_the_hang_rate_hangs_that_share_of_requests_reproducibly():
    def hangs(seed: int) -> list[bool]:
        model = LatencyModel(gateway_timeout=1.0, hang_rate=0.25, rng=random.Random(seed))
        return [model.timing(1).cut for _ in range(400)]

    assert hangs(7) == hangs(7)
    assert 60 <= sum(hangs(7)) <= 140
    always = LatencyModel(gateway_timeout=1.0, hang_rate=1.0)
    assert all(always.timing(0).cut for _ in range(20))


@pytest.mark.parametrize(
    "bad",
    [{"day_cost": -0.1}, {"gateway_timeout": 0.0}, {"hang_rate": 1.5}],
    ids=["negative-cost", "zero-timeout", "rate-above-one"],
)
def test_impossible_settings_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        LatencyModel(**bad)


# --- over HTTP ----------------------------------------------------------------------


def test_a_range_costs_each_of_its_days_and_a_single_date_one(log):
    with latency_server(log, day_cost=0.05) as server:
        ranged = get(server, {"start_date": "2024-01-01", "end_date": "2024-01-10"})
        single = get(server, {"date": "2024-01-05"})
        refused = get(server, {"date": "1990-01-01"})
        answers = held(server)
    assert (ranged.status_code, len(ranged.json())) == (200, 10)
    assert single.status_code == 200
    # A date the service rejects before scraping anything costs nothing.
    assert refused.status_code == 400
    assert answers == [
        (200, pytest.approx(0.5), False),
        (200, pytest.approx(0.05), False),
        (400, 0.0, False),
    ]


def test_missing_days_inside_a_range_cost_their_page_too(log):
    with latency_server(log, day_cost=0.05) as server:
        response = get(server, {"start_date": "1995-06-16", "end_date": "1995-06-25"})
        answers = held(server)
    assert len(response.json()) == 4  # the sample has 1995-06-16 and 06-20..22 of these
    assert answers == [(200, pytest.approx(0.5), False)]


def test_an_answer_longer_than_the_gateway_timeout_is_a_504_page_at_the_timeout(log):
    with latency_server(log, day_cost=0.05, gateway_timeout=0.5) as server:
        cut = get(server, JANUARY, headers={"Accept": "application/json"})
        half = get(server, {"start_date": "2024-01-01", "end_date": "2024-01-08"})
        snapshot = stats(server)
        answers = held(server)
    assert cut.status_code == 504
    assert cut.headers["Content-Type"].startswith("text/html")
    assert "504 Gateway Time-out" in cut.text
    assert cut.headers["X-RateLimit-Remaining"].isdigit()  # the gateway still counted it
    assert half.status_code == 200
    assert len(half.json()) == 8
    assert snapshot["by_status"] == {"200": 1, "504": 1}
    # Cut at the timeout, not after the whole month.
    assert answers == [(504, 0.5, True), (200, pytest.approx(0.4), False)]


def test_a_delay_fault_counts_toward_the_gateway_timeout(log):
    with latency_server(log, gateway_timeout=0.3) as server:
        faults(server, {"delay": 5.0}, {"delay": 0.1})
        slow = get(server, {"date": "2024-01-02"})
        quick = get(server, {"date": "2024-01-02"})
        answers = held(server)
    assert slow.status_code == 504
    assert quick.status_code == 200
    assert answers == [(504, 0.3, True), (200, pytest.approx(0.1), False)]


def test_a_hang_is_cut_by_the_gateway(log):
    with latency_server(log, gateway_timeout=0.3) as server:
        faults(server, {"hang": True})
        hung = get(server, {"date": "2024-01-02"})
        after = get(server, {"date": "2024-01-02"})
        answers = held(server)
    assert hung.status_code == 504
    assert after.status_code == 200
    assert answers == [(504, 0.3, True), (200, 0.0, False)]


def test_without_a_gateway_a_hang_lasts_until_the_client_gives_up(log):
    with latency_server(log, hang_rate=1.0) as server:
        with pytest.raises(requests.Timeout):
            get(server, {"date": "2024-01-02"}, timeout=0.3)
        # The server notices the client left, counts it as nginx would, and frees the slot.
        assert wait_until(lambda: stats(server)["by_status"] == {"499": 1})
        assert stats(server)["in_flight"] == 0
        assert held(server) == [(499, None, False)]  # a hang: held until the client left
    assert "the client left before the answer" in log.getvalue()


def test_stats_report_the_most_requests_in_flight_at_once(log):
    with latency_server(log, day_cost=0.1) as server:
        start = threading.Barrier(5)
        codes: list[int] = []

        def one() -> None:
            start.wait()
            codes.append(
                get(server, {"start_date": "2024-01-01", "end_date": "2024-01-05"}).status_code
            )

        threads = [threading.Thread(target=one) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        snapshot = stats(server)
        assert codes == [200] * 5
        assert snapshot["apod_requests"] == 5
        assert snapshot["max_in_flight"] == 5
        assert snapshot["in_flight"] == 0
        assert server.stats.summary() == "5 APOD request(s), at most 5 in flight"

        get(server, {"date": "2024-01-02"})
        assert stats(server)["max_in_flight"] == 5  # a high-water mark, not the last value
        requests.post(f"{server.base_url}/_control/reset", timeout=10)
        assert (stats(server)["max_in_flight"], stats(server)["apod_requests"]) == (0, 0)
    assert "APOD requests in flight: 5, the most so far" in log.getvalue()


def test_control_calls_are_not_counted_in_flight(log):
    with latency_server(log) as server:
        for _ in range(3):
            stats(server)
        assert stats(server)["max_in_flight"] == 0
        get(server, {"date": "2024-01-02"})
        assert stats(server)["max_in_flight"] == 1


def test_the_model_is_off_by_default(log):
    with latency_server(log) as server:
        response = get(server, JANUARY)
        answers = held(server)
    assert response.status_code == 200
    assert answers == [(200, 0.0, False)]
