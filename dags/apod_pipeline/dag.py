"""The DAG both deployments share: schedule, params, retries, docs, and the task graph.

`build_dag(dag_id, render)` calls `render(step, settings)` once per step and wires the
steps' `upstream`; the renderer is the only thing the two DAGs differ in. What both
renderers turn into Airflow's terms is here too: the run values as Jinja templates, the
steps' outputs as Assets, and the figures their asset events carry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, Param

from apod_pipeline import alerts, backfill
from apod_pipeline.lineage import event_extra, parse_summary, sources
from apod_pipeline.settings import Settings
from apod_pipeline.steps import Output, RunValue, Step, steps

if TYPE_CHECKING:
    from airflow.sdk import Context

OWNER = "apod"
FIRST_APOD = datetime(1995, 6, 16, tzinfo=UTC)
SCHEDULE = "@daily"
# One data interval of SCHEDULE (a DAG test checks it against Airflow's own timetable):
# the lateness deadline counts from a run's logical date, the start of its interval.
DATA_INTERVAL = timedelta(days=1)

DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    # A multiplier since Airflow 3.1: True would mean 1.0, a constant delay.
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    # Skips a backfill run's extract whose day another run of the backfill fetches (a
    # no-op for every other task and run: apod_pipeline.backfill).
    "pre_execute": backfill.skip_if_taken,
}


# The run's dates: a manual run's params when given, else the data interval's date.
# A manual run triggered without a logical date has no `ds`; it then falls back to
# the day it was triggered for (run_after). A backfill run's are folded into the range
# of the backfill's days it fetches (apod_pipeline.backfill, the `run_days` macro).
_RUN_DATE = "ds | default(dag_run.run_after | ds)"
_START = "params.start_date or " + _RUN_DATE
_END = "params.end_date or params.start_date or " + _RUN_DATE
_RUN_DAYS = "run_days(ti, dag_run, params, " + _START + ", " + _END + ")"
TEMPLATES = {
    RunValue.START: "{{ " + _RUN_DAYS + ".start }}",
    RunValue.END: "{{ " + _RUN_DAYS + ".end }}",
    RunValue.RUN_ID: "{{ run_id }}",
}
MACROS = {"run_days": backfill.run_days}


def templated_arguments(step: Step) -> list[str]:
    """The step's arguments as the operators take them: Jinja in place of run values."""
    return step.arguments_with(TEMPLATES.__getitem__)


def asset(output: Output) -> Asset:
    return Asset(name=output.name, uri=output.uri)


def outlets(step: Step) -> list[Asset]:
    return [asset(output) for output in step.outputs]


def event_extras(
    task_id: str, outputs: Iterable[Output], summary: str | None, pull: Callable[[str], Any]
) -> dict[Output, dict[str, Any]]:
    """Each output's event extra: from this task's summary and from the summaries (XComs,
    got by `pull(task_id)`) of the upstream steps the output names."""
    outputs = tuple(outputs)
    summaries = {task_id: parse_summary(summary)}
    for source in {s for output in outputs for s in sources(output)} - set(summaries):
        summaries[source] = parse_summary(pull(source))
    return {output: event_extra(output, summaries) for output in outputs}


def attach_figures(
    context: Context, task_id: str, outputs: Iterable[Output], summary: str | None
) -> None:
    """Both renderers, once their step has succeeded: the figures onto the asset events."""
    extras = event_extras(
        task_id, outputs, summary, lambda source: context["ti"].xcom_pull(task_ids=source)
    )
    for output, extra in extras.items():
        context["outlet_events"][asset(output)].extra = extra


def params() -> dict[str, Param]:
    """Fresh Param objects per DAG: Param.resolve() stores the value it validated."""
    return {
        "start_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Start date",
            description="First day to fetch (YYYY-MM-DD). Empty: the run's date.",
        ),
        "end_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="End date",
            description="Last day to fetch, inclusive (YYYY-MM-DD). Empty: the start date.",
        ),
    }


DOC_MD = """\
# APOD ETL

NASA's Astronomy Picture of the Day: **extract** (APOD API → `/data/raw/<run>/`) →
**transform** (pandas, validation → `/data/staging/<run>/`) → **load_postgres**
(upsert into `apod.apod_entries`) and **load_csv** (merge into `/data/apod_data.csv`)
in parallel → **version** (DVC-track the CSV, push it to the DVC remote, commit the
`.dvc` file). Each step is its own container image; {runner}.

## Schedule
Daily. A scheduled run fetches one day: its data interval's date (`ds`, the day that
just ended in UTC). `catchup` is off and only one run is active at a time.

## Params (manual runs)
| param | meaning |
|---|---|
| `start_date` | first day, `YYYY-MM-DD`; empty: the run's date |
| `end_date` | last day, inclusive; empty: `start_date` |

**Backfill a range in one run**: *Trigger DAG* with `start_date` and `end_date`
(e.g. `1995-06-16` to `1995-12-31`). Extract asks the API in chunks, so a long range
costs few requests. From the CLI:
`airflow dags trigger {dag_id} --conf '{{"start_date": "2024-01-01", "end_date": "2024-01-31"}}'`.

Airflow's own **Backfill** (*Trigger* → *Backfill*, `airflow backfill create`) costs about as
much: its first run fetches, loads and versions the backfill's days as one range (up to a
year), and the others end at their extract (its log names that run), skipping the rest.

## Outcomes
A task whose step exits 99 (*nothing to do*: no entries in the range, the API's answers
unchanged since the last batch loaded and versioned, no change in the data) is **skipped**,
and so is everything downstream. Exit 2, 3 or 4 (bad arguments,
bad input, refused by the API) fails at once; other failures are retried three times
with exponential backoff. Re-running a date is safe: every step is idempotent.

## Alerts
A task that fails for good, a failed run, and a scheduled run still unfinished
`APOD_ALERT_LATE_AFTER` (default 6h) after its day ended each send one message, by
e-mail (connection `apod_smtp`) and to a webhook (`apod_alert_webhook`) when those are
set. What it says and what to do: "When a night fails" in compose/README.md.

## Secrets
{secrets}
"""


def build_dag(
    dag_id: str,
    render: Callable[[Step, Settings], object],
    *,
    runner: str,
    secrets_doc: str,
    tags: Iterable[str],
    settings: Settings | None = None,
) -> DAG:
    settings = settings or Settings.from_env()
    dag = DAG(
        dag_id=dag_id,
        description="APOD: extract → transform → load (Postgres, CSV) → version (DVC)",
        # Interval timetable: a run starts after its day is over, and `ds` is that day.
        # (A plain "@daily" in Airflow 3 is a trigger timetable whose `ds` is the day
        # just beginning, for which APOD has not published yet.)
        schedule=CronDataIntervalTimetable(SCHEDULE, timezone="UTC"),
        # The first APOD. catchup=False keeps the scheduler from walking back to it; a
        # later date would make Airflow create no task instances for runs (dags test,
        # manual triggers) whose logical date is earlier.
        start_date=FIRST_APOD,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=timedelta(hours=4),
        default_args={**DEFAULT_ARGS, **alerts.TASK_ARGUMENTS},
        params=params(),
        user_defined_macros=MACROS,
        doc_md=DOC_MD.format(runner=runner, dag_id=dag_id, secrets=secrets_doc),
        tags=["apod", "etl", *tags],
        # Failure and lateness alerts (alerts.py): a run's failure callback, its deadline.
        **alerts.dag_arguments(settings, DATA_INTERVAL),
    )
    with dag:
        tasks = {}
        for step in steps(settings):
            tasks[step.task_id] = render(step, settings)
            for upstream in step.upstream:
                tasks[upstream] >> tasks[step.task_id]
    return dag
