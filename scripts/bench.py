"""`make bench`: measure the pipeline and write docs/BENCHMARKS.md and BENCHMARKS.json.

Every figure, note and verdict comes from this run, on this machine (apod_tools.bench_*
measure, apod_tools.bench_report compares with the targets and writes). Not part of the
test suite.

    scripts/bench.py [--sections images,archive,latency,postgres,compose] [--out DIR]
                     [--settle SECONDS]
    scripts/bench.py compare OLD.json NEW.json

Each section is a measuring window: the load average is sampled all through it, and a
window whose load went above the core count is noisy (its figures get no verdict). The
commit and the tree's changes are read at the start: docs/ gets the report only for a
whole run of a clean tree whose HEAD did not move; otherwise it goes to
artifacts/bench/<run>/ and says why (apod_tools.bench_tree).

Needs: a Docker engine, the built images (make images), the APOD archive
(APOD_ARCHIVE_DIR) and a Postgres with default durability (make bench starts one;
its settings are read back with SHOW and reported).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for sub in ("images/common", "images/load", "images/extract", "dags", "scripts"):
    sys.path.insert(0, str(REPO / sub))

from apod_tools import bench_load, bench_report, bench_tree  # noqa: E402
from apod_tools.bench_report import Report  # noqa: E402
from apod_tools.docker import docker  # noqa: E402
from apod_tools.project import STEP_IMAGES  # noqa: E402

SECTIONS = ("images", "archive", "latency", "postgres", "compose")
# Seconds to wait, at most, before a section for the 1-minute load average to fall to the
# core count (it trails: the previous section's own load is still in it).
SETTLE = 300.0


def bench_images(report: Report) -> None:
    """Every image the builder builds (python3 -m apod_build): its size, how long a step
    image takes to start and answer --help (what every task pays before it works), how
    long the Airflow CLI takes to answer in its image (every healthcheck runs it), and how
    long the object store takes to stop cleanly (its grace period in the deployments)."""
    print("images", flush=True)
    listing = subprocess.run(
        [sys.executable, "-m", "apod_build", "--tags"],
        env={**os.environ, "PYTHONPATH": str(REPO / "tools")},
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")  # fmt: skip
    for name, tag in (line.split() for line in listing if line.strip()):
        inspect = docker("image", "inspect", "-f", "{{.Size}}", tag, check=False)
        if inspect.returncode != 0:
            report.add("images", f"{tag} size", None, note="not built")
            continue
        report.add("images", f"{tag} size", int(inspect.stdout) / 1e6, "MB", digits=0)
        if name in (*STEP_IMAGES, "testserver"):  # console scripts that answer --help
            times = []
            for _ in range(5):
                start = time.perf_counter()
                docker("run", "--rm", tag, "--help")
                times.append(time.perf_counter() - start)
            report.add("images", f"{tag} `--help`, median of 5", statistics.median(times), "s")
        elif name == "airflow":  # what every Airflow CLI call (and healthcheck) pays
            times = []
            for _ in range(3):
                start = time.perf_counter()
                docker("run", "--rm", tag, "version")  # the entrypoint is `airflow`
                times.append(time.perf_counter() - start)
            report.add("images", f"{tag} `airflow version`, median of 3",
                       statistics.median(times), "s")  # fmt: skip
        elif name == "objectstore":
            from apod_tools.bench_objectstore import bench_objectstore_stop

            bench_objectstore_stop(report)


def measure(report: Report, section: str, scratch: Path) -> None:
    if section == "images":
        bench_images(report)
        return
    if section == "postgres":
        from apod_tools.bench_postgres import bench_postgres

        bench_postgres(report, scratch)
        return
    from apod_tools.bench_pipeline import archive_dir, bench_archive, bench_latency

    archive = archive_dir()
    if archive is None:
        raise RuntimeError("APOD_ARCHIVE_DIR is not an archive directory")
    report.facts.setdefault("APOD archive", str(archive))
    if section == "archive":
        bench_archive(report, archive)
    elif section == "latency":
        bench_latency(report, archive)
    else:
        from apod_tools.bench_compose import bench_compose

        bench_compose(report, archive, scratch)


def run(
    sections: list[str],
    out: Path,
    settle: float = 0.0,
    measure=measure,
    read_tree=bench_tree.read_tree,
    report: Report | None = None,
    wait_for_quiet=bench_load.settle,
) -> int:
    """Each section in its own window; one that fails is reported as failed and the others
    still run, so a long bench is not lost to one error. Exit 1 when any failed."""
    report = report or Report("bench", tree=read_tree())
    if report.tree.dirty:
        print(f"bench: the tree has changes ({', '.join(report.tree.changes[:5])}): docs/ "
              "will not get this report", flush=True)  # fmt: skip
    failed = []
    with tempfile.TemporaryDirectory(prefix="apod-bench-") as tmp:
        for section in sections:
            if settle:
                readings = wait_for_quiet(settle)
                print(f"{section}: load average {readings[-1]:.2f} after "
                      f"{len(readings) - 1} wait(s) for quiet", flush=True)  # fmt: skip
            with report.measuring(section):
                try:
                    measure(report, section, Path(tmp))
                except Exception as exc:  # noqa: BLE001 - reported in the table, and exit 1
                    failed.append(section)
                    report.add(section, f"{section}: failed", f"{type(exc).__name__}: {exc}"[:300])
    partial = (
        ()
        if set(sections) == set(SECTIONS)
        else (f"only {', '.join(sections)} measured: the committed report holds whole runs",)
    )
    json_path, markdown_path, where = bench_report.publish(report, out, read_tree(), partial)
    print(f"\nwritten: {markdown_path}, {json_path} ({len(report.figures)} figures)")
    for reason in where.reasons:
        print(f"not written to docs/: {reason}")
    print(f"targets missed: {', '.join(report.missed()) or 'none'}")
    print(f"noisy sections (no verdict): {', '.join(report.noisy()) or 'none'}")
    if failed:
        print(f"sections failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["compare"]:
        parser = argparse.ArgumentParser(prog="bench.py compare")
        parser.add_argument("old", type=Path)
        parser.add_argument("new", type=Path)
        args = parser.parse_args(argv[1:])
        print(bench_report.compare(args.old, args.new))
        return 0
    parser = argparse.ArgumentParser(prog="bench.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma-separated, of: " + ", ".join(SECTIONS))  # fmt: skip
    parser.add_argument("--out", type=Path, default=bench_report.DOCS,
                        help="where BENCHMARKS.md/.json go (default docs/, for a whole run "
                             "of a clean tree; else artifacts/bench/)")  # fmt: skip
    parser.add_argument(
        "--settle",
        type=float,
        default=SETTLE,
        help="before each section, wait up to this many seconds for the load average to "
        f"fall to the core count (default {SETTLE:g})",
    )
    args = parser.parse_args(argv)
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    return run(sections, args.out, args.settle)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
