"""The bench cannot lie about its conditions: the commit and the tree's changes are read
at the start, the committed docs get only a whole run of a clean tree that did not move
(any other report goes to scratch and says why), and a window whose load average went
above the core count gets no verdict. The load readings and the git state are injected:
no clock, no real bench run."""

from __future__ import annotations

import json

import bench
import pytest

from apod_tools import bench_cold, bench_report, bench_tree
from apod_tools.bench_load import Load, LoadSampler, settle
from apod_tools.bench_report import Report, Target
from apod_tools.bench_tree import Tree

pytestmark = pytest.mark.unit

A, B = "a" * 40, "b" * 40
CLEAN = Tree(A)
DIRTY = Tree(A, ("images/load/apod_load/upsert.py",))
MOVED = Tree(B)


def readings(*values: float):
    """A load reader that gives these values, in order (the sampler reads when a window
    opens and when it closes; its thread's next reading is an hour away)."""
    return iter(values).__next__


def sampler_of(*values: float, cores: int = 2):
    return lambda: LoadSampler(readings(*values), interval=3600, machine_cores=cores)


def measured_report(*load: float, tree: Tree = CLEAN) -> Report:
    report = Report("bench", tree=tree, sampler=sampler_of(*load))
    with report.measuring("archive"):
        report.add("full archive by hand", "four steps, wall", 12.0, "s",
                   target=Target("<", 30, "issue 6"))  # fmt: skip
        report.add("full archive by hand", "API requests", 371, digits=0,
                   target=Target("<=", 400, "issue 6"))  # fmt: skip
        report.add("full archive by hand", "rows in Postgres", 11387, digits=0)
    return report


# --- the load --------------------------------------------------------------------------


def test_a_window_whose_load_exceeded_the_cores_is_noisy_and_gets_no_verdict():
    report = measured_report(1.2, 2.6)
    wall = report.figures[0]
    assert (wall.window.name, wall.window.commit) == ("archive", A)
    assert wall.window.load == Load((1.2, 2.6), 2)
    assert [f.verdict for f in report.figures] == ["", "", ""]
    assert [f.no_verdict for f in report.figures] == ["no verdict: noisy"] * 2 + [""]
    assert report.missed() == []
    assert report.noisy() == ["archive"]


def test_a_quiet_window_judges_its_figures_and_the_core_count_itself_is_quiet():
    report = measured_report(0.4, 2.0)
    assert [f.verdict for f in report.figures] == ["met", "met", ""]
    assert report.noisy() == []


def test_a_figure_measured_outside_any_window_gets_no_verdict():
    report = Report("bench", tree=CLEAN)
    figure = report.add("x", "wall", 1.0, "s", target=Target("<", 30, "issue 6"))
    assert (figure.verdict, figure.no_verdict) == ("", "no verdict: load not sampled")


def test_the_sampler_reads_when_the_window_opens_and_when_it_closes():
    with LoadSampler(readings(0.5, 3.5), interval=3600, machine_cores=4) as sampler:
        pass
    assert sampler.load() == Load((0.5, 3.5), 4)
    assert not sampler.load().noisy


def test_settling_waits_in_steps_until_the_load_falls_to_the_cores_or_the_limit():
    waits: list[float] = []
    seen = settle(60, readings(3.1, 2.4, 1.9, 0.5), waits.append, machine_cores=2, interval=5)
    assert (seen, waits) == ([3.1, 2.4, 1.9], [5, 5])
    waits.clear()
    seen = settle(10, readings(9.0, 8.0, 7.0, 6.0), waits.append, machine_cores=2, interval=5)
    assert (seen, waits) == ([9.0, 8.0, 7.0], [5, 5])  # gave up after the limit


def test_each_figure_names_its_section_commit_and_load_in_the_report(tmp_path):
    report = measured_report(1.0, 3.0)
    json_path, markdown_path = bench_report.write(report, tmp_path)
    run = json.loads(json_path.read_text(encoding="utf-8"))["bench"]
    wall = run["figures"][0]
    assert wall["section"] == "full archive by hand"
    assert (wall["window"], wall["commit"], wall["load_1m_peak"]) == ("archive", A, 3.0)
    assert (wall["noisy"], wall["verdict"], wall["no_verdict"]) == (True, "", "no verdict: noisy")
    assert run["windows"][0]["load"]["samples"] == [1.0, 3.0]
    markdown = markdown_path.read_text(encoding="utf-8")
    assert f"`archive` from {report.started}" in markdown
    assert f"commit {A[:12]}; 1-minute load average peak 3.00" in markdown
    assert "above the 2 cores: **noisy, no verdict**" in markdown
    assert "| four steps, wall | 12.00 s | < 30 s (issue 6) | no verdict: noisy |" in markdown


# --- where the report goes ---------------------------------------------------------------


def test_status_paths_leave_out_the_benchs_own_reports_and_read_renames():
    porcelain = " M docs/BENCHMARKS.md\0?? docs/BENCHMARKS-cold.json\0R  new.py\0old.py\0?? x.sh\0"
    assert bench_tree.changed_paths(porcelain) == ("new.py", "x.sh")


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [
        (DIRTY, DIRTY, "uncommitted changes when the run started: images/load/"),
        (CLEAN, MOVED, f"HEAD moved during the run: {A[:12]} to {B[:12]}"),
        (CLEAN, DIRTY, "files changed during the run: images/load/apod_load/upsert.py"),
        (Tree(None, ("not read",)), CLEAN, "no commit to name"),
    ],
    ids=["dirty", "moved", "changed-during", "no-commit"],
)
def test_a_dirty_or_moved_tree_never_writes_docs(tmp_path, start, end, reason):
    docs, scratch = tmp_path / "docs", tmp_path / "artifacts" / "bench"
    report = measured_report(0.5, 0.5, tree=start)
    json_path, markdown_path, where = bench_report.publish(
        report, docs, end, docs=docs, scratch=scratch
    )
    assert not docs.exists()
    assert json_path.parent == markdown_path.parent == where.directory
    assert where.directory.parent == scratch
    assert any(reason in text for text in where.reasons), where.reasons
    run = json.loads(json_path.read_text(encoding="utf-8"))["bench"]
    assert run["scratch_reasons"] == list(where.reasons)
    assert "**Not the committed report**" in markdown_path.read_text(encoding="utf-8")


def test_a_clean_unmoved_whole_run_writes_docs(tmp_path):
    docs = tmp_path / "docs"
    report = measured_report(0.5, 0.5)
    json_path, _, where = bench_report.publish(
        report, docs, CLEAN, docs=docs, scratch=tmp_path / "scratch"
    )
    assert (json_path.parent, where.reasons) == (docs, ())
    run = json.loads(json_path.read_text(encoding="utf-8"))["bench"]
    assert (run["commit"], run["head_at_end"], run["uncommitted_changes"]) == (A, A, False)
    assert "Not the committed report" not in (docs / "BENCHMARKS.md").read_text("utf-8")


def test_a_partial_run_of_a_clean_tree_goes_to_scratch_too(tmp_path):
    docs = tmp_path / "docs"
    where = bench_tree.destination(docs, CLEAN, CLEAN, "bench-1", ("only images measured",),
                                   docs=docs, scratch=tmp_path / "s")  # fmt: skip
    assert (where.directory, where.reasons) == (
        tmp_path / "s" / "bench-1",
        ("only images measured",),
    )


def test_another_folder_asked_for_gets_the_report_as_it_is(tmp_path):
    where = bench_tree.destination(tmp_path / "mine", DIRTY, MOVED, "x", docs=tmp_path / "docs")
    assert (where.directory, where.reasons) == (tmp_path / "mine", ())


def test_bench_reads_the_tree_before_measuring_and_again_after(tmp_path):
    events: list[str] = []
    trees = iter([CLEAN, MOVED])

    def read_tree() -> Tree:
        events.append("tree")
        return next(trees)

    def measure(report, section, scratch) -> None:
        events.append(section)
        report.add("images", f"{section} size", 1.0, "MB")

    report = Report("bench", tree=read_tree(), sampler=sampler_of(0.1, 0.1, 0.2, 0.2))
    code = bench.run(["images", "archive"], tmp_path, measure=measure, read_tree=read_tree,
                     report=report)  # fmt: skip
    assert code == 0
    assert events == ["tree", "images", "archive", "tree"]
    run = json.loads((tmp_path / "BENCHMARKS.json").read_text(encoding="utf-8"))["bench"]
    assert (run["commit"], run["head_at_end"]) == (A, B)
    assert [w["name"] for w in run["windows"]] == ["images", "archive"]


def test_the_cold_report_has_its_window_and_commit(tmp_path):
    report = Report("cold", tree=CLEAN, sampler=sampler_of(0.3, 2.5))
    with report.measuring("cold make demo"):
        report.add(bench_cold.PHASES, "total: `make demo` start to exit", 200.0, "s",
                   target=bench_cold.TARGET)  # fmt: skip
    json_path, markdown_path = bench_cold.write(report, tmp_path)
    run = json.loads(json_path.read_text(encoding="utf-8"))
    assert (run["commit"], run["figures"][0]["verdict"]) == (A, "")
    assert "noisy, no verdict" in markdown_path.read_text(encoding="utf-8")
