"""The bench's figures, their targets and verdicts, and the files they are written to.

A figure is a value one run measured; a verdict ("met" / "missed") is the comparison of
that value with its target, made here, never typed. docs/BENCHMARKS.json keeps each kind
of run under its own key (so that another kind of bench can be added without one run
erasing the other's figures); docs/BENCHMARKS.md is rendered from that file alone.
Standard library only.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from apod_tools.project import REPO

DOCS = REPO / "docs"
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


@dataclass
class Figure:
    section: str
    name: str
    value: float | int | str | None  # None: not measured (see note)
    unit: str = ""
    note: str = ""
    target: Target | None = None
    digits: int = 2

    @property
    def verdict(self) -> str:
        if self.target is None or not isinstance(self.value, int | float):
            return ""
        return "met" if self.target.met(self.value) else "missed"

    def shown(self) -> str:
        if self.value is None:
            return "not measured"
        if isinstance(self.value, str):
            return self.value
        text = number(self.value, self.digits)
        return f"{text} {self.unit}" if self.unit else text


def number(value: float, digits: int = 2) -> str:
    if isinstance(value, int) or (float(value).is_integer() and digits == 0):
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else ""


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
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # paragraphs built from the figures
    facts: dict[str, str] = field(default_factory=dict)  # read from the system, not timed
    started: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat("T", "seconds"))
    load_before: float = field(default_factory=lambda: os.getloadavg()[0])

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
        verdict = f" [{figure.verdict}]" if figure.verdict else ""
        print(f"  {name:<60} {figure.shown():>16}{verdict}  {note}", flush=True)
        return figure

    def fact(self, name: str, value: str) -> None:
        self.facts[name] = value
        print(f"  {name}: {value}", flush=True)

    def get(self, name: str) -> float | int | str | None:
        """The value of a figure this run recorded (None when it did not)."""
        return next((f.value for f in self.figures if f.name == name), None)

    def to_json(self) -> dict:
        return {
            "started": self.started,
            "finished": dt.datetime.now(dt.UTC).isoformat("T", "seconds"),
            "commit": git("rev-parse", "HEAD") or None,
            "uncommitted_changes": bool(git("status", "--porcelain")),
            "machine": machine(),
            "load_average_1m": {"before": self.load_before, "after": os.getloadavg()[0]},
            "facts": self.facts,
            "figures": [
                {**asdict(f), "target": asdict(f.target) if f.target else None,
                 "shown": f.shown(), "verdict": f.verdict}
                for f in self.figures
            ],
            "notes": self.notes,
        }  # fmt: skip


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
        "that wrote it, on the machine it names; nothing here is typed by hand.",
    ]
    for kind, title in KINDS.items():
        if kind in runs:
            lines += ["", f"## {title}", "", *render_run(runs[kind])]
    return "\n".join(lines) + "\n"


def render_run(run: dict) -> list[str]:
    box = run["machine"]
    load = run["load_average_1m"]
    lines = [
        f"- run: {run['started']} to {run['finished']} UTC, commit "
        f"{(run['commit'] or 'none')[:12]}"
        + (" with uncommitted changes" if run["uncommitted_changes"] else ""),
        f"- machine: {box['cores']} cores, {box['memory_gib']} GiB, {box['system']}, "
        f"Docker engine {box['docker_engine']}, Python {box['python']}; "
        f"1-minute load average {load['before']:.1f} before, {load['after']:.1f} after",
    ]
    lines += [f"- {name}: {value}" for name, value in run["facts"].items()]
    section = None
    for figure in run["figures"]:
        if figure["section"] != section:
            section = figure["section"]
            lines += [
                "",
                f"### {section}",
                "",
                "| figure | value | target | |",
                "|---|---:|---|---|",
            ]
        target = figure["target"]
        target_text = Target(**target).text(figure["unit"]) if target else ""
        note = figure["note"].replace("|", "\\|")
        lines.append(
            f"| {figure['name']} | {figure['shown']} | {target_text} | "
            f"{' — '.join(part for part in (figure['verdict'], note) if part)} |"
        )
    if run["notes"]:
        lines += ["", "### Reading the figures", ""]
        lines += [f"- {note}" for note in run["notes"]]
    return lines


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
