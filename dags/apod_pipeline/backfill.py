"""Airflow's own Backfill folded into ranges: the first run of a backfill's days fetches
them all, and the others find their day taken and skip without starting a container.

A backfill (the UI's Trigger dialog, `airflow backfill create`, `POST /api/v2/backfills`)
makes one run per day, each a whole pipeline (five containers and a commit): a week cost
seven times the one range run that covers it. Here, when a backfill run's extract renders
its dates (`run_days`, the templates' macro), it decides:

- **follow**: the run of the day before or after planned a range that covers this day, in
  the same round of clearing (`covering`): it takes that plan, its extract ends there
  without a container and every task after it is skipped (`skip_if_taken`, the tasks'
  pre-execute hook);
- **lead**: else its extract fetches its own day and the adjacent backfill days whose
  extract has not run (`fold_range`), at most `MAX_DAYS`, and its run loads and versions
  them as one batch.

Either way it leaves the plan as an XCom (`FOLD_KEY`) for the runs beside it. While the day
before is still deciding (a backfill's runs may be in flight side by side), a run waits
for its plan, at most `WAIT_SECONDS`. Leading where it could have followed only costs
work (every step is idempotent, the steps' locks serialise overlapping runs); following is
a promise that the leader's run keeps, or whose failure it shows (dags/README.md, "Backfill":
the decision). Scheduled and manual runs, and a backfill given `start_date`/`end_date` as
its conf, keep the dates the templates give them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

FOLD_KEY = "apod_fold"
BACKFILL = "backfill"  # DagRunType.BACKFILL_JOB: the run type, and its run ids' prefix
# A leader fetches at most this many days (a year): a backfill of decades is a few runs.
MAX_DAYS = 366
# Days asked per task-states request.
WINDOW = 31
# Extract states of a run that has not decided yet: the next day's run waits for its plan.
DECIDING = frozenset({"scheduled", "queued", "running", "up_for_retry"})
# Extract states of a backfill day a leader may take: its extract has not run (yet). A
# follower's extract has succeeded (it decided) and a plain run's has run: not taken.
NOT_RUN = DECIDING | {None}
WAIT_SECONDS = 300.0
POLL_SECONDS = 0.5
ONE_DAY = dt.timedelta(days=1)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """Days `start`..`end` (YYYY-MM-DD) fetched by run `leader`, in its `clear_number`-th
    round of clearing."""

    start: str
    end: str
    leader: str
    clear_number: int = 0

    def covers(self, day: dt.date) -> bool:
        return self.start <= day.isoformat() <= self.end

    @classmethod
    def of(cls, value: Any) -> Plan | None:
        """A plan read back from an XCom; None for anything else."""
        try:
            return cls(**value) if isinstance(value, dict) else None
        except TypeError:
            return None


@dataclass(frozen=True)
class RunDays:
    """What a run's extract asks for; `taken_by`: the plan of the run that fetches its day."""

    start: str
    end: str
    taken_by: Plan | None = None


def covering(day: dt.date, neighbours: Iterable[Plan | None], clear_number: int) -> Plan | None:
    """The plan of a neighbour (the runs of the day before and after) that covers `day`,
    made in the same round of clearing as this run: a plan older than this run's last
    clearing may be one it has been cleared to redo."""
    for plan in neighbours:
        if plan is not None and plan.covers(day) and plan.clear_number == clear_number:
            return plan
    return None


def fold_range(
    day: dt.date,
    states: Callable[[list[dt.date]], Mapping[dt.date, str | None]],
    max_days: int = MAX_DAYS,
) -> tuple[dt.date, dt.date]:
    """`day` and the adjacent days whose backfill run's extract has not run (`states`:
    the extract state of each day's backfill run; a day without one is left out), forward
    first, then back, `max_days` in all."""
    last = _extend(day, ONE_DAY, max_days - 1, states)
    first = _extend(day, -ONE_DAY, max_days - 1 - (last - day).days, states)
    return first, last


def _extend(day: dt.date, step: dt.timedelta, room: int, states) -> dt.date:
    while room > 0:
        window = [day + step * n for n in range(1, min(WINDOW, room) + 1)]
        found = states(window)
        for candidate in window:
            if candidate not in found or found[candidate] not in NOT_RUN:
                return day
            day, room = candidate, room - 1
    return day


# This task process's decisions: made when the templates render (START and END ask the
# same question), read again by skip_if_taken just before execute.
_decided: dict[tuple, RunDays] = {}


def _key(ti: Any) -> tuple[str, str, int]:
    return (ti.dag_id, ti.run_id, getattr(ti, "try_number", 0))


def run_days(ti: Any, dag_run: Any, params: Any, start: str, end: str) -> RunDays:
    """The templates' macro: `start`/`end` as the templates gave them, folded for a
    backfill run (the module's docstring)."""
    key = (*_key(ti), start, end)
    if key not in _decided:
        _decided[key] = _decided[_key(ti)] = _decide(ti, dag_run, params, start, end)
    return _decided[key]


def skip_if_taken(context: Any) -> None:
    """Pre-execute hook of every task: ends a backfill run's extract whose day another run
    fetches, before its container, and skips every task after it in one go (a no-op
    anywhere else: nothing was decided in that process). The extract itself succeeds: its
    work, deciding where its day is fetched, is done (its plan is its XCom)."""
    days = _decided.get(_key(context["ti"]))
    if days is None or days.taken_by is None:
        return
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    plan = days.taken_by
    log.info(
        "%s is fetched, loaded and versioned by run %s (backfill days %s..%s): nothing to do here",
        days.start,
        plan.leader,
        plan.start,
        plan.end,
    )
    below = context["task"].get_flat_relative_ids(upstream=False)
    raise DownstreamTasksSkipped(tasks=sorted(below))


def _decide(ti: Any, dag_run: Any, params: Any, start: str, end: str) -> RunDays:
    if (
        getattr(dag_run, "run_type", None) != BACKFILL
        or dag_run.logical_date is None
        or params.get("start_date")
        or params.get("end_date")
    ):
        return RunDays(start, end)
    day = dt.date.fromisoformat(start)
    runs = BackfillRuns(ti, dag_run, day)
    clear_number = dag_run.clear_number or 0
    plan = runs.covering(clear_number)
    if plan is None:
        first, last = fold_range(day, runs.extract_states)
        # Run again after it led (a retry, a clearing): the days it took are still its own.
        for earlier in runs.plans():
            if earlier is not None and earlier.leader == dag_run.run_id:
                first = min(first, dt.date.fromisoformat(earlier.start))
                last = max(last, dt.date.fromisoformat(earlier.end))
        plan = Plan(first.isoformat(), last.isoformat(), dag_run.run_id, clear_number)
    ti.xcom_push(key=FOLD_KEY, value=asdict(plan))
    if plan.leader == dag_run.run_id:
        return RunDays(plan.start, plan.end)
    return RunDays(start, start, taken_by=plan)


class BackfillRuns:
    """The backfill runs of the days around one run's, as the execution API (`ti`) sees
    them: their extract's state and plan."""

    def __init__(self, ti: Any, dag_run: Any, day: dt.date) -> None:
        self.ti = ti
        self.task_id = ti.task_id  # the task that renders the dates: the extract of every run
        self.day = day
        self.logical_date = dag_run.logical_date
        # Airflow names a backfill's new runs backfill__<run_after>, and run_after lies a
        # fixed time after the logical date (the end of the day's interval).
        self.offset = dag_run.run_after - dag_run.logical_date

    def run_id(self, day: dt.date) -> str:
        logical_date = self.logical_date + (day - self.day)
        return f"{BACKFILL}__{(logical_date + self.offset).isoformat()}"

    def extract_states(self, days: list[dt.date]) -> dict[dt.date, str | None]:
        ids = {self.run_id(day): day for day in days}
        found = self.ti.get_task_states(
            dag_id=self.ti.dag_id, task_ids=[self.task_id], run_ids=list(ids)
        )
        return {ids[run_id]: tasks.get(self.task_id) for run_id, tasks in found.items()}

    def plans(self) -> list[Plan | None]:
        """The plans of the day before's run and the day after's."""
        return [
            Plan.of(self.ti.xcom_pull(task_ids=self.task_id, key=FOLD_KEY, run_id=self.run_id(day)))
            for day in (self.day - ONE_DAY, self.day + ONE_DAY)
        ]

    def covering(self, clear_number: int) -> Plan | None:
        """A neighbour's plan that covers this day (`covering`), waiting while the day
        before's run is still deciding."""
        before = self.day - ONE_DAY
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            plan = covering(self.day, self.plans(), clear_number)
            if plan is not None:
                return plan
            deciding = self.extract_states([before]).get(before, "absent") in DECIDING
            if not deciding or time.monotonic() >= deadline:
                return None
            time.sleep(POLL_SECONDS)
