"""A run's template context without a scheduler or a database, to render tasks offline.

It carries what this project's templates and KubernetesPodOperator's pod labels read:
params (validated against the DAG's Params, as a triggered run's conf would be),
run_id, ds/logical_date for a run with a logical date, and dag_run.run_after for one
without (a manual run triggered with no logical date has no `ds`).
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RenderedRun:
    dag_id: str
    run_id: str
    logical_date: dt.datetime | None
    run_after: dt.datetime
    conf: dict = field(default_factory=dict)

    @property
    def data_interval_start(self) -> dt.datetime | None:
        return self.logical_date

    @property
    def data_interval_end(self) -> dt.datetime | None:
        return self.logical_date + dt.timedelta(days=1) if self.logical_date else None


@dataclass(frozen=True)
class RenderedTaskInstance:
    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    try_number: int = 1


def _as_datetime(value: dt.date | dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def render_context(
    dag: Any,
    task: Any,
    *,
    run_id: str,
    logical_date: dt.date | dt.datetime | str | None,
    conf: dict | None = None,
    run_after: dt.datetime | None = None,
) -> dict[str, Any]:
    """The context `task.render_template_fields(context)` needs for one run of `dag`."""
    params = copy.deepcopy(task.params)
    params.update(conf or {})  # validates each value against its Param
    logical = _as_datetime(logical_date) if logical_date is not None else None
    if run_after is None:
        # A scheduled run starts once its interval is over; a manual one when triggered.
        run_after = logical + dt.timedelta(days=1) if logical else dt.datetime.now(dt.UTC)
    dag_run = RenderedRun(dag.dag_id, run_id, logical, run_after, dict(conf or {}))
    ti = RenderedTaskInstance(dag.dag_id, task.task_id, run_id)
    context: dict[str, Any] = {
        "dag": dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "run_id": run_id,
        "dag_run": dag_run,
        "params": params.validate(),
    }
    if logical is not None:
        context |= {
            "logical_date": logical,
            "ds": logical.strftime("%Y-%m-%d"),
            "ds_nodash": logical.strftime("%Y%m%d"),
            "ts": logical.isoformat(),
            "data_interval_start": dag_run.data_interval_start,
            "data_interval_end": dag_run.data_interval_end,
        }
    return context
