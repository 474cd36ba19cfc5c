"""What an asset event says: the figures of the steps' summary lines. Standard library only.

Every step prints a one-line JSON summary last. The DockerOperator hands the task the
container's output lines, the KubernetesPodOperator the tail of the pod's log: both pick
the summary with `summary_line`, keep it as the task's XCom, and attach to each asset
event the figures its Output names (steps.Figures), from its own summary and from the
XComs of the upstream steps it names. `event_extra` is the one place that turns
summaries into an event's extra, for both DAGs and for the tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from apod_pipeline.steps import Output


def summary_line(lines: Iterable[str] | str | None) -> str | None:
    """The step's JSON summary among its output lines.

    The summary is the last line on stdout, but Docker copies stdout and stderr in
    separate goroutines, and a pod's log interleaves both: a log line written to stderr
    just before the summary can come after it. So: the last line that is a JSON object.
    """
    if lines is None or isinstance(lines, str):
        lines = [] if lines is None else lines.splitlines()
    for line in reversed(list(lines)):
        text = line.strip()
        if text.startswith("{") and text.endswith("}"):
            try:
                json.loads(text)
            except ValueError:
                continue
            return text
    return None


def parse_summary(summary: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """A summary (the XCom: its JSON text) as a dict; {} when there is none to read."""
    if isinstance(summary, Mapping):
        return dict(summary)
    if not summary:
        return {}
    try:
        value = json.loads(summary)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def sources(output: Output) -> tuple[str, ...]:
    """The tasks whose summaries an output's event reads."""
    return tuple(figures.task_id for figures in output.figures)


def event_extra(output: Output, summaries: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The extra of `output`'s asset event, from the summaries by task id.

    A figure whose summary or key is missing is left out rather than guessed: the event
    still says what is known, and lineage never fails the step that wrote the data.
    """
    extra: dict[str, Any] = {}
    for figures in output.figures:
        summary = summaries.get(figures.task_id) or {}
        for key, name in figures.keys:
            if key in summary:
                extra[name] = summary[key]
    return extra
