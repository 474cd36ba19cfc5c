"""The DAGs' tasks rendered offline, as a run would render them: no scheduler, no
database, no cluster.

`render_context` is a run's template context. It carries what this project's templates
and KubernetesPodOperator's pod labels read: params (validated against the DAG's
Params, as a triggered run's conf would be), run_id, ds/logical_date for a run with a
logical date, and dag_run.run_after for one without (a manual run triggered with no
logical date has no `ds`). `render_pods` gives every pod `apod_etl_k8s` would launch
for one run, as manifests; the k8s tier validates them and runs their containers.

Test code: the Airflow image does not carry it. Needs dags/ on sys.path and Airflow
with the cncf-kubernetes provider.
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


def render_pods(
    *,
    logical_date: dt.date | str | None = "2024-01-02",
    start_date: str | None = None,
    end_date: str | None = None,
    run_id: str = "manual__render",
    settings: Any = None,
) -> list[tuple[str, dict]]:
    """Every pod the DAG would launch for one run, as (task_id, manifest) in task order.

    Templates are rendered with the run's context and each pod is built by the
    operator's own `build_pod_request_obj`. `start_date`/`end_date` are the manual run's
    params; `logical_date=None` is a manual run without a logical date; `settings`
    default to the environment's. Pod names keep the operator's random suffix, as in a
    real run.
    """
    from kubernetes.client import ApiClient

    from apod_pipeline import kubernetes

    conf = {k: v for k, v in (("start_date", start_date), ("end_date", end_date)) if v}
    dag = kubernetes.dag(settings)
    client = ApiClient()
    manifests = []
    for task in dag.topological_sort():
        context = render_context(dag, task, run_id=run_id, logical_date=logical_date, conf=conf)
        task.render_template_fields(context)
        pod = task.build_pod_request_obj(context, dry_run=True)
        manifests.append((task.task_id, client.sanitize_for_serialization(pod)))
    return manifests
