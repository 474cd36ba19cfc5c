"""`make bench-cold`: a fresh clone's `make demo` on this machine, timed phase by phase,
written to docs/BENCHMARKS-cold.md and BENCHMARKS-cold.json.

    scripts/bench_cold.py [--prune-cache] [--with-changes] [--prefix NAME] [--out DIR]

The cold `make demo` is one measuring window (its load average sampled all through it;
above the core count, no verdict), and the report goes to docs/ only from a clean tree
whose HEAD did not move (else to artifacts/bench/, saying why): apod_tools.bench_report.

The clone is cold (no images, base images, venv or compose plugin of its own) without
removing or retagging anything of this machine's (apod_tools.cold_clone), and everything
it made is removed at the end, also on failure. The BuildKit cache mounts (the wheels) are
engine-wide: kept unless --prune-cache (make bench-cold COLD_CACHE=1), and the report says
how many packages came from them. Needs a Docker engine and python3 only. Exit 0 when the
run succeeded (whatever its verdicts), 1 when it failed, 2 when something was left behind.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "dags"), str(REPO / "scripts")]

import airflow_api  # noqa: E402
import deploy_env  # noqa: E402

from apod_tools import bench_cold, bench_report, bench_tree  # noqa: E402
from apod_tools.bench_report import Report  # noqa: E402
from apod_tools.cold_clone import ColdClone, prune_cache_mounts  # noqa: E402

LOGS = REPO / ".cache" / "bench-cold"
TIMEOUT = 1800


def dag_runs(clone: ColdClone) -> list[dict]:
    env = deploy_env.read_env(clone.env_file)
    api = airflow_api.Airflow(
        f"http://127.0.0.1:{env['APOD_UI_PORT']}", "admin", env["AIRFLOW_ADMIN_PASSWORD"]
    )
    return api.call("GET", "/api/v2/dags/apod_etl/dagRuns")["dag_runs"]


def measure(report: Report, clone: ColdClone, with_changes: bool) -> int:
    clone.make(with_changes)
    report.fact(
        "clone",
        f"{clone.commit[:12]}"
        + (" with the checkout's uncommitted changes" if with_changes else "")
        + f", VERSION {clone.version}, stack {clone.stack['APOD_COMPOSE_PROJECT']}",
    )
    started = dt.datetime.now(dt.UTC)
    lines, exited_at, code = clone.run_make_demo(
        lambda line: print(f"  [{line.at:6.1f}s] {line.text}", flush=True), TIMEOUT
    )
    clone.keep_logs(lines, LOGS)
    report.fact(
        "make demo",
        f"exit code {code}; its output, build logs and build report: {LOGS.relative_to(REPO)}/",
    )
    phases = bench_cold.parse_phases(lines, exited_at, clone.build_report(), started)
    if phases.builder:
        report.fact("builder", f"{phases.builder}, {phases.jobs} at a time")
    try:
        run = bench_cold.run_timing(dag_runs(clone))
    except (airflow_api.ApiError, OSError, KeyError) as exc:
        report.fact("Airflow API", f"not read: {exc}")
        run = None
    logs = bench_cold.read_build_logs(list(clone.build_logs().values()))
    bench_cold.add_figures(report, phases, logs, run, started, code)
    return code


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_cold.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--prune-cache",
        action="store_true",
        help="first empty BuildKit's cache mounts (engine-wide: every project's wheels)",
    )
    parser.add_argument(
        "--with-changes",
        action="store_true",
        help="clone HEAD plus the checkout's uncommitted changes",
    )
    parser.add_argument(
        "--prefix",
        default="apod-cold",
        help="name of the clone's stack and base images (default apod-cold)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=bench_report.DOCS,
        help="where BENCHMARKS-cold.md/.json go (default docs/)",
    )
    args = parser.parse_args(argv)
    # A stopped bench still tears down what it made (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    report = Report("cold", tree=bench_tree.read_tree())
    report.fact(
        "wheel cache (BuildKit cache mounts)",
        f"emptied first: {prune_cache_mounts()}"
        if args.prune_cache
        else "kept (engine-wide; COLD_CACHE=1 empties it): see the uv figures",
    )
    clone = ColdClone(args.prefix)
    code = 1
    try:
        with report.measuring("cold make demo"):
            code = measure(report, clone, args.with_changes)
    except Exception as exc:  # noqa: BLE001 - reported, then exit 1
        report.fact("failed", f"{type(exc).__name__}: {exc}"[:400])
    finally:
        left = clone.teardown()
    report.fact("left behind", ", ".join(left) or "nothing")
    if not clone.demo_ran:
        # Nothing was measured: the last report stays as it was.
        print(f"bench-cold: {report.facts.get('failed', 'failed')}", file=sys.stderr)
        return 2 if left else 1
    changes = ("--with-changes: the checkout's uncommitted changes were measured",)
    json_path, markdown_path, where = bench_report.publish(
        report,
        args.out,
        bench_tree.read_tree(),
        changes if args.with_changes else (),
        writer=bench_cold.write,
    )
    print(f"\nwritten: {markdown_path}, {json_path}")
    for reason in where.reasons:
        print(f"not written to docs/: {reason}")
    print(f"targets missed: {', '.join(report.missed()) or 'none'}")
    print(f"noisy (no verdict): {', '.join(report.noisy()) or 'none'}")
    if code != 0:
        print(f"bench-cold: make demo failed (exit code {code}): no verdict", file=sys.stderr)
    if left:
        return 2
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
