"""The backfill fold's decisions (apod_pipeline.backfill), on the states and plans the
execution API would hand them; the runs themselves, folded on a real scheduler, are
tests/e2e/test_compose_backfill.py's."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from apod_pipeline import backfill
from apod_pipeline.backfill import Plan, covering, fold_range

pytestmark = pytest.mark.dags

D = dt.date
DAY = D(2024, 3, 10)


def states_of(table: dict[dt.date, str | None]):
    """The extract state of each day's backfill run, as get_task_states gives them: a day
    without a run is not in the answer. Records every question asked."""
    asked: list[list[dt.date]] = []

    def states(days: list[dt.date]) -> dict[dt.date, str | None]:
        asked.append(days)
        return {day: table[day] for day in days if day in table}

    states.asked = asked
    return states


def days(first: dt.date, count: int, state: str | None = None) -> dict[dt.date, str | None]:
    return {first + dt.timedelta(days=n): state for n in range(count)}


def test_a_leader_takes_the_days_whose_extract_has_not_run():
    # Running (waiting for a plan) or not started: taken. Already run: not.
    table = days(D(2024, 3, 1), 30) | {D(2024, 3, 13): "running", D(2024, 3, 16): "success"}
    table[D(2024, 3, 5)] = "skipped"  # a day an earlier backfill folded: left alone
    assert fold_range(DAY, states_of(table)) == (D(2024, 3, 6), D(2024, 3, 15))


def test_the_range_stops_at_a_day_without_a_backfill_run():
    table = days(D(2024, 3, 1), 30)
    del table[D(2024, 3, 12)]  # a scheduled run's day, or none
    assert fold_range(DAY, states_of(table)) == (D(2024, 3, 1), D(2024, 3, 11))


def test_a_year_is_asked_a_window_at_a_time_and_the_range_has_at_most_max_days():
    states = states_of(days(D(2023, 1, 1), 800))
    first, last = fold_range(DAY, states)
    assert (last - first).days + 1 == backfill.MAX_DAYS
    assert first == DAY  # forward first: a backfill in date order starts at its first day
    assert all(len(window) <= backfill.WINDOW for window in states.asked)


def test_backward_once_forward_ends():
    """A backfill run backwards starts with its last day: the range reaches back."""
    assert fold_range(D(2024, 3, 31), states_of(days(D(2024, 3, 1), 31))) == (
        D(2024, 3, 1),
        D(2024, 3, 31),
    )


def test_a_lone_day_is_its_own_range():
    assert fold_range(DAY, states_of({DAY: "running"})) == (DAY, DAY)


@pytest.mark.parametrize(
    ("plans", "clear_number", "found"),
    [
        ([Plan("2024-03-09", "2024-03-16", "lead")], 0, True),
        ([None, Plan("2024-03-01", "2024-03-10", "back")], 0, True),  # the day after's
        ([Plan("2024-03-01", "2024-03-09", "short")], 0, False),  # ends the day before
        ([Plan("2024-03-09", "2024-03-16", "lead", 0)], 1, False),  # before this clearing
        ([Plan("2024-03-09", "2024-03-16", "lead", 1)], 1, True),  # the same clearing
        ([None, None], 0, False),
    ],
)
def test_a_run_follows_only_a_plan_of_its_round_of_clearing_that_covers_its_day(
    plans, clear_number, found
):
    plan = covering(DAY, plans, clear_number)
    assert (plan is not None) == found
    if found:
        assert plan in plans


def test_a_plan_reads_back_from_its_xcom_and_nothing_else_is_one():
    plan = Plan("2024-03-01", "2024-03-07", "backfill__x", 2)
    assert Plan.of({"start": "2024-03-01", "end": "2024-03-07", "leader": "backfill__x",
                    "clear_number": 2}) == plan  # fmt: skip
    assert Plan.of(None) is None
    assert Plan.of({"start": "2024-03-01"}) is None
    assert Plan.of("2024-03-01") is None


@pytest.mark.parametrize(
    ("run_type", "conf"),
    [("scheduled", {}), ("manual", {}), ("backfill", {"start_date": "2024-01-01"})],
)
def test_other_runs_keep_the_dates_of_the_templates(run_type, conf):
    """No API call: the ti here has none (a call would fail the test)."""
    ti = SimpleNamespace(dag_id="apod_etl", run_id=f"{run_type}__t", try_number=1)
    logical = dt.datetime(2024, 3, 10, tzinfo=dt.UTC)
    dag_run = SimpleNamespace(run_type=run_type, logical_date=logical, clear_number=0)
    days = backfill.run_days(ti, dag_run, conf, "2024-03-10", "2024-03-12")
    assert (days.start, days.end, days.taken_by) == ("2024-03-10", "2024-03-12", None)
    backfill.skip_if_taken({"ti": ti})  # nothing taken: no skip
