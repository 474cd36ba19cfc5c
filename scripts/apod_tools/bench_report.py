"""The bench's figures, their targets and verdicts, and the files they are written to.

A figure is a value one run measured; a verdict ("met" / "missed") is the comparison of
that value with its target, made here, never typed, and only for a figure measured in a
quiet window: each figure is measured inside a window (Report.measuring) through which
the load average is sampled (apod_tools.bench_load), and a window whose load went above
the core count is noisy: its figures get no verdict. Every figure names its section, the
commit the run started from and its window's load. docs/BENCHMARKS.json keeps each kind
of run under its own key (so that another kind of bench can be added without one run
erasing the other's figures); docs/BENCHMARKS.md is rendered from that file alone. Only
a whole run of a clean, unmoved tree is written there (apod_tools.bench_tree); any other
goes to a scratch folder and says why. Standard library only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import operator
import os
import platform
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from apod_tools import bench_tree
from apod_tools.bench_load import Load, LoadSampler
from apod_tools.bench_tree import DOCS, Destination, Tree

JSON_NAME = "BENCHMARKS.json"
MARKDOWN_NAME = "BENCHMARKS.md"
# The runs the files hold, in the order the Markdown shows them.
KINDS = {"bench": "`make bench`: the pipeline, Postgres, the latency model, compose"}
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Target:
    """What an issue asks of a figure: `value <op> limit`."""

    op: str
    limit: float
    source: str  # where the target was set (an issue)

    def met(self, value: float) -> bool:
        return _COMPARE[self.op](value, self.limit)

    def text(self, unit: str) -> str:
        return f"{self.op} {number(self.limit)}{' ' + unit if unit else ''} ({self.source})"


@dataclass(frozen=True)
class Window:
    """Where figures were measured: a part of the run, the commit it started from, and the
    load average sampled all through it."""

    name: str
    started: str
    finished: str
    commit: str | None
    load: Load

    def to_json(self) -> dict:
        return {**asdict(self), "load": self.load.to_json()}


@dataclass
class Figure:
    section: str
    name: str
    value: float | int | str | None  # None: not measured (see note)
    unit: str = ""
    note: str = ""
    target: Target | None = None
    digits: int = 2
    window: Window | None = None  # set when the window it was measured in closes

    @property
    def judged(self) -> bool:
        return self.target is not None and isinstance(self.value, int | float)

    @property
    def verdict(self) -> str:
        """met / missed; "" without a target, a value, or a quiet window to judge in."""
        if not self.judged or self.window is None or self.window.load.noisy:
            return ""
        return "met" if self.target.met(self.value) else "missed"

    @property
    def no_verdict(self) -> str:
        """Why a figure with a target and a value has no verdict ("" when it has one)."""
        if not self.judged:
            return ""
        if self.window is None:
            return "no verdict: load not sampled"
        return "no verdict: noisy" if self.window.load.noisy else ""

    def shown(self) -> str:
        if self.value is None:
            return "not measured"
        if isinstance(self.value, str):
            return self.value
        text = number(self.value, self.digits)
        return f"{text} {self.unit}" if self.unit else text

    def to_json(self) -> dict:
        window = self.window
        return {
            **{k: v for k, v in asdict(self).items() if k != "window"},
            "target": asdict(self.target) if self.target else None,
            "shown": self.shown(),
            "window": window.name if window else None,
            "commit": window.commit if window else None,
            "load_1m_peak": window.load.peak if window else None,
            "noisy": window.load.noisy if window else None,
            "verdict": self.verdict,
            "no_verdict": self.no_verdict,
        }


def number(value: float, digits: int = 2) -> str:
    if isinstance(value, int) or (float(value).is_integer() and digits == 0):
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat("T", "seconds")


def machine() -> dict:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    docker = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "docker_engine": docker.stdout.strip() or None,
    }


@dataclass
class Report:
    """One run's figures; printed as they come, written at the end."""

    kind: str
    tree: Tree = field(default_factory=lambda: Tree(None, ("not read",)))  # at the start
    sampler: Callable[[], LoadSampler] = LoadSampler
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # paragraphs built from the figures
    facts: dict[str, str] = field(default_factory=dict)  # read from the system, not timed
    windows: list[Window] = field(default_factory=list)
    started: str = field(default_factory=utc_now)
    end_tree: Tree | None = None  # read when the run ended (publish)
    scratch_reasons: tuple[str, ...] = ()  # why this report is not the committed one

    def add(
        self,
        section: str,
        name: str,
        value: float | int | str | None,
        unit: str = "",
        note: str = "",
        target: Target | None = None,
        digits: int = 2,
    ) -> Figure:
        figure = Figure(section, name, value, unit, note, target, digits)
        self.figures.append(figure)
        wanted = f" [target {target.text(unit)}]" if target else ""
        print(f"  {name:<60} {figure.shown():>16}{wanted}  {note}", flush=True)
        return figure

    @contextlib.contextmanager
    def measuring(self, name: str) -> Iterator[None]:
        """A window: the figures added inside it were measured under the load sampled
        all through it, and get a verdict only when it stayed at most the core count."""
        first, started = len(self.figures), utc_now()
        sampler = self.sampler()
        try:
            with sampler:
                yield
        finally:
            window = Window(name, started, utc_now(), self.tree.commit, sampler.load())
            self.windows.append(window)
            for figure in self.figures[first:]:
                figure.window = window
            print(f"  [{name}] {window.load.text()}".replace("**", ""), flush=True)
            for figure in self.figures[first:]:
                if figure.judged:
                    print(f"    {figure.name}: {figure.verdict or figure.no_verdict}")

    def fact(self, name: str, value: str) -> None:
        self.facts[name] = value
        print(f"  {name}: {value}", flush=True)

    def get(self, name: str) -> float | int | str | None:
        """The value of a figure this run recorded (None when it did not)."""
        return next((f.value for f in self.figures if f.name == name), None)

    def missed(self) -> list[str]:
        return [f.name for f in self.figures if f.verdict == "missed"]

    def noisy(self) -> list[str]:
        return [w.name for w in self.windows if w.load.noisy]

    def to_json(self) -> dict:
        end = self.end_tree
        return {
            "started": self.started,
            "finished": utc_now(),
            "commit": self.tree.commit,
            "uncommitted_changes": self.tree.dirty,
            "changes": list(self.tree.changes[: bench_tree.SHOWN_CHANGES]),
            "head_at_end": end.commit if end else None,
            "scratch_reasons": list(self.scratch_reasons),
            "machine": machine(),
            "windows": [window.to_json() for window in self.windows],
            "facts": self.facts,
            "figures": [figure.to_json() for figure in self.figures],
            "notes": self.notes,
        }


def publish(
    report: Report,
    requested: Path,
    end: Tree,
    other_reasons: tuple[str, ...] = (),
    writer: Callable[[Report, Path], tuple[Path, Path]] | None = None,
    docs: Path = DOCS,
    scratch: Path = bench_tree.SCRATCH,
) -> tuple[Path, Path, Destination]:
    """Write the report where it may go (bench_tree.destination): the committed docs only
    for a whole run of a clean tree that did not move; else a scratch folder, and the
    report says why."""
    stamp = report.started.replace("-", "").replace(":", "").split("+")[0]
    where = bench_tree.destination(
        requested, report.tree, end, f"{report.kind}-{stamp}", other_reasons, docs, scratch
    )
    report.end_tree = end
    report.scratch_reasons = where.reasons
    json_path, markdown_path = (writer or write)(report, where.directory)
    return json_path, markdown_path, where


def write(report: Report, out_dir: Path = DOCS) -> tuple[Path, Path]:
    """Put this run under its kind in BENCHMARKS.json (keeping the other kinds' runs) and
    render BENCHMARKS.md from the whole file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = out_dir / JSON_NAME, out_dir / MARKDOWN_NAME
    runs = json.loads(json_path.read_text(encoding="utf-8")) if json_path.exists() else {}
    runs[report.kind] = report.to_json()
    json_path.write_text(json.dumps(runs, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    markdown_path.write_text(render(runs), encoding="utf-8")
    return json_path, markdown_path


def render(runs: dict) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (scripts/bench.py) from {JSON_NAME},",
        "which holds the same figures for comparing two runs (`scripts/bench.py compare",
        "OLD.json NEW.json`). Every figure, note and verdict below was computed by the run",
        "that wrote it, on the machine it names; nothing here is typed by hand. Each section",
        "names the commit the run started from and the load average sampled all through it;",
        "a section whose load went above the core count is noisy and gets no verdict. This",
        "file is written only by a whole run of a clean tree whose HEAD did not move.",
    ]
    for kind, title in KINDS.items():
        if kind in runs:
            lines += ["", f"## {title}", "", *render_run(runs[kind])]
    return "\n".join(lines) + "\n"


def render_run(run: dict) -> list[str]:
    box = run["machine"]
    lines = []
    if run.get("scratch_reasons"):
        lines += [
            "**Not the committed report**: written to a scratch folder because "
            + "; ".join(run["scratch_reasons"])
            + ".",
            "",
        ]
    lines += [
        f"- run: {run['started']} to {run['finished']} UTC, commit "
        f"{(run['commit'] or 'none')[:12]} (read when the run started)"
        + (" with uncommitted changes" if run["uncommitted_changes"] else ""),
        f"- machine: {box['cores']} cores, {box['memory_gib']} GiB, {box['system']}, "
        f"Docker engine {box['docker_engine']}, Python {box['python']}",
    ]
    lines += [f"- {name}: {value}" for name, value in run["facts"].items()]
    windows = {window["name"]: window for window in run.get("windows", [])}
    section = None
    for figure in run["figures"]:
        if figure["section"] != section:
            section = figure["section"]
            lines += ["", f"### {section}", ""]
            window = windows.get(figure.get("window"))
            if window:
                lines += [_window_line(window), ""]
            lines += ["| figure | value | target | |", "|---|---:|---|---|"]
        target = figure["target"]
        target_text = Target(**target).text(figure["unit"]) if target else ""
        note = figure["note"].replace("|", "\\|")
        judged = figure["verdict"] or figure.get("no_verdict", "")
        lines.append(
            f"| {figure['name']} | {figure['shown']} | {target_text} | "
            f"{' — '.join(part for part in (judged, note) if part)} |"
        )
    if run["notes"]:
        lines += ["", "### Reading the figures", ""]
        lines += [f"- {note}" for note in run["notes"]]
    return lines


def _window_line(window: dict) -> str:
    load = Load(tuple(window["load"]["samples"]), window["load"]["cores"])
    return (
        f"Measured in `{window['name']}` from {window['started']} to {window['finished']} "
        f"UTC, commit {(window['commit'] or 'none')[:12]}; {load.text()}."
    )


def compare(old_path: Path, new_path: Path) -> str:
    """The figures two BENCHMARKS.json files share, side by side with the change."""
    old, new = (json.loads(p.read_text(encoding="utf-8")) for p in (old_path, new_path))
    rows = []
    for kind in KINDS:
        if kind not in old or kind not in new:
            continue
        before = {f["name"]: f for f in old[kind]["figures"]}
        rows.append(f"{kind}: {old[kind]['started']} -> {new[kind]['started']}")
        for figure in new[kind]["figures"]:
            was = before.get(figure["name"])
            if was is None:
                continue
            change = ""
            a, b = was["value"], figure["value"]
            if isinstance(a, int | float) and isinstance(b, int | float) and a:
                change = f"{(b - a) / abs(a) * 100:+.0f} %"
            rows.append(f"  {figure['name']:<60} {was['shown']:>16} {figure['shown']:>16} {change}")
    return "\n".join(rows)
